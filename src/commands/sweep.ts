// SPDX-License-Identifier: Apache-2.0
/**
 * The first write of a run (provisioning, rotate): remove what a run killed
 * mid-write (power loss, kill -9) left in fleetprov's own directories.
 *
 * @module
 */
import type { Settings } from "../config/settings.ts";
import type { Logger } from "../log.ts";
import { sweepTemporaries } from "../secure_files/mod.ts";

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
