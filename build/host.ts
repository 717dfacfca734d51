// SPDX-License-Identifier: Apache-2.0
/**
 * Running a target's machine code on this host: natively when the CPU matches,
 * otherwise under QEMU user-mode emulation with Debian's cross sysroots.
 *
 * @module
 */
import { type TargetId, TARGETS } from "./targets.ts";

/** How to run a program built for a target on this host. */
export type HostRunner =
  | { ok: true; emulated: boolean; prefix: string[] }
  | { ok: false; reason: string };

/** Returns the absolute path of `program` on PATH, or null. */
export function findOnPath(program: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const candidate = `${dir}/${program}`;
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return candidate;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/** Tells how this host runs code for `target`, or why it cannot. */
export function hostRunner(target: TargetId): HostRunner {
  const spec = TARGETS[target];
  if (spec.hostArch === Deno.build.arch) return { ok: true, emulated: false, prefix: [] };
  const qemu = findOnPath(spec.qemu);
  if (!qemu) {
    return {
      ok: false,
      reason: `${spec.qemu} is not on PATH (Debian package qemu-user-static)`,
    };
  }
  try {
    Deno.statSync(spec.sysroot);
  } catch {
    return {
      ok: false,
      reason:
        `the ${target} sysroot ${spec.sysroot} is missing (Debian cross packages libc6-*-cross, ` +
        `libstdc++6-*-cross)`,
    };
  }
  return { ok: true, emulated: true, prefix: [qemu, "-L", spec.sysroot] };
}

/** The result of a finished process. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `program args` for `target` on this host and collects its output. */
export function runFor(
  target: TargetId,
  program: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<RunResult> {
  const runner = hostRunner(target);
  if (!runner.ok) throw new Error(`Cannot run ${target} code here: ${runner.reason}.`);
  const [command, ...prefixArgs] = [...runner.prefix, program];
  return runCommand(command, [...prefixArgs, ...args], options);
}

/** Runs a command to completion, stdin closed, and collects what it printed. */
export async function runCommand(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<RunResult> {
  const output = await new Deno.Command(command, {
    args,
    env: options.env,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * Runs a command like {@linkcode runCommand} and returns its result; when it
 * fails, throws an error naming `what` (or the command line) with its output.
 */
export async function runChecked(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; what?: string } = {},
): Promise<RunResult> {
  const result = await runCommand(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${
        options.what ?? `${command} ${args.join(" ")}`
      } failed (${command} exited with ${result.code}):\n${(result.stdout + result.stderr).trim()}`,
    );
  }
  return result;
}
