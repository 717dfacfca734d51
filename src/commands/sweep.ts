// SPDX-License-Identifier: Apache-2.0
/**
 * The opening of a run that writes (provisioning, rotate): its options, the
 * settings loaded, the logger made and handed to the SIGTERM handler, the
 * warnings and the ignored keys logged, and, as its first write, what a run
 * killed mid-write (power loss, kill -9) left in fleetprov's own directories
 * removed.
 *
 * @module
 */
import { ignoredNotice, loadSettings } from "../config/mod.ts";
import type { Settings } from "../config/settings.ts";
import type { FleetprovError } from "../errors.ts";
import { createLogger, type Logger } from "../log.ts";
import type { RunReport } from "../result_line.ts";
import { sweepTemporaries } from "../secure_files/mod.ts";
import type { StoppableRun } from "./sigterm.ts";

/** Options of a command that runs (provisioning, rotate). */
export interface RunCommandOptions {
  env?: Record<string, string | undefined>;
  home?: string;
  /** Filled in as the run goes, for `--output json`. */
  report?: RunReport;
  /** Send every log line to stderr (stdout carries the `--output json` line). */
  logToStderr?: boolean;
  /** Hears the failure of a run SIGTERM ends, just before the process exits. */
  onStop?: (error: FleetprovError) => void;
}

/**
 * Loads the settings from `args`, makes the logger, hands both to `stop`
 * (the SIGTERM handler), logs the warnings and the ignored keys, and sweeps
 * the temporary files of interrupted writes.
 */
export async function startRun(
  args: string[],
  options: RunCommandOptions & { env: Record<string, string | undefined>; stop: StoppableRun },
): Promise<{ settings: Settings; logger: Logger }> {
  const settings = await loadSettings(args, { env: options.env, home: options.home });
  const logger = createLogger(settings.logging, { stdoutToStderr: options.logToStderr });
  Object.assign(options.stop, { settings, logger });
  for (const warning of settings.warnings) logger.warn(warning);
  sweepOwnTemporaries(settings, logger);
  if (settings.ignored.length > 0) logger.info(ignoredNotice(settings.ignored));
  return { settings, logger };
}

/**
 * Removes the temporary files of interrupted writes in the config dir and
 * keys/ (both provisioning's and a rotation's files live there): only
 * writeFileAtomic's own names, of processes that are gone. Nothing else is
 * touched.
 */
export function sweepOwnTemporaries(settings: Settings, logger: Logger): void {
  for (const dir of [settings.configDir, settings.keysDir]) {
    const removed = sweepTemporaries(dir);
    if (removed.length === 0) continue;
    logger.info(
      `Removed ${removed.length} temporary file(s) an interrupted write left in ${dir}: ${
        removed.join(", ")
      }.`,
    );
  }
}
