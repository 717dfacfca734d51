// SPDX-License-Identifier: Apache-2.0
/**
 * `deno task bench:binary`: what the single binaries cost against the bare
 * Node.js runtime they are built from. Builds dist/ first when stale.
 *
 * Prints, for each target, the binary's size beside the bare runtime
 * stripped the same way; then start-up beside `node -e 0` on the same
 * runtime (x64 natively, arm64 and armv7 under QEMU user-mode emulation,
 * where only the ratio to bare means something): `fleetprov --version`, the
 * already-provisioned boot (what the unit runs at every boot after the first)
 * and exec → the first TCP SYN of a provisioning (the first byte on the
 * wire); then, for x64, the cold start-up and peak RSS of `node -e 0`, the
 * already-provisioned boot and a full provisioning (keys path) with the RSA
 * 2048 keys AWS hands out and with EC P-256 keys. Peak RSS comes from GNU
 * time (Debian package `time`). The emulator runs from a copy of the x64
 * binary in its own process, so dropping the measured binary from the page
 * cache is not undone by the emulator's own mappings.
 *
 *   deno task bench:binary [--runs 20] [--qemu-runs 5]
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { build, type BuiltTarget, ROOT } from "../build/mod.ts";
import { findOnPath, hostRunner } from "../build/host.ts";
import { findStrip, strip } from "../build/sea.ts";
import { TARGET_IDS, type TargetId, TARGETS } from "../build/targets.ts";
import { startLatencyProxy } from "./latency_proxy.ts";
import { type BinaryEmulator, medianOf, startBinaryEmulator, TIME } from "./support.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "20" },
    "qemu-runs": { type: "string", default: "5" },
  },
});
const RUNS = Number(values.runs);
const QEMU_RUNS = Number(values["qemu-runs"]);
const CACHE = join(ROOT, ".cache", "bench");
const MB = 1e6;
const MiB = 1024;

/** The pinned runtime stripped like the release binary, cached in .cache/bench. */
async function bareStripped(id: TargetId): Promise<string> {
  const source = join(ROOT, "node_modules", TARGETS[id].runtime.packageName, "bin", "node");
  const target = join(CACHE, `node-${TARGETS[id].runtime.version}-${id}-stripped`);
  const tool = findStrip(TARGETS[id].strip);
  if (!tool) throw new Error(`No strip tool for ${id} (${TARGETS[id].strip.join(" or ")}).`);
  try {
    await Deno.stat(target);
    return target;
  } catch {
    // not cached yet
  }
  await Deno.mkdir(CACHE, { recursive: true });
  const tmp = `${target}.tmp`;
  await Deno.copyFile(source, tmp);
  await Deno.chmod(tmp, 0o755);
  await strip(tool, tmp);
  await Deno.rename(tmp, target);
  return target;
}

/**
 * Drops `paths` from the page cache (GNU dd's documented nocache idiom), so a
 * run reads them from disk as after a reboot. Also makes RSS comparable: how
 * many file pages a fault maps depends on how the file entered the cache (a
 * freshly written binary sits in large folios and looks much bigger).
 */
async function evict(...paths: string[]): Promise<void> {
  for (const path of paths) {
    const result = await new Deno.Command("dd", {
      args: [`if=${path}`, "iflag=nocache", "count=0", "status=none"],
    }).output();
    if (!result.success) throw new Error(`dd could not drop ${path} from the page cache.`);
  }
}

/** A program to run: the command line, for a target (under QEMU when emulated). */
interface Program {
  command: string;
  args: string[];
}

function programFor(id: TargetId, path: string): Program {
  const runner = hostRunner(id);
  if (!runner.ok) throw new Error(`Cannot run ${id} code here: ${runner.reason}.`);
  const [command, ...args] = [...runner.prefix, path];
  return { command, args };
}

