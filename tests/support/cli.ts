// SPDX-License-Identifier: Apache-2.0
/**
 * Running the real CLI as a child process (`deno run main.ts`, or the binary
 * named by FLEETPROV_BIN) with a device's HOME, and reading what it printed.
 *
 * @module
 */
import { join } from "node:path";
import type { CrashPoint } from "../../src/failpoints.ts";
import type { Emulator } from "../../src/emulator/mod.ts";
import { assert, assertEquals } from "./assert.ts";
import { ROOT } from "./fs.ts";

/** Deno's cache, kept when a test changes HOME (it defaults to $HOME/.cache/deno). */
const DENO_DIR = Deno.env.get("DENO_DIR") ??
  join(Deno.env.get("HOME") ?? "/root", ".cache", "deno");

/** What a finished CLI run printed, and how it ended: exit code, or the signal that killed it. */
export interface RunResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** A finished CLI run that may have been killed (same as {@linkcode RunResult}). */
export type ChildResult = RunResult;

/** How to run the CLI: the device's HOME, extra environment, which binary. */
export interface RunOptions {
  home: string;
  env?: Record<string, string>;
  /** A binary to run instead of FLEETPROV_BIN (or Deno on main.ts). */
  bin?: string;
}

/** The command that runs fleetprov: the binary in FLEETPROV_BIN, else Deno on main.ts. */
export function fleetprovCommand(
  args: string[],
  options: { bin?: string } = {},
): { command: string; args: string[] } {
  const bin = options.bin ?? Deno.env.get("FLEETPROV_BIN");
  if (bin) return { command: bin, args };
  return {
    command: Deno.execPath(),
    args: ["run", "-A", "--quiet", join(ROOT, "main.ts"), ...args],
  };
}

/** The environment of a CLI child: HOME, a private lock dir, no colour, Deno's cache kept. */
export function fleetprovEnv(
  home: string,
  env: Record<string, string> = {},
): Record<string, string> {
  return {
    HOME: home,
    LOCK_FILE_PATH: join(home, "lock"),
    NO_COLOR: "1",
    DENO_DIR,
    DENO_NO_UPDATE_CHECK: "1",
    ...env,
  };
}

