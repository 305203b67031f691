/**
 * The built-in extensions, listed as data. `main.ts` registers them through the same
 * public registry a user's code would use; nothing registers itself by being imported.
 *
 * @module
 */

import type {
  CertificateProviderFactory,
  CreateProtocolCodec,
  CreateStreamFilterFactory,
} from "../mod.ts";
import { createCertificateProvider as fileProvider } from "./cert_providers/file/mod.ts";
import { createCertificateProvider as pluginProvider } from "./cert_providers/plugin/mod.ts";
import { createStreamFilterFactory as demo } from "./filters/demo/mod.ts";
import { createStreamFilterFactory as fault } from "./filters/fault/mod.ts";
import { createStreamFilterFactory as ipAccess } from "./filters/ip_access/mod.ts";
import { createStreamFilterFactory as lua } from "./filters/lua/mod.ts";
import { createStreamFilterFactory as payloadLimit } from "./filters/payload_limit/mod.ts";
import { createStreamFilterFactory as plugin } from "./filters/plugin/mod.ts";
import { createStreamFilterFactory as proxywasm } from "./filters/proxywasm/mod.ts";
import { createProtocolCodec as bolt } from "./protocols/bolt/mod.ts";

/** Built-in stream filters by the `type` name they are configured with. */
export const BUILTIN_STREAM_FILTERS: ReadonlyArray<readonly [string, CreateStreamFilterFactory]> = [
  ["demo", demo],
  ["fault", fault],
  ["ip_access", ipAccess],
  ["lua", lua],
  ["payload_limit", payloadLimit],
  ["plugin", plugin],
  ["proxywasm", proxywasm],
];

/** Built-in certificate providers by the `tls_context.type` name that chooses them. */
export const BUILTIN_CERTIFICATE_PROVIDERS: ReadonlyArray<
  readonly [string, CertificateProviderFactory]
> = [
  ["file", fileProvider],
  ["plugin", pluginProvider],
];

/** Built-in protocol codecs by the `downstream_protocol` name that chooses them. */
export const BUILTIN_PROTOCOLS: ReadonlyArray<readonly [string, CreateProtocolCodec]> = [
  ["bolt", bolt],
];