/** Wall-clock milliseconds, peak RSS (KiB) and output of one run, which must exit 0. */
async function measure(
  program: Program,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ ms: number; kb: number; output: string }> {
  const start = performance.now();
  const output = await new Deno.Command(findOnPath("time") ?? TIME, {
    args: ["-f", "PEAK_RSS_KB=%M", program.command, ...program.args, ...args],
    env: { PATH: Deno.env.get("PATH") ?? "", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ms = performance.now() - start;
  const stderr = new TextDecoder().decode(output.stderr);
  const text = new TextDecoder().decode(output.stdout) + stderr;
  if (output.code !== 0) {
    throw new Error(`${program.command} ${args.join(" ")}: exit ${output.code}\n${text}`);
  }
  const match = /PEAK_RSS_KB=(\d+)/.exec(stderr);
  if (!match) throw new Error(`GNU time printed no peak RSS (install the Debian package time).`);
  return { ms, kb: Number(match[1]), output: text };
}

/** A fresh device home (0700) with its lock directory; its environment. */
async function freshHome(): Promise<{ home: string; env: Record<string, string> }> {
  const home = await Deno.makeTempDir({ prefix: "fleetprov-bench-home-" });
  await Deno.mkdir(join(home, "lock"));
  return { home, env: { HOME: home, LOCK_FILE_PATH: join(home, "lock") } };
}

/**
 * Provisions a fresh home (keys path) and returns its peak RSS; through a
 * zero-delay proxy (`viaProxy`) also the ms from spawn to the first SYN.
 */
async function provisionOnce(
  program: Program,
  emulator: BinaryEmulator,
  options: { viaProxy: boolean },
): Promise<{ firstSynMs: number; kb: number; home: string }> {
  const proxy = options.viaProxy
    ? await startLatencyProxy({ target: { host: "127.0.0.1", port: emulator.port }, delayMs: 0 })
    : undefined;
  const { home, env } = await freshHome();
  try {
    const start = performance.now();
    const run = await measure(
      program,
      ["--config-file", emulator.config, ...(proxy ? ["--port", String(proxy.port)] : [])],
      env,
    );
    if (!/Provisioned thing /.test(run.output)) throw new Error(`not provisioned:\n${run.output}`);
    await proxy?.settled();
    const firstSynMs = proxy ? proxy.stats().perConnection[0].openedAt - start : NaN;
    return { firstSynMs, kb: run.kb, home };
  } finally {
    await proxy?.close();
  }
}

/** Medians of `runs` runs of `fn` after `warmup` unmeasured ones. */
async function medians<T extends Record<string, number>>(
  runs: number,
  fn: () => Promise<T>,
  warmup = 2,
): Promise<T> {
  for (let i = 0; i < warmup; i++) await fn();
  const all: T[] = [];
  for (let i = 0; i < runs; i++) all.push(await fn());
  const out = {} as Record<string, number>;
  for (const key of Object.keys(all[0])) out[key] = medianOf(all.map((r) => r[key]));
  return out as T;
}

function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((cell, i) => String(cell).padEnd(widths[i])).join("  ").trimEnd();
}

function ratio(value: number, bare: number): string {
  return `${(value / bare).toFixed(2)}x`;
}

function sizes(report: { targets: BuiltTarget[] }): Promise<void> {
  console.log("\n== Size: binary vs bare stripped runtime (target: <= +3 MB)");
  const widths = [8, 10, 12, 12, 10, 6];
  console.log(row(["target", "node", "binary", "bare", "overhead", "ok"], widths));
  return report.targets.reduce(async (previous, built) => {
    await previous;
    const bare = (await Deno.stat(await bareStripped(built.id))).size;
    const overhead = built.size - bare;
    console.log(row([
      built.id,
      built.nodeVersion,
      `${(built.size / MB).toFixed(1)} MB`,
      `${(bare / MB).toFixed(1)} MB`,
      `+${(overhead / MB).toFixed(2)} MB`,
      overhead <= 3 * MB ? "yes" : "NO",
    ], widths));
  }, Promise.resolve());
}

/** Warm start-up of each target against its bare runtime: --version, provisioned boot, first SYN. */
async function startUp(
  targets: BuiltTarget[],
  context: { emulator: BinaryEmulator; provisioned: { home: string; env: Record<string, string> } },
): Promise<void> {
  console.log(
    "\n== Start-up, warm, medians (x64 native; arm64 and armv7 under QEMU: compare the ratios)",
  );
  const widths = [8, 10, 14, 16, 24, 22];
  console.log(row(
    ["target", "runs", "node -e 0", "--version", "already provisioned", "first SYN (provision)"],
    widths,
  ));
  const config = ["--config-file", context.emulator.config];
  for (const built of targets) {
    const runs = hostRunner(built.id).ok && TARGETS[built.id].hostArch === Deno.build.arch
      ? RUNS
      : QEMU_RUNS;
    const bare = programFor(built.id, await bareStripped(built.id));
    const binary = programFor(built.id, built.path);
    const figures = await medians(runs, async () => ({
      bare: (await measure(bare, ["-e", "0"])).ms,
      version: (await measure(binary, ["--version"])).ms,
      provisioned: (await measure(binary, config, context.provisioned.env)).ms,
    }));
    const { firstSynMs } = await medians(Math.min(runs, 9), async () => {
      const { firstSynMs, home } = await provisionOnce(binary, context.emulator, {
        viaProxy: true,
      });
      await Deno.remove(home, { recursive: true });
      return { firstSynMs };
    }, 1);
    const cell = (ms: number) => `${ms.toFixed(1)} ms ${ratio(ms, figures.bare)}`;
    console.log(row([
      built.id,
      runs,
      `${figures.bare.toFixed(1)} ms`,
      cell(figures.version),
      `${cell(figures.provisioned)} ${figures.provisioned <= 1.2 * figures.bare ? "" : "(> 1.2x)"}`,
      cell(firstSynMs),
    ], widths));
  }
}

/** x64: cold start-up, and peak RSS of the bare runtime, the provisioned boot and provisionings. */
async function x64Memory(
  x64: BuiltTarget,
  context: {
    emulators: { rsa: BinaryEmulator; ec: BinaryEmulator };
    provisioned: { env: Record<string, string> };
  },
): Promise<void> {
  const bare = programFor("x64", await bareStripped("x64"));
  const binary = programFor("x64", x64.path);
  const config = ["--config-file", context.emulators.rsa.config];
  console.log(
    `\n== Cold start-up, x64 (page cache dropped before each run), ${RUNS} runs, medians`,
  );
  const cold = await medians(RUNS, async () => {
    await evict(bare.command);
    const bareMs = (await measure(bare, ["-e", "0"])).ms;
    await evict(x64.path);
    const provisionedMs = (await measure(binary, config, context.provisioned.env)).ms;
    return { bareMs, provisionedMs };
  }, 0);
  console.log(
    `node -e 0 ${cold.bareMs.toFixed(1)} ms; already provisioned ${
      cold.provisionedMs.toFixed(1)
    } ms (${ratio(cold.provisionedMs, cold.bareMs)})`,
  );

  console.log(
    "\n== Peak RSS, x64 (GNU time %M; binary dropped from the page cache before each run), medians",
  );
  const rss = await medians(Math.min(RUNS, 9), async () => {
    await evict(bare.command);
    const bareKb = (await measure(bare, ["-e", "0"])).kb;
    await evict(x64.path);
    const provisionedKb = (await measure(binary, config, context.provisioned.env)).kb;
    const provisions: Record<string, number> = {};
    for (const [keys, emulator] of Object.entries(context.emulators)) {
      await evict(x64.path);
      const run = await provisionOnce(binary, emulator, { viaProxy: false });
      await Deno.remove(run.home, { recursive: true });
      provisions[keys] = run.kb;
    }
    return { bareKb, provisionedKb, rsaKb: provisions.rsa, ecKb: provisions.ec };
  }, 1);
  const mib = (kb: number) => `${(kb / MiB).toFixed(1)} MiB`;
  console.log(`node -e 0                                  ${mib(rss.bareKb)}`);
  console.log(
    `fleetprov, already provisioned             ${mib(rss.provisionedKb)} (${
      ratio(rss.provisionedKb, rss.bareKb)
    }, target <= 1.2x)`,
  );
  console.log(
    `fleetprov, full provisioning, keys path    ${
      mib(rss.rsaKb)
    } with RSA 2048 keys (target <= 56 MiB: ${rss.rsaKb <= 56 * MiB ? "yes" : "NO"}), ${
      mib(rss.ecKb)
    } with EC P-256 keys`,
  );
}

async function main(): Promise<void> {
  const runnable = TARGET_IDS.filter((id) => hostRunner(id).ok);
  const skipped = TARGET_IDS.filter((id) => !runnable.includes(id));
  if (skipped.length) console.log(`(skipping ${skipped.join(", ")}: cannot run that code here)`);
  const report = await build({ targets: runnable, log: () => {} });
  // Freshly written binaries are dirty in the page cache, which dd cannot drop (evict()).
  await new Deno.Command("sync").output();
  console.log(
    `Load average ${(await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ")}`,
  );
  await sizes(report);

  const x64 = report.targets.find((t) => t.id === "x64");
  if (!x64 || Deno.build.arch !== "x86_64") {
    console.log("\n(start-up and RSS are measured on x86_64 hosts only)");
    return;
  }
  await Deno.mkdir(CACHE, { recursive: true });
  const emulatorCopy = join(CACHE, "fleetprov-emulator");
  await Deno.copyFile(x64.path, emulatorCopy);
  const state = await Deno.makeTempDir({ prefix: "fleetprov-bench-emu-" });
  const rsa = await startBinaryEmulator(emulatorCopy, { stateDir: join(state, "rsa") });
  const ec = await startBinaryEmulator(emulatorCopy, {
    stateDir: join(state, "ec"),
    keyType: "ec-p256",
  });
  const x64Program = programFor("x64", x64.path);
  const provisioned = await provisionOnce(x64Program, rsa, { viaProxy: false });
  try {
    const context = {
      emulator: rsa,
      provisioned: { home: provisioned.home, env: freshHomeEnv(provisioned.home) },
    };
    await startUp(report.targets, context);
    await x64Memory(x64, { emulators: { rsa, ec }, provisioned: context.provisioned });
  } finally {
    await rsa.stop();
    await ec.stop();
    await Deno.remove(provisioned.home, { recursive: true });
    await Deno.remove(state, { recursive: true });
  }
}

/** The environment of an existing home. */
function freshHomeEnv(home: string): Record<string, string> {
  return { HOME: home, LOCK_FILE_PATH: join(home, "lock") };
}

if (import.meta.main) await main();
