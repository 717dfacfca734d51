// SPDX-License-Identifier: Apache-2.0
/**
 * `deno task bench:storm`: a boot storm. N devices (default 500) provision
 * themselves against one emulator, C at a time (default 50). Prints
 * provisions per second, latency percentiles (p50/p99/max, one device's
 * provision() call: claim connection, create, RegisterThing, files, runtime
 * config, CONNACK with the new certificate), the emulator's RSS after each
 * round and its peak, and the CPU time per provision of both sides.
 *
 * The emulator runs as its own process, `fleetprov emulator` from main.ts, so
 * its RSS and CPU are its own. The devices are not 500 processes (each Deno
 * process costs ~90 MB and ~0.5 s of start-up, which would measure process
 * spawning instead of provisioning): they run in this process, each calling
 * the provisioning library exactly as the CLI does, `provision(settings)` with
 * `loadSettings(flags, { env, home })` from the emulator's device config, a
 * home directory of its own (keys, runtime config, journal) and a client id
 * of its own (devices sharing one would disconnect each other).
 *
 * Each device's files are written as on a board (0600 keys, fsync, rename,
 * directory fsync: ~7 ms per file on this VM's disk). On one board that is
 * ~50 ms once; here 500 devices share one event loop, where these synchronous
 * fsyncs would serialize them and measure the disk instead of the emulator.
 * So device homes go to tmpfs (`--homes-dir`, default /dev/shm when it exists);
 * the emulator's own state stays on disk.
 *
 *   deno run -A bench/storm_bench.ts [--devices 500] [--concurrency 50] [--rounds 2] [--csr]
 *     [--homes-dir DIR] [--key-type ec-p256|rsa-2048]
 *
 * `--key-type`: the keys the emulator's CreateKeysAndCertificate hands out,
 * passed to it explicitly. Default ec-p256, the fast path: RSA 2048 (what AWS
 * IoT creates, the emulator's default) costs tens to hundreds of ms of CPU per
 * key, and a storm then measures key generation. The table header says which.
 *
 * `--csr`: CreateCertificateFromCsr with a key and CSR made per device before
 * the clock starts (0600 files in a 0700 dir). Each round uses new devices
 * (new homes, client ids, certificates, things), so a flat emulator RSS across
 * rounds means memory stays flat as devices come and go.
 *
 * @module
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadSettings } from "../src/config/mod.ts";
import { silentLogger } from "../src/log.ts";
import { createCsr, generateKeyPair } from "../src/pki/mod.ts";
import { provision } from "../src/provisioning/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    devices: { type: "string", default: "500" },
    concurrency: { type: "string", default: "50" },
    rounds: { type: "string", default: "2" },
    csr: { type: "boolean", default: false },
    "homes-dir": { type: "string" },
    "key-type": { type: "string", default: "ec-p256" },
  },
});
const keyType = values["key-type"];
if (keyType !== "ec-p256" && keyType !== "rsa-2048") {
  throw new Error(`--key-type must be ec-p256 or rsa-2048, not ${keyType}.`);
}
const devices = Number(values.devices);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
for (
  const [name, value] of [["devices", devices], ["concurrency", concurrency], ["rounds", rounds]]
) {
  if (!(Number.isInteger(value) && (value as number) > 0)) {
    throw new Error(`--${name} must be a whole number > 0, not ${value}.`);
  }
}

const work = Deno.makeTempDirSync({ dir: tmpdir(), prefix: "fleetprov-storm-" });
chmodSync(work, 0o700);
const stateDir = join(work, "emulator");
let homesBase = values["homes-dir"];
if (homesBase === undefined) {
  try {
    homesBase = Deno.statSync("/dev/shm").isDirectory ? "/dev/shm" : tmpdir();
  } catch {
    homesBase = tmpdir();
  }
}
const homes = Deno.makeTempDirSync({ dir: homesBase, prefix: "fleetprov-storm-homes-" });
chmodSync(homes, 0o700);
const emulator = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    "--quiet",
    join(ROOT, "main.ts"),
    "emulator",
    "--state-dir",
    stateDir,
    "--port",
    "0",
    "--key-type",
    keyType,
    "--verbose",
  ],
  stdin: "null",
  stdout: "null",
  stderr: "piped",
}).spawn();
// `--verbose` logs "listening on HOST:PORT" once the emulator accepts connections.
const emulatorLog = emulator.stderr.pipeThrough(new TextDecoderStream()).getReader();
let logged = "";
while (!/listening on \S+:\d+/.test(logged)) {
  const { value, done } = await emulatorLog.read();
  if (done) throw new Error(`the emulator exited before listening:\n${logged}`);
  logged += value;
}
// Keep draining its log so that it never blocks on a full pipe.
(async () => {
  while (!(await emulatorLog.read()).done) { /* drain */ }
})();
const configPath = join(stateDir, "device-client.conf");

