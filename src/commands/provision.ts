// SPDX-License-Identifier: Apache-2.0
/**
 * The default command: provision the device unless it already is.
 *
 * @module
 */
import process from "node:process";
import { ignoredNotice, loadSettings } from "../config/mod.ts";
import { createLogger } from "../log.ts";
import { acquireLock, lockPath } from "../lock/mod.ts";
import { provision } from "../provisioning/mod.ts";
import { clearJournal } from "../provisioning/journal.ts";
import { ExitCode } from "../errors.ts";
import { certificateIdOfFile, type RunReport } from "../result_line.ts";

/** Options of {@linkcode runProvisionCommand}. */
export interface ProvisionCommandOptions {
  env?: Record<string, string | undefined>;
  home?: string;
  /** Filled in as the run goes, for `--output json`. */
  report?: RunReport;
  /** Send every log line to stderr (stdout carries the `--output json` line). */
  logToStderr?: boolean;
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
  if (!settings.fleetProvisioning.enabled) {
    logger.info(
      "Fleet provisioning is disabled (fleet-provisioning.enabled / --enable-fleet-provisioning); nothing to do.",
    );
    if (report) report.outcome = "disabled";
    return ExitCode.Ok;
  }
  if (settings.runtime.status === "provisioned") {
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
          certificateId: certificateIdOfFile(settings.runtime.cert),
          certificatePath: settings.runtime.cert,
          privateKeyPath: settings.runtime.key,
          runtimeConfigPath: settings.runtimeConfigPath,
        } satisfies Partial<RunReport>,
      );
    }
    return ExitCode.Ok;
  }
  if (settings.runtime.status === "not-provisioned") {
    logger.info(`Provisioning: ${settings.runtime.reason}`);
  }
  const lock = acquireLock(lockPath(env));
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
      `Provisioned thing ${result.thingName} with certificate ${result.certificateId} in ${
        Math.round(result.verifiedAt)
      } ms (runtime config written at ${
        Math.round(result.runtimeConfigWrittenAt)
      } ms, ${result.retries} retries).`,
    );
    logger.info(`Certificate: ${result.certPath}`);
    logger.info(`Private key: ${result.keyPath}`);
    logger.info(`Runtime config: ${settings.runtimeConfigPath}`);
    return ExitCode.Ok;
  } finally {
    lock.release();
  }
}
