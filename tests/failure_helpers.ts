// SPDX-License-Identifier: Apache-2.0
/**
 * Helpers of the failure-handling tests (crash, faults, hostile input,
 * secrets, storm): running the CLI as a child that may be killed, fast retry
 * flags, and checks of a device's files after a run.
 *
 * @module
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Emulator } from "../src/emulator/mod.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { fleetprovCommand, modeOf } from "./support/mod.ts";

/** Template name the failure tests' emulators use. */
export const TEMPLATE_NAME = "BoardTemplate";

/**
 * Retry settings that keep the tests fast: 2 s per step, 20 s in all, backoff
 * from 20 ms to 200 ms. Timing only bounds the run; tests assert on counts.
 */
export const FAST_RETRY = [
  "--step-timeout",
  "2",
  "--deadline",
  "20",
  "--retry-base-delay",
  "0.02",
  "--retry-max-delay",
  "0.2",
];

/** What a child run ended with: exit code or signal, and everything it printed. */
export interface ChildResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** The environment every CLI child gets (HOME and a private lock dir). */
export function childEnv(home: string, env: Record<string, string> = {}): Record<string, string> {
  return { HOME: home, LOCK_FILE_PATH: join(home, "lock"), NO_COLOR: "1", ...env };
}

/** Starts the CLI as a child process with piped output; the caller may kill it. */
export function spawnFleetprov(
  args: string[],
  options: { home: string; env?: Record<string, string> },
): { child: Deno.ChildProcess; result: Promise<ChildResult> } {
  const { command, args: fullArgs } = fleetprovCommand(args);
  const child = new Deno.Command(command, {
    args: fullArgs,
    env: childEnv(options.home, options.env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const result = child.output().then((output) => ({
    code: output.code,
    signal: output.signal,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  }));
  return { child, result };
}

/** Runs the CLI to its end (or its death by signal). */
export function runChild(
  args: string[],
  options: { home: string; env?: Record<string, string> },
): Promise<ChildResult> {
  return spawnFleetprov(args, options).result;
}

/** Arguments provisioning against `emulator` with its config file, a serial and fast retries. */
export function deviceArgs(
  emulator: Emulator,
  options: { serial?: string; extra?: string[] } = {},
): string[] {
  return [
    "--config-file",
    emulator.configPath,
    ...(options.serial === undefined ? [] : [
      "--fleet-provisioning-template-parameters",
      JSON.stringify({ SerialNumber: options.serial }),
    ]),
    ...withoutFlagsOf(FAST_RETRY, options.extra ?? []),
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

/** The Device Client config dir of a device home. */
export function configDirOf(home: string): string {
  return join(home, ".aws-iot-device-client");
}

/** The runtime config path of a device home. */
export function runtimeConfigPathOf(home: string): string {
  return join(configDirOf(home), "aws-iot-device-client-runtime.conf");
}

/** Every file under `dir` (relative paths), following no links. */
export function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const parent = (entry as { parentPath?: string; path?: string }).parentPath ??
      (entry as { path?: string }).path ?? dir;
    const full = join(parent, entry.name);
    if (!entry.isDirectory()) out.push(full.slice(dir.length + 1));
  }
  return out.sort();
}

/** Asserts that no temporary file of an atomic write is left in the config dir. */
export function assertNoTempFiles(home: string): void {
  const temps = listFiles(configDirOf(home)).filter((f) => /(^|\/)\.[^/]*\.tmp$/.test(f));
  assertEquals(temps, [], "temporary files left behind");
}

/**
 * Asserts the runtime config is absent or valid JSON with `completed-fp` true
 * and the files it names present; returns the parsed section when present.
 */
export function runtimeConfigIfAny(home: string): Record<string, unknown> | undefined {
  const path = runtimeConfigPathOf(home);
  if (!existsSync(path)) return undefined;
  const parsed = JSON.parse(readFileSync(path, "utf8"))["runtime-config"];
  assertEquals(parsed["completed-fp"], true);
  for (const key of ["cert", "key"]) {
    assert(existsSync(parsed[key]), `the runtime config's ${key} ${parsed[key]} exists`);
  }
  return parsed;
}

/**
 * Asserts a device is provisioned: runtime config valid (0640), active files
 * with strict modes, no journal, no temp files; returns the thing name and
 * the certificate PEM it uses.
 */
export function assertProvisioned(home: string): { thingName: string; certificatePem: string } {
  const rc = runtimeConfigIfAny(home);
  assert(rc, "runtime config written");
  const configDir = configDirOf(home);
  const keysDir = join(configDir, "keys");
  assertEquals(modeOf(runtimeConfigPathOf(home)), "640");
  assertEquals(modeOf(keysDir), "700");
  assertEquals(modeOf(join(keysDir, "active-certificate.pem.crt")), "644");
  assertEquals(modeOf(join(keysDir, "active-private.pem.key")), "600");
  for (const file of listFiles(keysDir)) {
    assertEquals(modeOf(join(keysDir, file)), file.endsWith(".key") ? "600" : "644", file);
  }
  assert(!existsSync(join(configDir, "fleetprov-journal.json")), "journal removed");
  assertNoTempFiles(home);
  return {
    thingName: String(rc["thing-name"]),
    certificatePem: readFileSync(String(rc.cert), "utf8"),
  };
}

/** Device certificates in the registry (the claim certificate left out), by status. */
export function certificateStatuses(emulator: Emulator): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const cert of emulator.registry.certificates()) {
    if (cert.claim) continue;
    counts[cert.status] = (counts[cert.status] ?? 0) + 1;
  }
  return counts;
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

/** Size of a file, or -1 when absent (for "nothing was written" checks). */
export function sizeOf(path: string): number {
  return existsSync(path) ? statSync(path).size : -1;
}

/** Runs cases as concurrent steps, `width` at a time; each has its own emulator and home. */
export async function concurrentSteps(
  t: Deno.TestContext,
  cases: { name: string; fn: () => Promise<void> }[],
  width = 3,
): Promise<void> {
  const queue = [...cases];
  const failures: string[] = [];
  async function worker(): Promise<void> {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const ok = await t.step({
        name: next.name,
        fn: next.fn,
        sanitizeOps: false,
        sanitizeResources: false,
        sanitizeExit: false,
      });
      if (!ok) failures.push(next.name);
    }
  }
  await Promise.all(Array.from({ length: width }, worker));
  assertEquals(failures, []);
}
