// SPDX-License-Identifier: Apache-2.0
/**
 * `deno task bench:binary`: what the single binaries cost against the bare
 * Node.js runtime they are built from. Builds dist/ first when stale.
 *
 * Prints, for each target, the binary's size beside the bare runtime stripped
 * the same way; for x64 (native), the start-up time of `fleetprov --version`
 * beside `node -e 0`, and the peak RSS of a full provisioning (keys path,
 * against the binary's own emulator in another process) beside `node -e 0`'s.
 * Peak RSS comes from GNU time (Debian package `time`). The emulator runs from a
 * copy of the binary, so dropping the measured binary from the page cache
 * is not undone by the emulator's own mappings.
 *
 *   deno task bench:binary [--runs 30]
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { build, ROOT } from "../build/mod.ts";
import { findOnPath, hostRunner } from "../build/host.ts";
import { findStrip, strip } from "../build/sea.ts";
import { TARGET_IDS, type TargetId, TARGETS } from "../build/targets.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "30" } },
});
const RUNS = Number(values.runs);
const CACHE = join(ROOT, ".cache", "bench");
const MB = 1e6;

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

/** Wall-clock milliseconds of one run of `command args`, which must succeed. */
async function timeRun(command: string, args: string[]): Promise<number> {
  const start = performance.now();
  const status = await new Deno.Command(command, { args, stdout: "null", stderr: "null" })
    .output();
  const elapsed = performance.now() - start;
  if (!status.success) throw new Error(`${command} ${args.join(" ")} exited ${status.code}`);
  return elapsed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Peak RSS in kB and exit code of `command args`, measured by GNU time. */
async function peakRss(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ kb: number; code: number; output: string }> {
  const gnuTime = findOnPath("time") ?? "/usr/bin/time";
  const output = await new Deno.Command(gnuTime, {
    args: ["-f", "PEAK_RSS_KB=%M", command, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  const match = /PEAK_RSS_KB=(\d+)/.exec(stderr);
  if (!match) throw new Error(`GNU time printed no peak RSS (install the Debian package time).`);
  return {
    kb: Number(match[1]),
    code: output.code,
    output: new TextDecoder().decode(output.stdout) + stderr,
  };
}

/** Starts `binary emulator` in its own process; resolves with its config path. */
async function startEmulator(binary: string): Promise<{ config: string; stop(): Promise<void> }> {
  const state = await Deno.makeTempDir({ prefix: "fleetprov-bench-emu-" });
  const child = new Deno.Command(binary, {
    args: ["emulator", "--state-dir", join(state, "state"), "--port", "0"],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/^listening: /m.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the emulator exited before listening: ${text}`);
    text += value;
  }
  return {
    config: join(state, "state", "device-client.conf"),
    async stop() {
      child.kill("SIGTERM");
      while (!(await reader.read()).done) { /* drain */ }
      await child.status;
      await Deno.remove(state, { recursive: true });
    },
  };
}

function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((cell, i) => String(cell).padEnd(widths[i])).join("  ").trimEnd();
}

async function main(): Promise<void> {
  const targets = TARGET_IDS.filter((id) => hostRunner(id).ok);
  const skipped = TARGET_IDS.filter((id) => !targets.includes(id));
  if (skipped.length) console.log(`(skipping ${skipped.join(", ")}: cannot run that code here)`);
  const report = await build({ targets, log: () => {} });

  console.log("\n== Size: binary vs bare stripped runtime (target: <= +3 MB)");
  const widths = [8, 10, 12, 12, 10, 6];
  console.log(row(["target", "node", "binary", "bare", "overhead", "ok"], widths));
  for (const built of report.targets) {
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
  }

  const x64 = report.targets.find((t) => t.id === "x64");
  if (!x64 || hostRunner("x64").ok === false || Deno.build.arch !== "x86_64") {
    console.log("\n(start-up and RSS are measured on x86_64 hosts only)");
    return;
  }
  const bareNode = await bareStripped("x64");

  console.log(`\n== Start-up, x64: fleetprov --version vs node -e 0, ${RUNS} runs each`);
  const timings: Record<string, { binary: number[]; bare: number[] }> = {
    "cold (page cache dropped before each run)": { binary: [], bare: [] },
    "warm": { binary: [], bare: [] },
  };
  for (let i = 0; i < RUNS; i++) {
    const cold = timings["cold (page cache dropped before each run)"];
    await evict(x64.path, bareNode);
    cold.binary.push(await timeRun(x64.path, ["--version"]));
    await evict(x64.path, bareNode);
    cold.bare.push(await timeRun(bareNode, ["-e", "0"]));
  }
  for (let i = 0; i < RUNS + 3; i++) {
    const binaryMs = await timeRun(x64.path, ["--version"]);
    const bareMs = await timeRun(bareNode, ["-e", "0"]);
    if (i < 3) continue; // warm-up
    timings.warm.binary.push(binaryMs);
    timings.warm.bare.push(bareMs);
  }
  for (const [label, { binary, bare }] of Object.entries(timings)) {
    const ratio = median(binary) / median(bare);
    console.log(
      `${label}: fleetprov ${median(binary).toFixed(1)} ms, node ${median(bare).toFixed(1)} ms ` +
        `(medians), ratio ${ratio.toFixed(2)}x (target <= 1.3x): ${ratio <= 1.3 ? "yes" : "NO"}`,
    );
  }

  console.log(
    "\n== Peak RSS, x64 (GNU time %M; binary dropped from the page cache before each run)",
  );
  await evict(bareNode);
  const bareRss = await peakRss(bareNode, ["-e", "0"]);
  await evict(x64.path);
  const versionRss = await peakRss(x64.path, ["--version"]);
  const emulatorCopy = join(CACHE, "fleetprov-emulator");
  await Deno.copyFile(x64.path, emulatorCopy);
  const emulator = await startEmulator(emulatorCopy);
  const provisions: number[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const home = await Deno.makeTempDir({ prefix: "fleetprov-bench-home-" });
      await Deno.mkdir(join(home, "lock"));
      await evict(x64.path);
      const result = await peakRss(x64.path, ["--config-file", emulator.config], {
        HOME: home,
        LOCK_FILE_PATH: join(home, "lock"),
        PATH: Deno.env.get("PATH") ?? "",
      });
      if (result.code !== 0) throw new Error(`provisioning failed:\n${result.output}`);
      provisions.push(result.kb);
      await Deno.remove(home, { recursive: true });
    }
  } finally {
    await emulator.stop();
  }
  const provisionKb = median(provisions);
  console.log(`node -e 0                   ${(bareRss.kb / 1024).toFixed(1)} MiB`);
  console.log(`fleetprov --version         ${(versionRss.kb / 1024).toFixed(1)} MiB`);
  console.log(
    `fleetprov full provisioning ${
      (provisionKb / 1024).toFixed(1)
    } MiB (median of ${provisions.length}, keys path)`,
  );
  const rssRatio = provisionKb / bareRss.kb;
  console.log(
    `ratio ${rssRatio.toFixed(2)}x (target <= 1.5x): ${rssRatio <= 1.5 ? "yes" : "NO"}`,
  );
}

if (import.meta.main) await main();
