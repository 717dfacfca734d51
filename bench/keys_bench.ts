// SPDX-License-Identifier: Apache-2.0
/**
 * `deno task bench:keys`: how long one CreateKeysAndCertificate takes at the
 * emulator (request published to answer received, one claim connection),
 * by key type and key pool size. With a pool, keys are made ahead on libuv's
 * thread pool, so a request that finds one ready does not wait for key
 * generation; without one (size 0) every request pays it. Requests are
 * spaced (`--gap`, default 300 ms) so the pool refills between them, as for
 * devices that do not all boot at once; a storm drains any pool (see
 * `deno task bench:storm`).
 *
 *   deno run -A bench/keys_bench.ts [--requests 20] [--gap 300]
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type KeyType, startEmulator } from "../src/emulator/mod.ts";
import { claimCredentials, connect, request } from "../tests/support/mqtt.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    requests: { type: "string", default: "20" },
    gap: { type: "string", default: "300" },
  },
});
const requests = Number(values.requests);
const gapMs = Number(values.gap);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

async function measure(keyType: KeyType, keyPoolSize: number): Promise<number[]> {
  const stateDir = Deno.makeTempDirSync({ prefix: "fleetprov-keys-bench-" });
  const emulator = await startEmulator({ stateDir, port: 0, keyType, keyPoolSize });
  const claim = await connect(emulator, claimCredentials(emulator));
  const latencies: number[] = [];
  try {
    await new Promise((resolve) => setTimeout(resolve, gapMs)); // the pool's first fill
    for (let i = 0; i < requests; i++) {
      const started = performance.now();
      const answer = await request(claim, "CreateKeysAndCertificate", {});
      latencies.push(performance.now() - started);
      if (!answer.accepted) throw new Error(JSON.stringify(answer.body));
      await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
  } finally {
    await claim.endAsync();
    await emulator.close();
    Deno.removeSync(stateDir, { recursive: true });
  }
  return latencies.sort((a, b) => a - b);
}

console.log(
  `CreateKeysAndCertificate latency at the emulator (Deno ${Deno.version.deno}), ${requests} ` +
    `requests ${gapMs} ms apart; load average ${
      readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
    }.`,
);
console.log("| key type | pool | p50 ms | p90 ms | max ms |");
console.log("|---|---|---|---|---|");
for (
  const [keyType, pool] of [["rsa-2048", 0], ["rsa-2048", 2], ["ec-p256", 0]] as const
) {
  const l = await measure(keyType, pool);
  console.log(
    `| ${keyType} | ${pool} | ${percentile(l, 0.5).toFixed(1)} | ${
      percentile(l, 0.9).toFixed(1)
    } | ${l[l.length - 1].toFixed(1)} |`,
  );
}
