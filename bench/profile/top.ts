/**
 * Prints the functions with the most self time in a V8 `.cpuprofile` (as written by
 * `deno run --cpu-prof`), for bench/README.md's before/after tables.
 *
 * Usage: `deno run --allow-read bench/profile/top.ts FILE.cpuprofile [N]`
 *
 * @module
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time by function (name, file and line), largest first, as shares of all samples. */
export function topSelfTime(profile: Profile, count: number): string[] {
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const selfMicros = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byNode.get(profile.samples[i]);
    const micros = profile.timeDeltas[i] ?? 0;
    total += micros;
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^.*\/(src|extensions|ext|node_modules)\//, "$1/");
    const key = `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}`;
    selfMicros.set(key, (selfMicros.get(key) ?? 0) + micros);
  }
  return [...selfMicros].sort((a, b) => b[1] - a[1]).slice(0, count).map(([key, micros]) =>
    `${(100 * micros / total).toFixed(1).padStart(5)} %  ${key}`
  );
}

if (import.meta.main) {
  const [file, n] = Deno.args;
  const profile = JSON.parse(await Deno.readTextFile(file)) as Profile;
  for (const line of topSelfTime(profile, Number(n ?? 10))) console.log(line);
}
