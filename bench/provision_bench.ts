// SPDX-License-Identifier: Apache-2.0
/**
 * `deno task bench`: one device provisioning itself (keys path, the RSA 2048
 * keys AWS hands out) through the latency proxy at 0, 50 and 150 ms one-way
 * delay, the device being the x64 release binary in its own process (and,
 * with `--deno`, the same CLI under Deno as a second row). The emulator runs
 * from the same binary in its own process, so the bench's event loop (the
 * proxy) is the only thing shared. Prints medians of:
 *
 * - first SYN: exec → the device's first TCP connection reaches the proxy;
 * - first request: exec → the first `Requesting …` log line (the request
 *   goes out right behind it, once CONNACK arrived);
 * - completed-fp: exec → the `Wrote the runtime config` log line (the
 *   runtime config says `completed-fp` and the journal is committed);
 * - connack: exec → the new certificate's CONNACK (`Connected with the new
 *   certificate` log line);
 * - wall: exec → exit;
 * - the round trips the proxy counted, per connection;
 * - peak RSS (`/usr/bin/time`'s maximum resident set size: the kernel's
 *   high-water mark, taken at exit, so no sampling can miss the peak).
 *
 * Times are taken by this process when each line arrives on the device's
 * stdout pipe (written synchronously by the device), from the moment it was
 * spawned: they include exec and the runtime's own start-up. Runs of all
 * delays are interleaved, so load from other processes spreads over all.
 *
 *   deno task bench [--runs 5] [--delays 0,50,150] [--paths keys[,csr]] [--deno]
 *     [--binary PATH] [--key-type rsa-2048|ec-p256] [--json FILE]
 *
 * @module
 */
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { build, ROOT } from "../build/mod.ts";
import { startLatencyProxy } from "./latency_proxy.ts";
import { medianOf, startBinaryEmulator, TIME } from "./support.ts";

type Path = "keys" | "csr";

/** What ran as the device. */
interface Device {
  name: string;
  command: string;
  args: string[];
}

/** One device run, milliseconds from spawn. */
interface Run {
  firstSyn: number;
  firstRequest: number;
  completedFp: number;
  connack: number;
  wall: number;
  perConnection: number[];
  rssKiB: number;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "5" },
    delays: { type: "string", default: "0,50,150" },
    paths: { type: "string", default: "keys" },
    binary: { type: "string" },
    deno: { type: "boolean", default: false },
    "key-type": { type: "string", default: "rsa-2048" },
    json: { type: "string" },
  },
});
const runs = Number(values.runs);
const delays = values.delays.split(",").map(Number);
const paths = values.paths.split(",") as Path[];
for (const path of paths) {
  if (path !== "keys" && path !== "csr") throw new Error(`--paths: unknown path ${path}.`);
}

const binary = values.binary ??
  (await build({ targets: ["x64"], log: () => {}, debs: false })).targets[0].path;
const devices: Device[] = [{ name: "x64 binary", command: binary, args: [] }];
if (values.deno) {
  devices.push({
    name: "Deno",
    command: Deno.execPath(),
    args: ["run", "-A", "--quiet", join(ROOT, "main.ts")],
  });
}

const work = Deno.makeTempDirSync({ dir: tmpdir(), prefix: "fleetprov-bench-" });
chmodSync(work, 0o700);
// The emulator runs from a copy; the device binary enters the page cache by being read, as on a
// board, not as a freshly written file (dirty, in large folios: RSS would count far more).
const emulatorBinary = join(work, "fleetprov-emulator");
copyFileSync(binary, emulatorBinary);
chmodSync(emulatorBinary, 0o755);
await new Deno.Command("sync").output();
await new Deno.Command("dd", { args: [`if=${binary}`, "iflag=nocache", "count=0", "status=none"] })
  .output();
const emulator = await startBinaryEmulator(emulatorBinary, {
  stateDir: join(work, "emulator"),
  keyType: values["key-type"],
});

/** A fresh device: HOME, lock dir, and for the CSR path a key generated on the board. */
function freshDevice(index: number, path: Path): { home: string; flags: string[] } {
  const home = join(work, `device-${index}`);
  mkdirSync(join(home, "lock"), { recursive: true, mode: 0o700 });
  chmodSync(home, 0o700);
  return { home, flags: path === "csr" ? ["--generate-key", "ec-p256"] : [] };
}

/** Times (ms since `start`) at which stdout lines matching each pattern first arrived. */
async function lineTimes(
  stream: ReadableStream<Uint8Array>,
  start: number,
  patterns: Record<string, RegExp>,
): Promise<{ times: Record<string, number>; text: string }> {
  const times: Record<string, number> = {};
  let text = "";
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const now = performance.now() - start;
    text += chunk;
    const lines = (pending + chunk).split("\n");
    pending = lines.pop()!;
    for (const line of lines) {
      for (const [name, pattern] of Object.entries(patterns)) {
        if (times[name] === undefined && pattern.test(line)) times[name] = now;
      }
    }
  }
  return { times, text };
}

