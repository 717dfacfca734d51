// SPDX-License-Identifier: Apache-2.0
/**
 * Where a run starts: the journal of this endpoint and template, judged (is
 * its ownership token still fresh?) only once the clock is trusted, and the
 * floor it sets under the clock (its token was issued by a clock this board
 * trusted, so a correct clock reads after it).
 *
 * @module
 */
import type { ClockFloor } from "../clock/mod.ts";
import type { Settings } from "../config/settings.ts";
import type { Logger } from "../log.ts";
import { type JournalEntry, readJournal, tokenStillValid } from "./journal.ts";

/** Where a run starts: from scratch, or at a journaled step. */
export type StartState = { step: "start" } | JournalEntry;

/** The journal of this endpoint and template, if any (another's is ignored, with a warning). */
export function journalOf(settings: Settings, logger: Logger): JournalEntry | undefined {
  const entry = readJournal(settings.configDir);
  if (!entry) return undefined;
  if (
    entry.endpoint !== settings.endpoint ||
    entry.templateName !== settings.fleetProvisioning.templateName
  ) {
    logger.warn("Ignoring the provisioning journal: it belongs to another endpoint or template.");
    return undefined;
  }
  return entry;
}

/** The journal's token was issued by a clock this board trusted: the clock reads after it. */
export function journalFloor(entry: JournalEntry): ClockFloor {
  return {
    time: new Date(entry.issuedAt),
    what: `this board journaled certificate ${entry.certificateId.slice(0, 12)}…`,
  };
}

/** Where the run starts, judged by a trusted clock: the journal's step, or over when its token is stale. */
export function resumeFromJournal(
  entry: JournalEntry | undefined,
  now: number,
  logger: Logger,
): StartState {
  if (!entry) return { step: "start" };
  if (entry.step === "certificate-created" && !tokenStillValid(entry, now)) {
    logger.warn(
      now < entry.issuedAt
        ? `The journaled certificate ${entry.certificateId} has an ownership token issued at ${
          new Date(entry.issuedAt).toISOString()
        }, after the clock NTP synchronised (${
          new Date(now).toISOString()
        }): its age is unknown; starting over with a new certificate.`
        : `The journaled certificate ${entry.certificateId} has an expired ownership token; starting over with a new certificate.`,
    );
    return { step: "start" };
  }
  logger.info(
    `Resuming provisioning at step ${entry.step} with certificate ${entry.certificateId}.`,
  );
  return entry;
}
