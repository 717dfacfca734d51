// SPDX-License-Identifier: Apache-2.0
/**
 * `fleetprov rotate`: replace the board's certificate when it is due (older
 * than `--if-older-than`, or expiring within `--if-expires-within`; always
 * with `--force`), first finishing a rotation an earlier run left pending.
 * Without work it exits 0 with one line saying why, so a daily timer can run
 * it; the rotation settings are needed only once a rotation is due, and
 * whether one is due is judged only by a trusted clock. As a provisioning
 * run, it handles SIGTERM from its first moment and sweeps the stale
 * temporary files before anything else. It never takes the Device Client's
 * lock (the Device Client runs while the board rotates) but a lock of its
 * own, which every fleetprov run that finishes a rotation takes.
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError, osFailure } from "../errors.ts";
import { acquireLock, type Lock, lockPath } from "../lock/mod.ts";
import type { Logger } from "../log.ts";
import { proofPending } from "../provisioning/journal.ts";
import type { RunReport } from "../result_line.ts";
import { DEFAULT_DUE_POLICY, type DuePolicy, rotationDue } from "../rotation/due.ts";
import {
  type CurrentIdentity,
  currentIdentity,
  finishRotation,
  pendingRotation,
  rotate,
  type RotationResult,
  trustedNow,
} from "../rotation/mod.ts";
import { untrusted } from "../text.ts";
import { stopOnSigterm, type StoppableRun } from "./sigterm.ts";
import { type RunCommandOptions, startRun } from "./sweep.ts";

/** Lock file of the runs that rotate, beside the Device Client's (`LOCK_FILE_PATH`). */
export const ROTATION_LOCK_FILE_NAME = "fleetprov-rotate.lock";

/**
 * The file a successful switch leaves in `$RUNTIME_DIRECTORY` (set by systemd
 * for a unit with `RuntimeDirectory=`): fleetprov-rotate.service restarts
 * fleetprov-provisioned.target when it finds it, so the services bound to the
 * target (`PartOf=`) restart with the new certificate.
 */
export const ROTATED_MARKER = "rotated";

/** Options of {@linkcode runRotateCommand}. */
export type RotateCommandOptions = RunCommandOptions;

/** Runs `fleetprov rotate`; returns the exit code (errors are thrown as FleetprovError). */
export async function runRotateCommand(
  args: string[],
  options: RotateCommandOptions = {},
): Promise<number> {
  const env = options.env ?? process.env;
  // From the first moment, while the settings load too: SIGTERM ends the run with 75.
  const stop = stopOnSigterm({ journal: "rotation", onStop: options.onStop });
  try {
    const { policy, rest } = takeRotationFlags(args);
    const { settings, logger } = await startRun(rest, { ...options, env, stop: stop.run });
    const report = options.report;
    if (proofPending(settings)) {
      throw new FleetprovError(
        `Provisioning's new certificate has not connected yet (journal ${settings.configDir}/fleetprov-journal.json): fleetprov (fleetprov.service, at every boot) proves it first; rotate later (exit 75).`,
        ExitCode.TempFail,
      );
    }
    const identity = currentIdentity(settings);
    if (!identity) {
      const why = settings.runtime.status === "not-provisioned"
        ? settings.runtime.reason
        : `${settings.runtimeConfigPath} does not exist.`;
      logger.info(`Not provisioned (${why}); nothing to rotate.`);
      if (report) report.outcome = "not-provisioned";
      return ExitCode.Ok;
    }
    if (report) {
      fillIdentity(report, settings, identity);
      report.rotation = { oldCertificateId: identity.certificateId };
    }
    stop.run.hold(takeRotationLock(env));
    // One run, one deadline: the clock wait, the pending rotation and a new one share it.
    const deadline = performance.now() + settings.retry.deadlineMs;
    const run = { logger, deadline, onRetry: () => report && report.retries++ };
    // A pending rotation is finished whatever the thresholds say (and with the template it began with).
    const finished = await finishRotation(settings, identity, run);
    if (finished) return done(finished, { settings, logger, report, env });
    // Age and expiry are judged by a trusted clock: a board at 1970 would find nothing due.
    const now = await trustedNow(settings, identity, run);
    const due = rotationDue(identity, { policy, now: new Date(now) });
    logger.info(due.reason);
    if (!due.due) {
      if (report) report.outcome = "not-due";
      return ExitCode.Ok;
    }
    return done(await rotate(settings, identity, run), { settings, logger, report, env });
  } finally {
    stop.off();
    stop.run.releaseAll();
  }
}

/**
 * Finishes the rotation an earlier run left pending, before anything else a
 * run does (the default command calls it at every boot, before
 * fleetprov-provisioned.target starts the certificate's users): a proven one
 * with no network; a registered one (its certificate may have connected
 * already) by its proof first; one whose certificate is not registered yet is
 * left to `fleetprov rotate`. A refused proof keeps
 * the old identity (a backend retires the old certificate only once the new
 * one has connected) and the run goes on; what time can heal (the network,
 * a held lock) ends the run with 75, so the certificate's users wait for it.
 * True when a rotation was finished.
 */
