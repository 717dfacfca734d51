// SPDX-License-Identifier: Apache-2.0
/**
 * Files in tests: the repository root, temporary directories, modes, and
 * listings.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { chmodSync, existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { skipWhenMissing } from "./skip.ts";

/** Repository root. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Creates a temporary directory (mode 0700) and returns its path. */
export function tempDir(prefix = "fleetprov-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o700);
  return dir;
}

/** The permission bits of a path, as an octal string like "600". */
export function modeOf(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

/** Writes a file with an exact mode. */
export function writeWithMode(path: string, text: string, mode: number): void {
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
}

/** Size of a file, or -1 when absent (for "nothing was written" checks). */
export function sizeOf(path: string): number {
  return existsSync(path) ? statSync(path).size : -1;
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

/** Every .ts file under `dir` (recursively), relative to `dir`, sorted. */
export function sourceFilesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith(".ts"))
    .sort();
}

/**
 * Finds a tool installed from a Debian package. Missing, the test is skipped
 * with a loud reason, unless FLEETPROV_REQUIRE_TOOLS=1 (set by .ci/run, which
 * installs the packages) makes that a failure.
 */
export function findTool(candidates: string[], debianPackage: string): string | undefined {
  for (const path of candidates) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // try the next one
    }
  }
  skipWhenMissing(`${candidates[0]} is missing: install the Debian package ${debianPackage}.`, {
    require: "FLEETPROV_REQUIRE_TOOLS",
    what: `the tests that need ${candidates[0]}`,
  });
  return undefined;
}

/** A tmpfs mounted for a test: real ENOSPC when full, real EROFS when read-only. */
export interface Tmpfs {
  path: string;
  /** Remounts it read-only (true) or read-write (false). */
  setReadOnly(readOnly: boolean): void;
  unmount(): void;
}

/**
 * True when this process may mount file systems (root). Not root, the tests
 * that need it are skipped with a loud reason, unless FLEETPROV_REQUIRE_TOOLS=1
 * (set by .ci/run, which runs as root) makes that a failure.
 */
export function canMount(): boolean {
  return !skipWhenMissing(
    Deno.uid() === 0 ? undefined : "tmpfs mounts need root (CI runs as root).",
    { require: "FLEETPROV_REQUIRE_TOOLS", what: "the tests that mount tmpfs" },
  );
}

/** Mounts a tmpfs of `sizeKiB` on a fresh directory. */
export function mountTmpfs(sizeKiB: number): Tmpfs {
  const path = tempDir("fleetprov-tmpfs-");
  const mount = (args: string[]) => {
    const out = new Deno.Command("mount", { args, stdout: "piped", stderr: "piped" }).outputSync();
    if (!out.success) {
      throw new Error(`mount ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  mount(["-t", "tmpfs", "-o", `size=${sizeKiB}k,mode=0700`, "tmpfs", path]);
  return {
    path,
    setReadOnly: (readOnly) => mount(["-o", `remount,${readOnly ? "ro" : "rw"}`, path]),
    unmount: () => {
      new Deno.Command("umount", { args: ["-l", path] }).outputSync();
    },
  };
}

/** Fills the file system holding `dir` to the last byte with a file `dir/filler`; returns its path. */
export function fillDisk(dir: string): string {
  const filler = join(dir, "filler");
  const fd = Deno.openSync(filler, { write: true, create: true });
  const block = new Uint8Array(64 * 1024);
  try {
    for (let size = block.length; size >= 1;) {
      try {
        fd.writeSync(block.subarray(0, size));
      } catch {
        size = Math.floor(size / 2);
      }
    }
  } finally {
    fd.close();
  }
  return filler;
}
