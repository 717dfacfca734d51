// SPDX-License-Identifier: Apache-2.0
/**
 * The switch to a proven certificate, with no network: its files and the
 * `active-*` copies the runtime config points at, the runtime config (the
 * rotation template's device configuration over the old one), then the old
 * certificate's own files go and the journal records the rotation. Each
 * write is atomic; the journal stays at "proven" until the end, so a run
 * killed anywhere in here does the whole switch again.
 *
 * @module
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Settings } from "../config/settings.ts";
import { crashPoint } from "../failpoints.ts";
import { commitFiles } from "../provisioning/files.ts";
import { fsyncDirectory } from "../secure_files/mod.ts";
import { type RotationDone, type RotationProven, writeRotationJournal } from "./journal.ts";

/**
 * Switches the board to `proven` (settings of the rotation's view) and
 * returns the record of the rotation. `deviceConfig` is the runtime config's
 * `device-config` before the switch.
 */
export function switchIdentity(
  settings: Settings,
  proven: RotationProven,
  options: { deviceConfig: Record<string, string>; now: number },
): RotationDone {
  commitFiles(settings, {
    ...proven,
    step: "registered",
    deviceConfiguration: { ...options.deviceConfig, ...proven.deviceConfiguration },
  });
  crashPoint("after-runtime-config");
  removeCredentials(settings.keysDir, proven.replaces.certificateId);
  crashPoint("after-old-files-removed");
  const done: RotationDone = {
    step: "done",
    thingName: proven.thingName,
    certificateId: proven.certificateId,
    replaces: proven.replaces,
    startedAt: proven.startedAt,
    rotatedAt: options.now,
  };
  writeRotationJournal(settings.configDir, done);
  crashPoint("after-journal-rotated");
  return done;
}

/**
 * Removes a replaced certificate's own files (`<id>-certificate.pem.crt`,
 * `<id>-private.pem.key`) from the keys dir; never the `active-*` files nor
 * anything outside the keys dir.
 */
function removeCredentials(keysDir: string, certificateId: string): void {
  for (const suffix of ["certificate.pem.crt", "private.pem.key"]) {
    rmSync(join(keysDir, `${certificateId}-${suffix}`), { force: true });
  }
  fsyncDirectory(keysDir);
}
