// SPDX-License-Identifier: Apache-2.0
/**
 * SIGTERM (systemd stopping a unit, at shutdown too) from the first moment
 * of a run that connects (provisioning, rotate): the run ends at once with
 * exit 75, one line and the result line, whatever it is doing (loading the
 * settings, before any lock, mid-provisioning, mid-rotation), its locks
 * released and its journal as the last completed step left it, so the next
 * start resumes. Journal writes are synchronous: a signal handled here never
 * cuts one.
 *
 * @module
 */
import process from "node:process";
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import type { Lock } from "../lock/mod.ts";
import type { Logger } from "../log.ts";
import { writeStderr } from "../output.ts";
import { readJournal } from "../provisioning/journal.ts";
import { pendingRotation } from "../rotation/journal.ts";

/** What a SIGTERM handler knows of the run so far: filled in as the run goes. */
export class StoppableRun {
  settings?: Settings;
  logger?: Logger;
  /** Which journal holds the progress a stop keeps: provisioning's, or the rotation's. */
  journal: "provisioning" | "rotation" = "provisioning";
  readonly #locks = new Set<Lock>();

  /** Registers a lock the run took: a stop releases it. */
  hold(lock: Lock): Lock {
    this.#locks.add(lock);
    return lock;
  }

  /** Releases a lock the run holds. */
  release(lock: Lock | undefined): void {
    if (!lock) return;
    this.#locks.delete(lock);
    lock.release();
  }

  /** Releases every lock the run holds. */
  releaseAll(): void {
    for (const lock of this.#locks) this.release(lock);
  }
}

/**
 * Until `off` is called, SIGTERM ends the run with 75: `onStop` hears the
 * failure (the `--output json` line) just before the process exits.
 */
export function stopOnSigterm(
  options: { journal: StoppableRun["journal"]; onStop?: (error: FleetprovError) => void },
): { run: StoppableRun; off: () => void } {
  const run = new StoppableRun();
  run.journal = options.journal;
  const handler = () => {
    run.releaseAll();
    const stopped = new FleetprovError(stopMessage(run), ExitCode.TempFail, { kind: "stopped" });
    if (run.logger) run.logger.warn(stopped.message);
    else writeStderr(`fleetprov: ${stopped.message}\n`);
    options.onStop?.(stopped);
    process.exit(ExitCode.TempFail);
  };
  process.on("SIGTERM", handler);
  return { run, off: () => process.off("SIGTERM", handler) };
}

/** What a SIGTERM stopped, and what the next start does. */
function stopMessage(run: StoppableRun): string {
  const settings = run.settings;
  if (!settings) {
    return `Stopped by SIGTERM while loading the settings; nothing was started, and the next start begins again (exit ${ExitCode.TempFail}).`;
  }
  if (run.journal === "rotation") {
    const step = pendingRotation(settings.configDir)?.step ?? "start";
    return `Stopped by SIGTERM at rotation step ${step}; the journal keeps the progress and the next run resumes (exit ${ExitCode.TempFail}).`;
  }
  const step = readJournal(settings.configDir)?.step ?? "start";
  return `Stopped by SIGTERM at step ${step}; the journal keeps the progress and the next start resumes (exit ${ExitCode.TempFail}).`;
}
