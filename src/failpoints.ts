// SPDX-License-Identifier: Apache-2.0
/**
 * Crash points for the power-loss tests: when `FLEETPROV_CRASH_AT` names a
 * point, the process kills itself with SIGKILL there, exactly as a power cut
 * would stop it (no cleanup, no flush). Unset, a crash point costs one
 * string comparison.
 *
 * @module
 */
import process from "node:process";

/** The crash points, in the order a provisioning passes them. */
export const CRASH_POINTS = [
  "after-create-answer",
  "after-journal-created",
  "after-register-answer",
  "after-journal-registered",
  "after-certificate-file",
  "after-key-file",
  "after-runtime-config",
  "after-journal-clear",
  "after-verify",
] as const;

/** One of {@linkcode CRASH_POINTS}. */
export type CrashPoint = typeof CRASH_POINTS[number];

const armed = process.env.FLEETPROV_CRASH_AT;

/** Kills the process with SIGKILL when `FLEETPROV_CRASH_AT` names this point. */
export function crashPoint(point: CrashPoint): void {
  if (armed === point) process.kill(process.pid, "SIGKILL");
}
