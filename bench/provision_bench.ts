// SPDX-License-Identifier: Apache-2.0
/**
 * `deno task bench`: time-to-provisioned of one device (the real CLI in its
 * own process) against the emulator through the latency proxy, at several
 * one-way delays, keys path and CSR path. Prints medians of
 *
 * - config: process start → runtime config written (the CLI's own figure),
 * - connack: process start → CONNACK with the new certificate (the CLI's own
 *   "Provisioned ... in N ms"),
 * - wall: spawn → exit, measured here,
 *
 * the round trips the proxy counted, the device's peak RSS (`/usr/bin/time`'s
 * maximum resident set size: the kernel's high-water mark, taken at exit, so
 * no sampling can miss the peak), and the ratio to the floor: 7 × RTT + the
 * zero-delay time of the same path (the floor for "config" is 4 × RTT + its
 * zero-delay time: the second connection comes after it).
 *
 * The device runs under bench/device_timeline.ts (the CLI plus marks when each
 * TLS connection starts), so a second table splits the time into start-up, the
 * claim connection (until the second connection starts, i.e. runtime config
 * written), the new certificate's connection (until its CONNACK is reported)
 * and exit, each also in round trips over its zero-delay value. Runs of all
 * delays and paths are interleaved so that load from other processes spreads
 * over all of them. Deno's cache (DENO_DIR) is kept although HOME changes, so
 * no run pays for transpiling.
 *
 *   deno run -A bench/provision_bench.ts [--runs 5] [--delays 0,50,150] [--paths keys,csr]
 *     [--json FILE]
 *
 * @module
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startEmulator } from "../src/emulator/mod.ts";
import { createCsr, generateKeyPair } from "../src/pki/mod.ts";
import { startLatencyProxy } from "./latency_proxy.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DENO_DIR = Deno.env.get("DENO_DIR") ??
  join(Deno.env.get("HOME") ?? "/root", ".cache", "deno");
const TIME = "/usr/bin/time";
/** Round trips of fleet provisioning at the protocol floor. */
const FLOOR_ROUND_TRIPS = 7;
/** Round trips up to the runtime config (first connection only). */
const CONFIG_ROUND_TRIPS = 4;

type Path = "keys" | "csr";

/** One device run. */
interface Run {
  configMs: number;
  connackMs: number;
  wallMs: number;
  roundTrips: number;
  perConnection: number[];
  rssKiB: number;
  /** Start-up, claim connection, new-certificate connection, exit: ms. */
  phases: number[];
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "5" },
    delays: { type: "string", default: "0,50,150" },
    paths: { type: "string", default: "keys,csr" },
    json: { type: "string" },
  },
});
const runs = Number(values.runs);
const delays = values.delays.split(",").map(Number);
const paths = values.paths.split(",") as Path[];
for (const path of paths) {
  if (path !== "keys" && path !== "csr") throw new Error(`--paths: unknown path ${path}.`);
}
try {
  Deno.statSync(TIME);
} catch {
  throw new Error(`${TIME} is missing (it measures the device's peak RSS): apt-get install time.`);
}

const work = Deno.makeTempDirSync({ dir: tmpdir(), prefix: "fleetprov-bench-" });
chmodSync(work, 0o700);
const emulator = await startEmulator({ stateDir: join(work, "emulator"), port: 0 });

/** A fresh device: HOME, lock dir, and for the CSR path a key and CSR (0600 in a 0700 dir). */
async function freshDevice(index: number, path: Path): Promise<{ home: string; flags: string[] }> {
  const home = join(work, `device-${index}`);
  mkdirSync(join(home, "lock"), { recursive: true, mode: 0o700 });
  chmodSync(home, 0o700);
  if (path === "keys") return { home, flags: [] };
  const dir = join(home, "csr");
  mkdirSync(dir, { mode: 0o700 });
  chmodSync(dir, 0o700);
  const pair = await generateKeyPair("ec-p256");
  const csr = await createCsr(`bench-${index}`, pair.keys);
  const keyPath = join(dir, "device.key");
  const csrPath = join(dir, "device.csr");
  writeFileSync(keyPath, pair.privateKeyPem, { mode: 0o600 });
  writeFileSync(csrPath, csr, { mode: 0o600 });
  chmodSync(keyPath, 0o600);
  chmodSync(csrPath, 0o600);
  return { home, flags: ["--csr-file", csrPath, "--device-key", keyPath] };
}

