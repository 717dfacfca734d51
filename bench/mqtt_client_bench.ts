// SPDX-License-Identifier: Apache-2.0
/**
 * `deno task bench:mqtt-client`: what an MQTT client costs the device before
 * it sends a byte, MQTT.js (the `mqtt` npm package, 5.16.0, as pinned) against
 * fleetprov's own session (src/mqtt/: its codec, framing guard and session).
 * Each is bundled the way the release binary bundles the device (build/bundle.ts:
 * esbuild, minified, CommonJS for Node.js 26) from an entry that only takes
 * the client's connect function (and node:tls, which either needs to reach
 * AWS IoT), then loaded by the pinned Node.js runtime (the x64 release
 * binary's): bundle size (and gzip), then, interleaved, the wall time of
 * `node bundle.cjs` and its peak RSS (GNU time) beside node:tls alone,
 * medians of `--runs` runs (default 30). Loading is what every
 * provisioning pays; the exchange itself is the same round trips either way.
 *
 *   deno task bench:mqtt-client [--runs 30]
 *
 * @module
 */
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bundle } from "../build/bundle.ts";
import { ROOT } from "../build/mod.ts";
import { TARGETS } from "../build/targets.ts";
import { medianOf, TIME } from "./support.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "30" } },
});
const RUNS = Number(values.runs);
const DIR = join(ROOT, ".cache", "bench", "mqtt-client");

/** The clients measured: an entry that keeps the client's connect function. */
const TLS = 'import tls from "node:tls";\n(globalThis as Record<string, unknown>).t = tls;\n';
const CLIENTS: { name: string; entry: string }[] = [
  // Both clients need node:tls to reach AWS IoT; loaded by each entry, it is not the clients' cost.
  { name: "node:tls alone", entry: TLS },
  {
    name: "MQTT.js 5.16.0 (mqtt)",
    entry:
      `${TLS}import mqtt from "mqtt";\n(globalThis as Record<string, unknown>).c = mqtt.connect;\n`,
  },
  {
    name: "fleetprov's session (src/mqtt/)",
    entry: `${TLS}import { openSession } from ${
      JSON.stringify(join(ROOT, "src", "mqtt", "connection.ts"))
    };\n(globalThis as Record<string, unknown>).c = openSession;\n`,
  },
];

/** Runs `node file` under GNU time: wall ms and peak RSS KiB. */
async function load(node: string, file: string): Promise<{ ms: number; rssKiB: number }> {
  const report = join(DIR, "time.txt");
  const started = performance.now();
  const output = await new Deno.Command(TIME, {
    args: ["-f", "%M", "-o", report, node, file],
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - started;
  if (!output.success) throw new Error(new TextDecoder().decode(output.stderr));
  const rssKiB = Number((await Deno.readTextFile(report)).trim().split("\n").at(-1));
  return { ms, rssKiB };
}

async function main(): Promise<void> {
  await Deno.mkdir(DIR, { recursive: true });
  const node = join(ROOT, "node_modules", TARGETS.x64.runtime.packageName, "bin", "node");
  const nodeVersion = new TextDecoder().decode(
    (await new Deno.Command(node, { args: ["--version"], stdout: "piped" }).output()).stdout,
  ).trim();
  const bundles: { name: string; file: string; bytes: number; gzip: number }[] = [];
  for (const [i, client] of CLIENTS.entries()) {
    const entry = join(DIR, `entry-${i}.ts`);
    await Deno.writeTextFile(entry, client.entry);
    const { code } = await bundle(entry, ROOT, {
      nodeMajor: Number(nodeVersion.slice(1).split(".")[0]),
      keepNames: false,
    });
    const file = join(DIR, `bundle-${i}.cjs`);
    await Deno.writeFile(file, code);
    bundles.push({ name: client.name, file, bytes: code.length, gzip: gzipSync(code).length });
  }
  const samples = bundles.map(() => ({ ms: [] as number[], rss: [] as number[] }));
  for (let run = 0; run < RUNS + 1; run++) {
    for (const [i, b] of bundles.entries()) {
      const { ms, rssKiB } = await load(node, b.file);
      if (run === 0) continue; // warm the page cache
      samples[i].ms.push(ms);
      samples[i].rss.push(rssKiB);
    }
  }
  const load0 = await Deno.loadavg();
  console.log(
    `Node.js ${nodeVersion} (the x64 binary's runtime), ${RUNS} interleaved runs, medians; load average ${
      load0[0].toFixed(1)
    }`,
  );
  console.log(
    "| client | bundle KB | gzip KB | load ms | over node:tls | peak RSS MiB | over node:tls |",
  );
  console.log(
    "| ------ | --------- | ------- | ------- | ------------- | ------------ | ------------- |",
  );
  const base = { ms: medianOf(samples[0].ms), rss: medianOf(samples[0].rss) };
  for (const [i, b] of bundles.entries()) {
    const ms = medianOf(samples[i].ms);
    const rss = medianOf(samples[i].rss);
    console.log(
      `| ${b.name} | ${(b.bytes / 1000).toFixed(1)} | ${(b.gzip / 1000).toFixed(1)} | ${
        ms.toFixed(1)
      } | +${(ms - base.ms).toFixed(1)} | ${(rss / 1024).toFixed(1)} | +${
        ((rss - base.rss) / 1024).toFixed(1)
      } |`,
    );
  }
}

if (import.meta.main) await main();