/** Resident and peak resident memory of a process, MiB, from /proc. */
function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)![1]);
  return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

/** CPU time (user + system) of a process, ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * (1000 / 100); // USER_HZ is 100 on Linux
}

/** Everything a device needs before the clock starts: its home and its flags. */
async function prepareDevice(
  round: number,
  index: number,
): Promise<{ home: string; flags: string[] }> {
  const home = join(homes, `r${round}-d${index}`);
  mkdirSync(home, { mode: 0o700 });
  const flags = ["--config-file", configPath, "--client-id", `storm-${round}-${index}`];
  if (!values.csr) return { home, flags };
  const dir = join(home, "csr");
  mkdirSync(dir, { mode: 0o700 });
  chmodSync(dir, 0o700);
  const pair = await generateKeyPair("ec-p256");
  const keyPath = join(dir, "device.key");
  const csrPath = join(dir, "device.csr");
  writeFileSync(keyPath, pair.privateKeyPem, { mode: 0o600 });
  writeFileSync(csrPath, await createCsr(`storm-${round}-${index}`, pair.keys), { mode: 0o600 });
  return { home, flags: [...flags, "--csr-file", csrPath, "--device-key", keyPath] };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
console.log(
  `Boot storm: ${devices} devices x ${rounds} rounds, ${concurrency} in flight, ` +
    `${
      values.csr
        ? "CSR path (device keys EC P-256)"
        : `keys path, ${keyType} keys from the emulator`
    }, device homes in ${homesBase}. Machine: ${navigator.hardwareConcurrency} ` +
    `CPUs (${cpu}), load average ${
      readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
    }. Emulator (own process) RSS at start ${memoryMiB(emulator.pid).rss.toFixed(1)} MiB.`,
);
console.log(
  "| round | provisions/s | p50 ms | p99 ms | max ms | failures | emulator RSS MiB | " +
    "emulator CPU ms/provision | devices CPU ms/provision |",
);
console.log("|---|---|---|---|---|---|---|---|---|");
try {
  for (let round = 1; round <= rounds; round++) {
    const prepared: { home: string; flags: string[] }[] = [];
    for (let i = 0; i < devices; i++) prepared.push(await prepareDevice(round, i));
    const env = { ...Deno.env.toObject() };
    const latencies: number[] = [];
    const failures: string[] = [];
    let next = 0;
    const emulatorCpuBefore = cpuMs(emulator.pid);
    const selfCpuBefore = cpuMs(Deno.pid);
    const started = performance.now();
    await Promise.all(
      Array.from({ length: Math.min(concurrency, devices) }, async () => {
        while (next < devices) {
          const device = prepared[next++];
          const deviceStarted = performance.now();
          try {
            const settings = await loadSettings(device.flags, {
              env: { ...env, HOME: device.home },
              home: device.home,
            });
            await provision(settings, { logger: silentLogger });
            latencies.push(performance.now() - deviceStarted);
          } catch (error) {
            failures.push((error as Error).message);
          }
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const emulatorCpu = (cpuMs(emulator.pid) - emulatorCpuBefore) / devices;
    const selfCpu = (cpuMs(Deno.pid) - selfCpuBefore) / devices;
    latencies.sort((a, b) => a - b);
    console.log(
      `| ${round} | ${(latencies.length / seconds).toFixed(1)} | ${
        percentile(latencies, 0.5).toFixed(0)
      } | ${percentile(latencies, 0.99).toFixed(0)} | ${
        percentile(latencies, 1).toFixed(0)
      } | ${failures.length} | ${memoryMiB(emulator.pid).rss.toFixed(1)} | ${
        emulatorCpu.toFixed(2)
      } | ${selfCpu.toFixed(2)} |`,
    );
    if (failures.length > 0) console.error(`first failure: ${failures[0]}`);
    for (const device of prepared) rmSync(device.home, { recursive: true, force: true });
  }
  console.log(
    `Emulator peak RSS (VmHWM): ${memoryMiB(emulator.pid).peak.toFixed(1)} MiB. ` +
      "Both sides share this machine's CPUs; the emulator alone would manage about " +
      "1000 / (its CPU ms per provision) provisions per second per core.",
  );
} finally {
  emulator.kill("SIGTERM");
  await emulator.status;
  rmSync(work, { recursive: true, force: true });
  rmSync(homes, { recursive: true, force: true });
}
