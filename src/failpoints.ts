// SPDX-License-Identifier: Apache-2.0
/**
 * Crash points for the power-loss tests: when `FLEETPROV_CRASH_AT` names a
 * point, the process kills itself with SIGKILL there, exactly as a power cut
 * would stop it (no cleanup, no flush). When `FLEETPROV_BUG_AT` names one, a
 * plain Error is thrown there, as a bug in fleetprov would (exit 70): the only
 * way the exit-code tests can reach 70 once the known bugs are fixed. When
 * `FLEETPROV_PAUSE_AT` names a pause point, the run says so on stderr and
 * waits there (an hour), so a test can send a signal at that moment. Unset,
 * a crash or pause point costs a string comparison or two.
 *
 * @module
 */
import process from "node:process";

/** The crash points, in the order a provisioning passes them. */
export const CRASH_POINTS = [
  "after-create-answer",
  // Inside the first atomic write (the journal's): its temporary file written, not renamed.
  "mid-write",
  "after-journal-created",
  "after-register-answer",
  "after-journal-registered",
  "after-certificate-file",
  "after-key-file",
  "after-runtime-config",
  "after-journal-committed",
  "after-verify",
  "after-journal-clear",
] as const;

/**
 * The crash points, in the order a rotation passes them: provisioning's for
 * the requests and the proof (made before the switch here), then the proven
 * journal, the switch's files and the journal's record of the rotation.
 */
export const ROTATION_CRASH_POINTS = [
  "after-create-answer",
  "after-journal-created",
  "after-register-answer",
  "after-journal-registered",
  "after-verify",
  "after-journal-proven",
  "after-certificate-file",
  "after-key-file",
  "after-runtime-config",
  "after-old-files-removed",
  "after-journal-rotated",
] as const;

/** One of {@linkcode CRASH_POINTS} or {@linkcode ROTATION_CRASH_POINTS}. */
export type CrashPoint = typeof CRASH_POINTS[number] | typeof ROTATION_CRASH_POINTS[number];

/** The pause points: moments a test may want to catch a run at. */
export const PAUSE_POINTS = ["loading-settings"] as const;

/** One of {@linkcode PAUSE_POINTS}. */
export type PausePoint = typeof PAUSE_POINTS[number];

const armed = process.env.FLEETPROV_CRASH_AT;
const pause = process.env.FLEETPROV_PAUSE_AT;
const bug = process.env.FLEETPROV_BUG_AT;

/** Kills the process (`FLEETPROV_CRASH_AT`) or throws (`FLEETPROV_BUG_AT`) when armed here. */
export function crashPoint(point: CrashPoint): void {
  if (armed === point) process.kill(process.pid, "SIGKILL");
  if (bug === point) throw new Error(`a simulated bug at ${point} (FLEETPROV_BUG_AT)`);
}

/** Waits an hour at `point` when `FLEETPROV_PAUSE_AT` names it (after a line on stderr). */
export async function pausePoint(point: PausePoint): Promise<void> {
  if (pause !== point) return;
  process.stderr.write(`fleetprov: paused at ${point} (FLEETPROV_PAUSE_AT)\n`);
  await new Promise((resolve) => setTimeout(resolve, 3_600_000));
}