const PROVISIONED =
  /Provisioned thing \S+ with certificate \S+ in (\d+) ms \(runtime config written at (\d+) ms/;

let deviceIndex = 0;
/** TLS versions the device negotiated, over all runs. */
const tlsVersions = new Set<string>();
async function runDevice(delayMs: number, path: Path): Promise<Run> {
  const proxy = await startLatencyProxy({
    target: { host: emulator.host, port: emulator.port },
    delayMs,
  });
  const device = await freshDevice(deviceIndex++, path);
  const rssFile = join(device.home, "rss");
  try {
    const started = performance.now();
    const output = await new Deno.Command(TIME, {
      args: [
        "-f",
        "%M",
        "-o",
        rssFile,
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        join(ROOT, "bench", "device_timeline.ts"),
        "--config-file",
        emulator.configPath,
        "--endpoint",
        "localhost",
        "--port",
        String(proxy.port),
        ...device.flags,
      ],
      env: {
        HOME: device.home,
        DENO_DIR,
        LOCK_FILE_PATH: join(device.home, "lock"),
        NO_COLOR: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const wallMs = performance.now() - started;
    const stdout = new TextDecoder().decode(output.stdout);
    const match = PROVISIONED.exec(stdout);
    if (output.code !== 0 || !match) {
      throw new Error(
        `device run failed (exit ${output.code}):\n${stdout}${
          new TextDecoder().decode(output.stderr)
        }`,
      );
    }
    await proxy.settled();
    const stats = proxy.stats();
    const marks = new Map<string, number>();
    const stderr = new TextDecoder().decode(output.stderr);
    for (const [, protocol] of stderr.matchAll(/^timeline tls#\d+ \S+ (\S+)/gm)) {
      tlsVersions.add(protocol);
    }
    for (const [, event, ms] of stderr.matchAll(/^timeline (\S+) (\S+)/gm)) {
      marks.set(event, Number(ms));
    }
    const connack = Number(match[1]);
    const phases = [
      marks.get("connect#1")!,
      marks.get("connect#2")! - marks.get("connect#1")!,
      connack - marks.get("connect#2")!,
      wallMs - connack,
    ];
    return {
      connackMs: connack,
      configMs: Number(match[2]),
      wallMs,
      roundTrips: stats.roundTrips,
      perConnection: stats.perConnection.map((c) => c.roundTrips),
      rssKiB: Number(readFileSync(rssFile, "utf8").trim().split("\n").pop()),
      phases,
    };
  } finally {
    await proxy.close();
    rmSync(device.home, { recursive: true, force: true });
  }
}

function median(numbers: number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

interface Row {
  delayMs: number;
  path: Path;
  runs: Run[];
}

// One warm-up run so that the first measured run does not pay for cold caches.
await runDevice(0, "keys");

const rows: Row[] = delays.flatMap((delayMs) =>
  paths.map((path) => ({ delayMs, path, runs: [] as Run[] }))
);
for (let i = 0; i < runs; i++) {
  for (const row of rows) {
    const run = await runDevice(row.delayMs, row.path);
    row.runs.push(run);
    console.error(
      `run ${i + 1}/${runs} ${row.path} at ${row.delayMs} ms: connack ${run.connackMs} ms, ` +
        `${run.roundTrips} round trips`,
    );
  }
}
await emulator.close();
rmSync(work, { recursive: true, force: true });

const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
console.log(
  `Machine: ${navigator.hardwareConcurrency} CPUs (${cpu}); load average ${
    readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
  }; Deno ${Deno.version.deno}.`,
);
const header = [
  "one-way delay",
  "path",
  "runs",
  "config ms",
  "connack ms",
  "wall ms",
  "round trips (per conn.)",
  "floor ms",
  "connack / floor",
  "config / floor",
  "peak RSS MiB",
];
const table: string[][] = [];
for (const row of rows) {
  const zero = rows.find((r) => r.delayMs === 0 && r.path === row.path);
  const rtt = 2 * row.delayMs;
  const connack = median(row.runs.map((r) => r.connackMs));
  const config = median(row.runs.map((r) => r.configMs));
  const trips = median(row.runs.map((r) => r.roundTrips));
  const perConnection = row.runs[0].perConnection.join("+");
  const floor = zero ? FLOOR_ROUND_TRIPS * rtt + median(zero.runs.map((r) => r.connackMs)) : NaN;
  const configFloor = zero
    ? CONFIG_ROUND_TRIPS * rtt + median(zero.runs.map((r) => r.configMs))
    : NaN;
  table.push([
    `${row.delayMs} ms`,
    row.path,
    String(row.runs.length),
    config.toFixed(0),
    connack.toFixed(0),
    median(row.runs.map((r) => r.wallMs)).toFixed(0),
    `${trips} (${perConnection})`,
    floor.toFixed(0),
    `${(connack / floor).toFixed(3)}×`,
    `${(config / configFloor).toFixed(3)}×`,
    (median(row.runs.map((r) => r.rssKiB)) / 1024).toFixed(1),
  ]);
}
console.log(
  "Medians. config/connack: process start -> runtime config written / new certificate's CONNACK " +
    "(the CLI's own figures); wall: spawn -> exit. Floor: 7 x RTT + the zero-delay connack " +
    "(config floor: 4 x RTT + the zero-delay config time).",
);
console.log(`| ${header.join(" | ")} |`);
console.log(`|${header.map(() => "---").join("|")}|`);
for (const line of table) console.log(`| ${line.join(" | ")} |`);

const phaseNames = ["start-up", "claim connection", "new-cert connection", "exit"];
console.log(
  "\nWhere the time goes (medians, ms; in brackets: more than at zero delay, in RTTs). " +
    "start-up: process start -> first TCP connect; claim connection: -> second connect " +
    "(runtime config written just before); new-cert connection: -> its CONNACK reported; " +
    "exit: -> process exit.",
);
console.log(`| one-way delay | path | ${phaseNames.join(" | ")} |`);
console.log(`|---|---|${phaseNames.map(() => "---").join("|")}|`);
for (const row of rows) {
  const zero = rows.find((r) => r.delayMs === 0 && r.path === row.path);
  const cells = phaseNames.map((_, i) => {
    const value = median(row.runs.map((r) => r.phases[i]));
    if (row.delayMs === 0 || !zero) return value.toFixed(0);
    const extra = (value - median(zero.runs.map((r) => r.phases[i]))) / (2 * row.delayMs);
    return `${value.toFixed(0)} (${extra >= 0 ? "+" : ""}${extra.toFixed(1)})`;
  });
  console.log(`| ${row.delayMs} ms | ${row.path} | ${cells.join(" | ")} |`);
}
console.log(`\nTLS versions negotiated by the device: ${[...tlsVersions].join(", ")}.`);
if (values.json) writeFileSync(values.json, JSON.stringify(rows, null, 2) + "\n");
