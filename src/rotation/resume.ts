// SPDX-License-Identifier: Apache-2.0
/**
 * Where a rotation run starts: from the journal of an earlier run when it
 * belongs to this board (same endpoint and thing, and the runtime config
 * still on the certificate it replaces, or on the new one when a switch was
 * cut), else from the start; a journal of another identity (the board was
 * provisioned again since) is dropped. As provisioning's, the journal is
 * judged (is its ownership token still fresh?) only by a trusted clock, and
 * sets a floor under it.
 *
 * @module
 */
import type { ClockFloor } from "../clock/mod.ts";
import type { Settings } from "../config/settings.ts";
import type { Logger } from "../log.ts";
import { staleTokenWarning, tokenFloor } from "../provisioning/resume.ts";
import type { CurrentIdentity } from "./identity.ts";
import { clearRotationJournal, type PendingRotation, readRotationJournal } from "./journal.ts";

/** The pending rotation of this board's identity, if any; one of another identity is dropped. */
export function rotationJournalOf(
  settings: Settings,
  options: { identity: CurrentIdentity; logger: Logger },
): PendingRotation | undefined {
  const { identity, logger } = options;
  const entry = readRotationJournal(settings.configDir);
  if (!entry || entry.step === "done") return undefined;
  const current = identity.certificateId;
  const belongs = entry.endpoint === settings.endpoint &&
    entry.replaces.thingName === identity.thingName &&
    (entry.replaces.certificateId === current ||
      (entry.step === "proven" && entry.certificateId === current));
  if (!belongs) {
    // The board was provisioned again since (or moved endpoints): that rotation cannot be finished.
    clearRotationJournal(settings.configDir);
    logger.warn(
      `Dropped the rotation journal: it replaces certificate ${entry.replaces.certificateId} of thing ${entry.replaces.thingName} at ${entry.endpoint}, and the runtime config names certificate ${current} of thing ${identity.thingName} at ${settings.endpoint}.`,
    );
    return undefined;
  }
  return entry;
}

/** The journal's token was issued by a clock this board trusted: a correct clock reads after it. */
export function rotationFloor(entry: PendingRotation): ClockFloor {
  return tokenFloor(entry, "the rotation's certificate");
}

/**
 * Where the rotation starts, `now` read from a trusted clock: the journal's
 * step, or the start when the journaled token is stale (a new certificate).
 */
export function resumeRotation(
  entry: PendingRotation | undefined,
  now: number,
  logger: Logger,
): { step: "start" } | PendingRotation {
  if (!entry) return { step: "start" };
  const stale = staleTokenWarning(entry, now, {
    subject: "The rotation's certificate",
    restart: "starting the rotation over with a new certificate",
  });
  if (stale) {
    logger.warn(stale);
    return { step: "start" };
  }
  logger.info(
    `Resuming the rotation of certificate ${entry.replaces.certificateId} at step ${entry.step} with certificate ${entry.certificateId}.`,
  );
  return entry;
}

/**
 * When the board was provisioned (epoch ms): as the last rotation recorded
 * it when that rotation made the current certificate, else when the runtime
 * config was written (provisioning writes it; a rotation carries the time on).
 */
export function provisionedAt(configDir: string, identity: CurrentIdentity): number {
  const record = readRotationJournal(configDir);
  const carried = record?.step === "done" && record.certificateId === identity.certificateId
    ? record.replaces.provisionedAt
    : record && record.step !== "done" && record.replaces.certificateId === identity.certificateId
    ? record.replaces.provisionedAt
    : undefined;
  return carried ?? identity.runtimeConfigWrittenAt;
}
