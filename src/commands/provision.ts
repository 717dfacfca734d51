// SPDX-License-Identifier: Apache-2.0
/**
 * The default command: provision the device unless it already is. On every
 * boot after the first it only finds that out: that path loads the settings
 * and the journals and nothing of provisioning (MQTT, TLS, X.509), which is
 * imported only when there is something to do. SIGTERM is handled from the
 * first moment (`commands/sigterm.ts`); then the stale temporary files are
 * swept, and a rotation an earlier run left pending is finished first
 * (`commands/rotate.ts`), whatever else the run does.
 *
 * @module
 */
import process from "node:process";
import type { Settings } from "../config/settings.ts";
import type { Logger } from "../log.ts";
import { clearJournal, proofPending } from "../provisioning/journal.ts";
import { pendingRotation } from "../rotation/journal.ts";
import { ExitCode } from "../errors.ts";
import type { ProvisionResult } from "../provisioning/mod.ts";
import { certificateIdOfFile, type RunReport } from "../result_line.ts";
import { untrusted } from "../text.ts";
import { stopOnSigterm } from "./sigterm.ts";
import { type RunCommandOptions, startRun } from "./sweep.ts";

/** Options of {@linkcode runProvisionCommand}. */
export type ProvisionCommandOptions = RunCommandOptions;

/** Runs a provisioning; returns the exit code (errors are thrown as FleetprovError). */
export async function runProvisionCommand(
  args: string[],
  options: ProvisionCommandOptions = {},
): Promise<number> {
  const env = options.env ?? process.env;
  // From the first moment, while the settings load too: SIGTERM ends the run with 75.
  const stop = stopOnSigterm({ journal: "provisioning", onStop: options.onStop });
  try {
    const { settings, logger } = await startRun(args, { ...options, env, stop: stop.run });
    const report = options.report;
    if (settings.runtime.status === "provisioned" && pendingRotation(settings.configDir)) {
      // A rotation an earlier run left (its switch, or its proof) is finished first, whatever else.
      const { finishPendingRotation } = await import("./rotate.ts");
      await finishPendingRotation(settings, { logger, env, report, stop: stop.run });
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
    stop.run.hold(acquireLock(lockPath(env)));
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
    logProvisioned(logger, { result, settings });
    return ExitCode.Ok;
  } finally {
    stop.off();
    stop.run.releaseAll();
  }
}

/** The lines of a successful provisioning. */
function logProvisioned(
  logger: Logger,
  done: { result: ProvisionResult; settings: Settings },
): void {
  const { result, settings } = done;
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