/** The CLI as a child process with piped output (Deno, or the binary in FLEETPROV_BIN). */
function spawnChild(args: string[], options: RunOptions): Deno.ChildProcess {
  const { command, args: fullArgs } = fleetprovCommand(args, options);
  return new Deno.Command(command, {
    args: fullArgs,
    env: fleetprovEnv(options.home, options.env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Starts the CLI as a child process with piped output; the caller may kill it. */
export function spawnFleetprov(
  args: string[],
  options: RunOptions,
): { child: Deno.ChildProcess; result: Promise<RunResult> } {
  const child = spawnChild(args, options);
  const result = child.output().then((output) => ({
    code: output.code,
    signal: output.signal,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  }));
  return { child, result };
}

/** Runs the CLI with HOME set to `options.home` to its end (or its death by signal). */
export function runFleetprov(args: string[], options: RunOptions): Promise<RunResult> {
  return spawnFleetprov(args, options).result;
}

/** Runs the CLI until it kills itself at a crash point (FLEETPROV_CRASH_AT), as a power cut would. */
export function runToCrashPoint(
  args: string[],
  options: RunOptions & { point: CrashPoint },
): Promise<RunResult> {
  return runFleetprov(args, {
    ...options,
    env: { ...options.env, FLEETPROV_CRASH_AT: options.point },
  });
}

/**
 * Retry settings that keep the tests fast: 5 s per step, 20 s in all, backoff
 * from 20 ms to 200 ms. Timing only bounds the run; tests assert on counts, so
 * a step a test does not mean to time out must not, even on a loaded 2-core CI
 * machine (an RSA key made on demand by the in-process emulator took over 2 s
 * there); a test about timeouts sets its own --step-timeout.
 */
export const FAST_RETRY = [
  "--step-timeout",
  "5",
  "--deadline",
  "20",
  "--retry-base-delay",
  "0.02",
  "--retry-max-delay",
  "0.2",
];

/** Retry settings that give up within a second: 1 s deadline and step timeout, backoff 50-200 ms. */
export const GIVE_UP_FAST = [
  "--deadline",
  "1",
  "--step-timeout",
  "1",
  "--retry-base-delay",
  "0.05",
  "--retry-max-delay",
  "0.2",
];

/** Arguments provisioning against `emulator` with its config file, a serial and fast retries. */
export function deviceArgs(
  emulator: Emulator,
  options: { serial?: string; extra?: string[]; retry?: string[] } = {},
): string[] {
  return [
    "--config-file",
    emulator.configPath,
    ...(options.serial === undefined ? [] : [
      "--fleet-provisioning-template-parameters",
      JSON.stringify({ SerialNumber: options.serial }),
    ]),
    ...withoutFlagsOf(options.retry ?? FAST_RETRY, options.extra ?? []),
    ...(options.extra ?? []),
  ];
}

/** `flags` (pairs of flag and value) without the flags that `overrides` gives again. */
function withoutFlagsOf(flags: string[], overrides: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flags.length; i += 2) {
    if (!overrides.includes(flags[i])) out.push(flags[i], flags[i + 1]);
  }
  return out;
}

/** The retry log lines of a run ("Attempt N failed at step S: ... Retrying in W ms."). */
export function retryLines(output: string): string[] {
  return output.split("\n").filter((line) => /Attempt \d+ failed at step /.test(line));
}

/**
 * Asserts the run printed its failure as one line: every stderr line starts
 * with "fleetprov:" (or is a timestamped log line when `logLines` allows it),
 * exactly one "fleetprov:" line, no stack frame anywhere. Returns that line.
 */
export function oneLineError(result: { stdout: string; stderr: string }, logLines = false): string {
  const all = result.stdout + result.stderr;
  assert(!/^\s+at /m.test(all), `stack frame in the output:\n${all}`);
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  const errors = lines.filter((line) => line.startsWith("fleetprov:"));
  for (const line of lines) {
    assert(
      line.startsWith("fleetprov:") || (logLines && /^\d{4}-\d\d-\d\dT\S+ \[[A-Z]+\] /.test(line)),
      `unexpected stderr line: ${line}`,
    );
  }
  assertEquals(errors.length, 1, `one error line expected:\n${result.stderr}`);
  return errors[0];
}

/** GNU time (Debian package `time`), which reports a child's peak RSS from wait4(2). */
const GNU_TIME = "/usr/bin/time";

/**
 * Runs the CLI to its end under GNU time and returns its result with the
 * child's peak resident set size (ru_maxrss, KiB). Undefined when GNU time
 * is missing (see {@linkcode findTool}).
 */
export async function runWithPeakRss(
  args: string[],
  options: RunOptions,
): Promise<RunResult & { peakRssKiB: number }> {
  const { command, args: fullArgs } = fleetprovCommand(args, options);
  const report = join(Deno.makeTempDirSync({ prefix: "fleetprov-rss-" }), "time.txt");
  const output = await new Deno.Command(GNU_TIME, {
    args: ["-f", "%M", "-o", report, command, ...fullArgs],
    env: fleetprovEnv(options.home, options.env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = Deno.readTextFileSync(report);
  const peak = Number.parseInt(text.trim().split("\n").at(-1) ?? "", 10);
  assert(Number.isInteger(peak) && peak > 0, `GNU time reported no peak RSS: ${text}`);
  // GNU time exits with the child's status (or 128+signal when it was killed).
  return {
    code: output.code,
    signal: output.signal,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
    peakRssKiB: peak,
  };
}

/** A CLI child whose output can be awaited line by line while it runs. */
export interface WatchedRun {
  child: Deno.ChildProcess;
  /** Resolves when stdout or stderr so far matches `pattern` (rejects if the run ends first). */
  until(pattern: RegExp): Promise<void>;
  /** The finished run. */
  result: Promise<RunResult>;
}

/** Starts the CLI and reads its output as it comes, so a test can act on a log line. */
export function watchFleetprov(args: string[], options: RunOptions): WatchedRun {
  const child = spawnChild(args, options);
  const text = { stdout: "", stderr: "" };
  const waiters = new Set<{ pattern: RegExp; resolve: () => void }>();
  const check = () => {
    for (const waiter of waiters) {
      if (waiter.pattern.test(text.stdout + text.stderr)) {
        waiters.delete(waiter);
        waiter.resolve();
      }
    }
  };
  const read = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text[key] += chunk;
      check();
    }
  };
  const done = Promise.all([read(child.stdout, "stdout"), read(child.stderr, "stderr")]);
  const result = Promise.all([child.status, done]).then(([status]) => ({
    code: status.code,
    signal: status.signal,
    ...text,
  }));
  return {
    child,
    result,
    until: (pattern) =>
      new Promise<void>((resolve, reject) => {
        waiters.add({ pattern, resolve });
        check();
        result.then((r) =>
          reject(new Error(`the run ended before ${pattern}:\n${r.stdout}${r.stderr}`))
        );
      }),
  };
}
