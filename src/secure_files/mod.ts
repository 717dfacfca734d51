// SPDX-License-Identifier: Apache-2.0
/**
 * Crash-safe file writes with strict modes: a temporary file created with the
 * final mode from the first byte, fsync, rename into place, directory fsync.
 * A process killed between the temporary file and the rename (power loss,
 * kill -9) leaves it behind; {@linkcode sweepTemporaries} removes those of
 * dead processes at the next start.
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
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { crashPoint } from "../failpoints.ts";

/** Temporary files this process created so far. */
let tempCounter = 0;

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
  const { tmp, fd } = createTemporary(dir, basename(path), options.mode);
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
    throw withPath(error, path);
  }
  closeSync(fd);
  crashPoint("mid-write");
  try {
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  fsyncDirectory(dir);
}

/** The name of a temporary file: `.<target>.<pid>-<time, base 36>-<counter>.tmp`. */
const TEMPORARY_NAME = /^\.[^/]+\.(\d+)-[0-9a-z]+-\d+\.tmp$/;

/**
 * Removes the temporary files {@linkcode writeFileAtomic} left in `dir` when
 * its process was killed mid-write: files named as it names them whose
 * process is gone. A live process's (another fleetprov writing now) and this
 * process's own are left alone, and so is anything else. Returns the names
 * removed.
 */
export function sweepTemporaries(dir: string): string[] {
  let names: string[];
  try {
    // Never through a link: a directory fleetprov would refuse to write into is not swept.
    if (!lstatSync(dir).isDirectory()) return [];
    names = readdirSync(dir);
  } catch {
    return []; // absent (not yet created) or unreadable: nothing of ours to sweep
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(TEMPORARY_NAME.exec(name)?.[1]);
    if (!pid || pid === process.pid || processIsAlive(pid)) continue;
    const path = join(dir, name);
    if (!lstatOrUndefined(path)?.isFile()) continue; // never a link, a directory, ...
    rmSync(path, { force: true });
    removed.push(name);
  }
  if (removed.length > 0) fsyncDirectory(dir);
  return removed;
}

/** True while process `pid` exists (also one of another user, EPERM). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Creates a new temporary file beside the target, with `mode` from the start
 * and never through a link. Its name holds the PID, the time and a counter;
 * one left by a process killed earlier (a PID comes back after a reboot) is
 * stepped over, not reused.
 */
function createTemporary(dir: string, name: string, mode: number): { tmp: string; fd: number } {
  for (let attempt = 0;; attempt++) {
    const tmp = join(
      dir,
      `.${name}.${process.pid}-${Date.now().toString(36)}-${++tempCounter}.tmp`,
    );
    try {
      const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL |
        constants.O_NOFOLLOW;
      return { tmp, fd: openSync(tmp, flags, mode) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 100) throw error;
    }
  }
}

/** Creates `path` (and missing parents) and sets its mode exactly. */
export function ensureDirectory(path: string, mode: number): void {
  const existing = lstatOrUndefined(path);
  if (existing && !existing.isDirectory()) {
    throw new Error(`${path} exists but is not a directory; remove it or choose another path.`);
  }
  if (!existing) makeDirectories(path, mode);
  chmodSync(path, mode);
}

/**
 * `mkdir -p`. Node's recursive mkdir reports ENOENT where the file system is
 * read-only (seen with the Node.js 24 runtime); then the missing levels are
 * made one by one, which fails with the real error (EROFS, EACCES).
 */
function makeDirectories(path: string, mode: number): void {
  try {
    mkdirSync(path, { recursive: true, mode });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    const missing: string[] = [];
    for (let dir = path; !lstatOrUndefined(dir) && dir !== dirname(dir); dir = dirname(dir)) {
      missing.unshift(dir);
    }
    for (const dir of missing) mkdirSync(dir, { mode });
    throw error; // not reached unless the levels appeared meanwhile
  }
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

/** Names the file in an fd-based error (write, fsync), which carries no path of its own. */
function withPath(error: unknown, path: string): unknown {
  const errno = error as NodeJS.ErrnoException;
  if (errno && typeof errno === "object" && errno.code && !errno.path) errno.path = path;
  return error;
}

function lstatOrUndefined(path: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