let deviceIndex = 0;
async function runDevice(device: Device, delayMs: number, path: Path): Promise<Run> {
  const proxy = await startLatencyProxy({
    target: { host: "127.0.0.1", port: emulator.port },
    delayMs,
  });
  const { home, flags } = freshDevice(deviceIndex++, path);
  const rssFile = join(home, "rss");
  try {
    const start = performance.now();
    const child = new Deno.Command(TIME, {
      args: [
        "-f",
        "%M",
        "-o",
        rssFile,
        device.command,
        ...device.args,
        "--config-file",
        emulator.config,
        "--port",
        String(proxy.port),
        ...flags,
      ],
      env: {
        HOME: home,
        LOCK_FILE_PATH: join(home, "lock"),
        NO_COLOR: "1",
        PATH: Deno.env.get("PATH") ?? "",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const [lines, stderr, status] = await Promise.all([
      lineTimes(child.stdout, start, {
        firstRequest: /\[INFO\] Requesting /,
        completedFp: /\[INFO\] Wrote the runtime config /,
        connack: /\[INFO\] Connected with the new certificate /,
      }),
      new Response(child.stderr).text(),
      child.status,
    ]);
    const wall = performance.now() - start;
    const { times } = lines;
    if (status.code !== 0 || times.connack === undefined) {
      throw new Error(`device run failed (exit ${status.code}):\n${lines.text}${stderr}`);
    }
    await proxy.settled();
    const stats = proxy.stats();
    return {
      firstSyn: stats.perConnection[0].openedAt - start,
      firstRequest: times.firstRequest,
      completedFp: times.completedFp,
      connack: times.connack,
      wall,
      perConnection: stats.perConnection.map((c) => c.roundTrips),
      rssKiB: Number(readFileSync(rssFile, "utf8").trim().split("\n").pop()),
    };
  } finally {
    await proxy.close();
    rmSync(home, { recursive: true, force: true });
  }
}

interface Row {
  device: Device;
  delayMs: number;
  path: Path;
  runs: Run[];
}

// One warm-up run per device, so that no measured run pays for cold caches.
for (const device of devices) await runDevice(device, 0, "keys");

const rows: Row[] = devices.flatMap((device) =>
  delays.flatMap((delayMs) => paths.map((path) => ({ device, delayMs, path, runs: [] as Run[] })))
);
const loadBefore = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
for (let i = 0; i < runs; i++) {
  for (const row of rows) {
    const run = await runDevice(row.device, row.delayMs, row.path);
    row.runs.push(run);
    console.error(
      `run ${i + 1}/${runs} ${row.device.name} ${row.path} at ${row.delayMs} ms: ` +
        `completed-fp ${run.completedFp.toFixed(0)} ms, ${run.perConnection.join("+")} round trips`,
    );
  }
}
await emulator.stop();
rmSync(work, { recursive: true, force: true });

const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
const loadAfter = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
console.log(
  `Machine: ${navigator.hardwareConcurrency} CPUs (${cpu}); load average ${loadBefore} before, ` +
    `${loadAfter} after; device binary ${binary}; keys ${values["key-type"]}; ` +
    `Deno ${Deno.version.deno}.`,
);
console.log(
  "Medians of the runs, ms from exec (spawn). first SYN: the first TCP connection reaches the " +
    "proxy; first request: the first `Requesting` line; completed-fp: runtime config written; " +
    "connack: the new certificate's CONNACK; wall: exit. Round trips as the proxy counts them, " +
    "per connection.",
);
const header = [
  "one-way delay",
  "device",
  "path",
  "first SYN",
  "first request",
  "completed-fp",
  "connack",
  "wall",
  "round trips",
  "peak RSS MiB",
];
console.log(`| ${header.join(" | ")} |`);
console.log(`|${header.map(() => "---").join("|")}|`);
for (const row of rows) {
  const m = (pick: (run: Run) => number) => medianOf(row.runs.map(pick)).toFixed(0);
  const perConnection = row.runs[0].perConnection;
  console.log(
    `| ${
      [
        `${row.delayMs} ms`,
        row.device.name,
        row.path,
        m((r) => r.firstSyn),
        m((r) => r.firstRequest),
        m((r) => r.completedFp),
        m((r) => r.connack),
        m((r) => r.wall),
        `${perConnection.reduce((a, b) => a + b, 0)} (${perConnection.join("+")})`,
        (medianOf(row.runs.map((r) => r.rssKiB)) / 1024).toFixed(1),
      ].join(" | ")
    } |`,
  );
}
if (values.json) writeFileSync(values.json, JSON.stringify(rows, null, 2) + "\n");
