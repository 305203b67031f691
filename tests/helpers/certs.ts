/**
 * A throwaway PKI for tests, made with the `openssl` CLI: a CA, a server certificate
 * for `localhost` and 127.0.0.1, a second server certificate for another name (for
 * SNI), a client certificate, and an unrelated CA with a client certificate of its own.
 * Keys are EC P-256, so the whole set takes a few tens of milliseconds.
 *
 * @module
 */

/** Where the PEM files of a {@linkcode TestPki} are. */
export interface TestPkiPaths {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  altServerCert: string;
  altServerKey: string;
  clientCert: string;
  clientKey: string;
  otherCaCert: string;
  otherCaKey: string;
  otherClientCert: string;
  otherClientKey: string;
}

/** The PEM texts of a test PKI, and where they were written. */
export interface TestPki {
  /** The folder holding every file. */
  dir: string;
  /** The test CA, trusted by tests that want verification to pass. */
  caCert: string;
  caKey: string;
  /** Signed by the CA, for DNS `localhost` and IP 127.0.0.1. */
  serverCert: string;
  serverKey: string;
  /** The name {@linkcode altServerCert} is for. */
  altServerName: string;
  /** Signed by the CA, for DNS {@linkcode altServerName} only. */
  altServerCert: string;
  altServerKey: string;
  /** Signed by the CA, for client authentication. */
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing the other certificates chain to. */
  otherCaCert: string;
  otherCaKey: string;
  /** A client certificate signed by the other CA: a wrong one for mTLS. */
  otherClientCert: string;
  otherClientKey: string;
  /** The file of each PEM above. */
  paths: TestPkiPaths;
}

let opensslReady: Promise<void> | undefined;

/**
 * Makes a test PKI in `dir`, or in a new temporary folder that is removed when the
 * process exits.
 *
 * @param dir An existing folder to write into.
 * @returns The PEM texts and their paths.
 * @throws {Error} when `openssl` is missing and cannot be installed, or fails.
 * @example
 * ```ts
 * const pki = await makeTestPki();
 * const conn = await Deno.connectTls({ port, hostname: "localhost", caCerts: [pki.caCert] });
 * ```
 */
export async function makeTestPki(dir?: string): Promise<TestPki> {
  opensslReady ??= ensureOpenssl();
  await opensslReady;
  if (dir === undefined) {
    dir = await Deno.makeTempDir({ prefix: "mosaic-pki-" });
    const made = dir;
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(made, { recursive: true });
      } catch {
        // Already gone: nothing to clean.
      }
    });
  }
  const p = (name: string) => `${dir}/${name}`;
  const paths: TestPkiPaths = {
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    altServerCert: p("alt-server.crt"),
    altServerKey: p("alt-server.key"),
    clientCert: p("client.crt"),
    clientKey: p("client.key"),
    otherCaCert: p("other-ca.crt"),
    otherCaKey: p("other-ca.key"),
    otherClientCert: p("other-client.crt"),
    otherClientKey: p("other-client.key"),
  };
  const altServerName = "alt.mosaic.test";
  await Promise.all([
    makeCa(paths.caCert, paths.caKey, "Mosaic Test CA"),
    makeCa(paths.otherCaCert, paths.otherCaKey, "Unrelated Test CA"),
  ]);
  await Promise.all([
    makeLeaf(dir, "server", paths.caCert, paths.caKey, "localhost", [
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "extendedKeyUsage=serverAuth",
    ]),
    makeLeaf(dir, "alt-server", paths.caCert, paths.caKey, altServerName, [
      `subjectAltName=DNS:${altServerName}`,
      "extendedKeyUsage=serverAuth",
    ]),
    makeLeaf(dir, "client", paths.caCert, paths.caKey, "mosaic-client", [
      "subjectAltName=DNS:mosaic-client",
      "extendedKeyUsage=clientAuth",
    ]),
    makeLeaf(dir, "other-client", paths.otherCaCert, paths.otherCaKey, "other-client", [
      "subjectAltName=DNS:other-client",
      "extendedKeyUsage=clientAuth",
    ]),
  ]);
  const read = (path: string) => Deno.readTextFile(path);
  const [
    caCert,
    caKey,
    serverCert,
    serverKey,
    altServerCert,
    altServerKey,
    clientCert,
    clientKey,
    otherCaCert,
    otherCaKey,
    otherClientCert,
    otherClientKey,
  ] = await Promise.all([
    read(paths.caCert),
    read(paths.caKey),
    read(paths.serverCert),
    read(paths.serverKey),
    read(paths.altServerCert),
    read(paths.altServerKey),
    read(paths.clientCert),
    read(paths.clientKey),
    read(paths.otherCaCert),
    read(paths.otherCaKey),
    read(paths.otherClientCert),
    read(paths.otherClientKey),
  ]);
  return {
    dir,
    caCert,
    caKey,
    serverCert,
    serverKey,
    altServerName,
    altServerCert,
    altServerKey,
    clientCert,
    clientKey,
    otherCaCert,
    otherCaKey,
    otherClientCert,
    otherClientKey,
    paths,
  };
}

async function ensureOpenssl(): Promise<void> {
  try {
    await openssl(["version"]);
    return;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  // Debian ships openssl as a package; tests on a bare image install it once.
  // Other test files may be installing at the same time: wait for dpkg's lock.
  const apt = (args: string[]) =>
    new Deno.Command("apt-get", {
      args: ["-o", "DPkg::Lock::Timeout=300", ...args],
      stdout: "null",
      stderr: "piped",
    }).output();
  let install = await apt(["install", "-y", "openssl"]);
  if (!install.success) {
    await apt(["update", "-q"]);
    install = await apt(["install", "-y", "openssl"]);
  }
  if (!install.success) {
    const stderr = new TextDecoder().decode(install.stderr).trim();
    throw new Error(`Cannot install openssl with apt-get: ${stderr}`);
  }
}

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`openssl ${args[0]} failed (exit ${out.code}): ${stderr}`);
  }
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

function makeCa(certPath: string, keyPath: string, name: string): Promise<void> {
  return openssl([
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    keyPath,
    "-out",
    certPath,
    "-days",
    "7",
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

async function makeLeaf(
  dir: string,
  name: string,
  caCert: string,
  caKey: string,
  commonName: string,
  extensions: string[],
): Promise<void> {
  const csr = `${dir}/${name}.csr`;
  const ext = `${dir}/${name}.ext`;
  await openssl([
    "req",
    "-new",
    ...EC_KEY,
    "-keyout",
    `${dir}/${name}.key`,
    "-out",
    csr,
    "-subj",
    `/CN=${commonName}`,
  ]);
  await Deno.writeTextFile(
    ext,
    ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature", ...extensions].join(
      "\n",
    ) + "\n",
  );
  // A random serial keeps parallel signings from sharing a serial file.
  const serial = "0x" +
    Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0"))
      .join("");
  await openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    caCert,
    "-CAkey",
    caKey,
    "-set_serial",
    serial,
    "-days",
    "7",
    "-extfile",
    ext,
    "-out",
    `${dir}/${name}.crt`,
  ]);
}
