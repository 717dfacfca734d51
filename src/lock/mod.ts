// SPDX-License-Identifier: Apache-2.0
/**
 * One run at a time: the Device Client's lock file (`/run/lock/devicecl.lock`,
 * directory overridable with `LOCK_FILE_PATH`) holding the owner's PID, with
 * stale-lock detection.
 *
 * @module
 */
import { closeSync, constants, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { ExitCode, FleetprovError, osFailure } from "../errors.ts";
import { processIsAlive } from "../secure_files/mod.ts";

/** Lock file name, shared with the Device Client so the two never run together. */
export const LOCK_FILE_NAME = "devicecl.lock";

/** A held lock. */
export interface Lock {
  /** The lock file's path. */
  path: string;
  /** Removes the lock file. */
  release(): void;
}

/** Returns the lock file path for an environment. */
export function lockPath(env: Record<string, string | undefined>): string {
  return join(env.LOCK_FILE_PATH || "/run/lock", LOCK_FILE_NAME);
}

/**
 * Takes the lock or throws (exit code 75, TempFail) when a live process holds it. A lock
 * left by a dead process is taken over.
 */
export function acquireLock(path: string): Lock {
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(
        path,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o644,
      );
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") {
        throw osFailure(error, { path }) ?? new FleetprovError(
          `Cannot create the lock file ${path} (${code}); set LOCK_FILE_PATH to a writable directory.`,
          ExitCode.Config,
        );
      }
      const owner = readOwner(path);
      if (owner !== undefined && owner !== process.pid && processIsAlive(owner)) {
        throw new FleetprovError(
          `Another fleetprov or Device Client (PID ${owner}) is running; it holds ${path}.`,
          ExitCode.TempFail,
        );
      }
      rmSync(path, { force: true });
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return {
      path,
      release: () => {
        if (readOwner(path) === process.pid) rmSync(path, { force: true });
      },
    };
  }
  throw new FleetprovError(
    `Cannot take the lock ${path}: other processes keep taking it.`,
    ExitCode.TempFail,
  );
}

function readOwner(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
