// SPDX-License-Identifier: Apache-2.0
/**
 * Node.js single executable application steps: make the preparation blob with
 * the runtime's own version, strip a copy of the runtime, inject the blob.
 *
 * @module
 */
import { findOnPath, runChecked } from "./host.ts";

/** The fuse string Node.js looks for to know a blob was injected. */
export const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

/** Runs a command; throws with its output when it fails. */
async function run(command: string, args: string[], what: string): Promise<string> {
  const result = await runChecked(command, args, { what });
  return result.stdout + result.stderr;
}

/**
 * V8 flags baked into binaries whose runtime supports SEA `execArgv` (Node.js
 * 24): no optimising compilers (Ignition and Sparkplug only), and a young
 * generation fixed at 4 MB semi-spaces. A one-shot provisioning run never
 * gets hot enough to gain from TurboFan or Maglev, and without them its peak
 * RSS drops by about a fifth. A young generation that starts at its full 4 MB
 * spares the start-up the scavenges of a small one growing (about 3 ms of an
 * already-provisioned boot on x64); its pages are only touched as the run
 * allocates, so the peak RSS stays as it was with 1 MB.
 */
export const SEA_EXEC_ARGV: readonly string[] = [
  "--min-semi-space-size=4",
  "--max-semi-space-size=4",
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

/** The trailer magic of src/embedded.ts. */
const TRAILER_MAGIC = "FPEMBED1";

/**
 * Appends the bundle at `bundlePath` to `binary` as `name`, in the layout
 * src/embedded.ts reads: the bundle, the name, the name's length (u32), the
 * bundle's length (u64, little-endian), the magic.
 */
export async function appendBundle(
  binary: string,
  name: string,
  bundlePath: string,
): Promise<void> {
  const bundle = await Deno.readFile(bundlePath);
  const nameBytes = new TextEncoder().encode(name);
  const trailer = new Uint8Array(20);
  const view = new DataView(trailer.buffer);
  view.setUint32(0, nameBytes.length, true);
  view.setBigUint64(4, BigInt(bundle.length), true);
  trailer.set(new TextEncoder().encode(TRAILER_MAGIC), 12);
  const file = await Deno.open(binary, { append: true });
  try {
    for (const part of [bundle, nameBytes, trailer]) {
      for (let done = 0; done < part.length;) done += await file.write(part.subarray(done));
    }
  } finally {
    file.close();
  }
}