export async function finishPendingRotation(
  settings: Settings,
  options: {
    logger: Logger;
    env: Record<string, string | undefined>;
    report?: RunReport;
    /** The run's SIGTERM handler: it releases the rotation lock and names the rotation's step. */
    stop: StoppableRun;
  },
): Promise<boolean> {
  const { logger, report, stop } = options;
  const identity = currentIdentity(settings);
  const pending = pendingRotation(settings.configDir);
  // Not registered yet: the old certificate is the only one AWS IoT knows; fleetprov rotate resumes it.
  if (!identity || !pending || pending.step === "certificate-created") return false;
  const lock = stop.hold(takeRotationLock(options.env));
  stop.journal = "rotation";
  try {
    const finished = await finishRotation(settings, identity, {
      logger,
      onRetry: () => report && report.retries++,
      proofRefusalIsFinal: true,
    });
    if (!finished) return false;
    logRotation(finished, logger);
    if (report) report.rotation = rotationOf(finished);
    return true;
  } catch (error) {
    if (!(error instanceof FleetprovError) || keepsRunWaiting(error)) throw error;
    logger.warn(
      `The pending rotation could not be finished: ${error.message} The board keeps certificate ${identity.certificateId}; fleetprov rotate retries.`,
    );
    return false;
  } finally {
    stop.journal = "provisioning";
    stop.release(lock);
  }
}

/** A failure the boot's run must not step over: time heals it, or the board's storage needs a person. */
function keepsRunWaiting(error: FleetprovError): boolean {
  return error.exitCode === ExitCode.TempFail ||
    ["read-only", "io-error", "permission", "disk-full"].includes(error.kind ?? "");
}

/** The end of a run that rotated: logged, reported, announced to systemd's unit. */
function done(
  result: RotationResult,
  context: {
    settings: Settings;
    logger: Logger;
    report: RunReport | undefined;
    env: Record<string, string | undefined>;
  },
): number {
  const { settings, logger, report, env } = context;
  logRotation(result, logger);
  if (report) {
    Object.assign(
      report,
      {
        outcome: "rotated",
        thingName: result.thingName,
        certificateId: result.newCertificateId,
        certificatePath: result.certPath,
        privateKeyPath: result.keyPath,
        runtimeConfigPath: settings.runtimeConfigPath,
        runtimeConfigWrittenMs: result.switchedAt,
        verifiedMs: result.provenAt,
        rotation: rotationOf(result),
      } satisfies Partial<RunReport>,
    );
  }
  leaveMarker(env, result, logger);
  return ExitCode.Ok;
}

function logRotation(result: RotationResult, logger: Logger): void {
  logger.info(
    `Rotated thing ${untrusted(result.thingName)} from certificate ${result.oldCertificateId} to ${
      untrusted(result.newCertificateId)
    }${
      result.resumedFrom === "start" ? "" : ` (finished from step ${result.resumedFrom})`
    }; the backend may retire the old certificate now.`,
  );
}

function rotationOf(result: RotationResult): RunReport["rotation"] {
  return { oldCertificateId: result.oldCertificateId, newCertificateId: result.newCertificateId };
}

function fillIdentity(report: RunReport, settings: Settings, identity: CurrentIdentity): void {
  Object.assign(
    report,
    {
      thingName: identity.thingName,
      certificateId: identity.certificateId,
      certificatePath: identity.certPath,
      privateKeyPath: identity.keyPath,
      runtimeConfigPath: settings.runtimeConfigPath,
    } satisfies Partial<RunReport>,
  );
}

/**
 * Under systemd (`$RUNTIME_DIRECTORY`), leaves {@linkcode ROTATED_MARKER} for
 * the unit's ExecStopPost=. A failure to write it is logged, not fatal: the
 * board already uses the new certificate.
 */
function leaveMarker(
  env: Record<string, string | undefined>,
  result: RotationResult,
  logger: Logger,
): void {
  const dir = env.RUNTIME_DIRECTORY?.split(":")[0];
  if (!dir) return;
  const path = join(dir, ROTATED_MARKER);
  try {
    writeFileSync(path, `${result.oldCertificateId} ${result.newCertificateId}\n`, {
      mode: 0o644,
    });
  } catch (error) {
    logger.warn(
      `Cannot write ${path} (${
        osFailure(error)?.message ?? (error as Error).message
      }); the services bound to fleetprov-provisioned.target are not restarted.`,
    );
  }
}

/** The rotation lock, in the Device Client lock's directory (`LOCK_FILE_PATH`). */
function takeRotationLock(env: Record<string, string | undefined>): Lock {
  return acquireLock(join(dirname(lockPath(env)), ROTATION_LOCK_FILE_NAME));
}

/** Takes `--if-older-than`, `--if-expires-within` and `--force` out of `args`. */
export function takeRotationFlags(args: string[]): { policy: DuePolicy; rest: string[] } {
  const policy = { ...DEFAULT_DUE_POLICY };
  const rest: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].startsWith("--") ? split(args[i]) : [args[i], undefined];
    if (flag !== "--if-older-than" && flag !== "--if-expires-within" && flag !== "--force") {
      rest.push(args[i]);
      continue;
    }
    if (seen.has(flag)) {
      throw new FleetprovError(`${flag} is given more than once; give it once.`, ExitCode.Config);
    }
    seen.add(flag);
    if (flag === "--force") {
      if (inline !== undefined) {
        throw new FleetprovError("--force takes no value.", ExitCode.Config);
      }
      policy.force = true;
      continue;
    }
    const days = parseDays(flag, inline ?? args[++i]);
    if (flag === "--if-older-than") policy.ifOlderThanDays = days;
    else policy.ifExpiresWithinDays = days;
  }
  return { policy, rest };
}

function split(arg: string): [string, string | undefined] {
  const at = arg.indexOf("=");
  return at < 0 ? [arg, undefined] : [arg.slice(0, at), arg.slice(at + 1)];
}

function parseDays(flag: string, value: string | undefined): number {
  const days = value === undefined || value.trim() === "" ? NaN : Number(value);
  if (!Number.isFinite(days) || days < 0) {
    throw new FleetprovError(
      `${flag} is ${
        value === undefined ? "missing its value" : JSON.stringify(value.slice(0, 80))
      }; expected a number of days, 0 or more, e.g. ${flag} 30.`,
      ExitCode.Config,
    );
  }
  return days;
}
