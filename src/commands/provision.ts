// SPDX-License-Identifier: Apache-2.0
/**
 * The default command: provision the device unless it already is. On every
 * boot after the first it only finds that out: that path loads the settings
 * and the journals and nothing of provisioning (MQTT, TLS, X.509), which is
 * imported only when there is something to do. A rotation an earlier run
 * left pending is finished first (`commands/rotate.ts`).
 *
 * @module
 */
import process from "node:process";
import { ignoredNotice, loadSettings } from "../config/mod.ts";
import type { Settings } from "../config/settings.ts";
import { createLogger, type Logger } from "../log.ts";
import type { Lock } from "../lock/mod.ts";
import { clearJournal, proofPending, readJournal } from "../provisioning/journal.ts";
import { pendingRotation } from "../rotation/journal.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import { certificateIdOfFile, type RunReport } from "../result_line.ts";
import { untrusted } from "../text.ts";

/** Options of {@linkcode runProvisionCommand}. */
export interface ProvisionCommandOptions {
  env?: Record<string, string | undefined>;
  home?: string;
  /** Filled in as the run goes, for `--output json`. */
  report?: RunReport;
  /** Send every log line to stderr (stdout carries the `--output json` line). */
  logToStderr?: boolean;
  /** Hears the failure of a run SIGTERM ends, just before the process exits. */
  onStop?: (error: FleetprovError) => void;
}

/** Runs a provisioning; returns the exit code (errors are thrown as FleetprovError). */
export async function runProvisionCommand(
  args: string[],
  options: ProvisionCommandOptions = {},
): Promise<number> {
  const env = options.env ?? process.env;
  const settings = await loadSettings(args, { env, home: options.home });
  const report = options.report;
  const logger = createLogger(settings.logging, { stdoutToStderr: options.logToStderr });
  for (const warning of settings.warnings) logger.warn(warning);
  if (settings.ignored.length > 0) {
    logger.info(ignoredNotice(settings.ignored));
  }
  if (settings.runtime.status === "provisioned" && pendingRotation(settings.configDir)) {
    // A rotation an earlier run left (its switch, or its proof) is finished first, whatever else.
    const { finishPendingRotation } = await import("./rotate.ts");
    await finishPendingRotation(settings, { logger, env, report });
  }
  if (!settings.fleetProvisioning.enabled) {
    logger.info(
      "Fleet provisioning is disabled (fleet-provisioning.enabled / --enable-fleet-provisioning); nothing to do.",
    );
    if (report) report.outcome = "disabled";
    return ExitCode.Ok;
  }
  if (await alreadyProvisioned(settings, { logger, report })) return ExitCode.Ok;
  const { acquireLock, lockPath } = await import("../lock/mod.ts");
  const { provision } = await import("../provisioning/mod.ts");
  const lock = acquireLock(lockPath(env));
  const stop = stopOnSigterm(settings, { lock, logger, onStop: options.onStop });
  try {
    const result = await provision(settings, {
      logger,
      onRetry: () => {
        if (report) report.retries++;
      },
    });
    if (report) {
      Object.assign(
        report,
        {
          outcome: "provisioned",
          thingName: result.thingName,
          certificateId: result.certificateId,
          certificatePath: result.certPath,
          privateKeyPath: result.keyPath,
          runtimeConfigPath: settings.runtimeConfigPath,
          runtimeConfigWrittenMs: result.runtimeConfigWrittenAt,
          verifiedMs: result.verifiedAt,
        } satisfies Partial<RunReport>,
      );
    }
    logger.info(
      `Provisioned thing ${untrusted(result.thingName)} with certificate ${
        untrusted(result.certificateId)
      } in ${Math.round(result.verifiedAt)} ms (runtime config written at ${
        Math.round(result.runtimeConfigWrittenAt)
      } ms, ${result.retries} retries).`,
    );
    logger.info(`Certificate: ${result.certPath}`);
    logger.info(`Private key: ${result.keyPath}`);
    logger.info(`Runtime config: ${settings.runtimeConfigPath}`);
    return ExitCode.Ok;
  } finally {
    stop();
    lock.release();
  }
}

/**
 * True (and logged, and reported) when the runtime config says provisioned
 * and no proof is pending; else logs why this run provisions.
 */
async function alreadyProvisioned(
  settings: Settings,
  options: { logger: Logger; report: RunReport | undefined },
): Promise<boolean> {
  const { logger, report } = options;
  if (proofPending(settings)) {
    logger.info(
      `The runtime config names the new certificate, but it has not connected yet (journal ${settings.configDir}/fleetprov-journal.json); retrying the proof only.`,
    );
    return false;
  }
  if (settings.runtime.status === "not-provisioned") {
    logger.info(`Provisioning: ${settings.runtime.reason}`);
  }
  if (settings.runtime.status !== "provisioned") return false;
  clearJournal(settings.configDir);
  logger.info(
    `Already provisioned as thing ${settings.runtime.thingName} (completed-fp is true in ${settings.runtimeConfigPath}); nothing to do.`,
  );
  if (report) {
    Object.assign(
      report,
      {
        outcome: "already-provisioned",
        thingName: settings.runtime.thingName,
        certificateId: await certificateIdOfFile(settings.runtime.cert),
        certificatePath: settings.runtime.cert,
        privateKeyPath: settings.runtime.key,
        runtimeConfigPath: settings.runtimeConfigPath,
      } satisfies Partial<RunReport>,
    );
  }
  return true;
}

/**
 * Until the returned function is called, SIGTERM (systemd stopping the unit,
 * at shutdown too) ends the run at once with exit 75: the lock released, the
 * journal as the last completed step left it, so the next start resumes.
 */
function stopOnSigterm(
  settings: Settings,
  options: { lock: Lock; logger: Logger; onStop?: (error: FleetprovError) => void },
): () => void {
  const handler = () => {
    // Journal writes are synchronous: a signal handled here never cuts one.
    const step = readJournal(settings.configDir)?.step ?? "start";
    options.lock.release();
    const stopped = new FleetprovError(
      `Stopped by SIGTERM at step ${step}; the journal keeps the progress and the next start resumes (exit ${ExitCode.TempFail}).`,
      ExitCode.TempFail,
      { kind: "stopped" },
    );
    options.logger.warn(stopped.message);
    options.onStop?.(stopped);
    process.exit(ExitCode.TempFail);
  };
  process.on("SIGTERM", handler);
  return () => process.off("SIGTERM", handler);
}
