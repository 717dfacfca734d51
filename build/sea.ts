// SPDX-License-Identifier: Apache-2.0
/**
 * Node.js single executable application steps: make the preparation blob with
 * the runtime's own version, strip a copy of the runtime, inject the blob.
 *
 * @module
 */
import { findOnPath } from "./host.ts";

/** The fuse string Node.js looks for to know a blob was injected. */
export const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

/** Runs a command; throws with its output when it fails. */
async function run(command: string, args: string[], what: string): Promise<string> {
  const output = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) +
    new TextDecoder().decode(output.stderr);
  if (!output.success) {
    throw new Error(`${what} failed (${command} exited with ${output.code}):\n${text.trim()}`);
  }
  return text;
}

/**
 * V8 flags baked into binaries whose runtime supports SEA `execArgv` (Node.js
 * 24): a 1 MB semi-space and no optimising compilers (Ignition and Sparkplug
 * only). A one-shot provisioning run never gets hot enough to gain from
 * TurboFan or Maglev, and without them its peak RSS drops by about a fifth.
 */
export const SEA_EXEC_ARGV: readonly string[] = [
  "--max-semi-space-size=1",
  "--no-opt",
  "--no-maglev",
];

/** Whether Node.js `version` reads `execArgv` from the SEA config (24.6.0 and later). */
export function supportsExecArgv(version: string): boolean {
  const [major, minor] = version.split(".").map(Number);
  return major > 24 || (major === 24 && minor >= 6);
}

/**
 * Writes the SEA preparation blob for the bundle at `mainPath` to `blobPath`,
 * running `runner` (a Node.js runtime, possibly behind a QEMU prefix).
 * Without a code cache the blob depends only on the runtime's version; with
 * one (`useCodeCache`) it must be made by the target's own runtime, because
 * V8 rejects a cache made on another CPU architecture. No experimental warning
 * is printed at run time.
 */
export async function makeBlob(
  runner: string[],
  mainPath: string,
  options: { blobPath: string; useCodeCache: boolean; execArgv: readonly string[] },
): Promise<void> {
  const configPath = `${options.blobPath}.json`;
  await Deno.writeTextFile(
    configPath,
    JSON.stringify({
      main: mainPath,
      output: options.blobPath,
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: options.useCodeCache,
      ...(options.execArgv.length > 0 ? { execArgv: options.execArgv } : {}),
    }),
  );
  const [command, ...args] = runner;
  // The same V8 flags as at run time: they are part of the code cache's check.
  await run(
    command,
    [...args, ...options.execArgv, "--experimental-sea-config", configPath],
    "Making the SEA blob",
  );
}

/** The first of `candidates` on PATH, or null. */
export function findStrip(candidates: readonly string[]): string | null {
  for (const candidate of candidates) {
    const found = findOnPath(candidate);
    if (found) return found;
  }
  return null;
}

/** Strips symbols and debug info from `binary` in place with `stripTool`. */
export async function strip(stripTool: string, binary: string): Promise<void> {
  await run(stripTool, ["--strip-all", binary], `Stripping ${binary}`);
}

/**
 * Injects the blob into `binary` in place with postject (run in a child
 * process: its ELF library prints harmless warnings we only show on failure).
 */
export async function injectBlob(binary: string, blobPath: string): Promise<void> {
  const script = new URL("./postject_cli.ts", import.meta.url).pathname;
  await run(
    Deno.execPath(),
    [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
      script,
      binary,
      blobPath,
    ],
    `Injecting the SEA blob into ${binary}`,
  );
}
