// SPDX-License-Identifier: Apache-2.0
/**
 * Crash-safe file writes with strict modes: a temporary file created with the
 * final mode from the first byte, fsync, rename into place, directory fsync.
 *
 * @module
 */
import {
  chmodSync,
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

/** Options of {@linkcode writeFileAtomic}. */
export interface WriteOptions {
  /** File mode, e.g. 0o600. Applied at creation, before any byte is written. */
  mode: number;
}

/**
 * Writes `data` to `path` atomically: readers see the old file or the new one,
 * never a mix, even across power loss. Refuses to replace a symbolic link or
 * anything that is not a regular file.
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteOptions,
): void {
  const existing = lstatOrUndefined(path);
  if (existing && !existing.isFile()) {
    throw new Error(
      `Refusing to write ${path}: it is ${
        existing.isSymbolicLink() ? "a symbolic link" : "not a regular file"
      }; remove it first.`,
    );
  }
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    options.mode,
  );
  try {
    // The umask may have narrowed the mode at creation; set it exactly, before any byte.
    chmodSync(tmp, options.mode);
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  fsyncDirectory(dir);
}

/** Creates `path` (and missing parents) and sets its mode exactly. */
export function ensureDirectory(path: string, mode: number): void {
  const existing = lstatOrUndefined(path);
  if (existing && !existing.isDirectory()) {
    throw new Error(`${path} exists but is not a directory; remove it or choose another path.`);
  }
  if (!existing) mkdirSync(path, { recursive: true, mode });
  chmodSync(path, mode);
}

/** Flushes a directory's entries (renames, creations) to disk. */
export function fsyncDirectory(path: string): void {
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function lstatOrUndefined(path: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
