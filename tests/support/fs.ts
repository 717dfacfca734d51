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
  const message = `${candidates[0]} is missing: install the Debian package ${debianPackage}.`;
  if (Deno.env.get("FLEETPROV_REQUIRE_TOOLS") === "1") throw new Error(message);
  console.error(`\n*** SKIPPING tests that need ${candidates[0]}: ${message} ***\n`);
  return undefined;
}
