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

/** What provisioning's and a rotation's journals hold of a certificate and its token. */
interface JournaledToken {
  step: string;
  certificateId: string;
  issuedAt: number;
}

/**
 * A journaled token was issued by a clock this board trusted: a correct clock
 * reads after it. `what` names the certificate ("certificate", "the
 * rotation's certificate").
 */
export function tokenFloor(entry: JournaledToken, what: string): ClockFloor {
  return {
    time: new Date(entry.issuedAt),
    what: `this board journaled ${what} ${entry.certificateId.slice(0, 12)}…`,
  };
}

/** The journal's token was issued by a clock this board trusted: the clock reads after it. */
export function journalFloor(entry: JournalEntry): ClockFloor {
  return tokenFloor(entry, "certificate");
}

/**
 * The warning for a journaled certificate whose ownership token a trusted
 * clock reading `now` finds stale (expired, or issued after now), or
 * undefined when the run may resume with it. `words`: the certificate as the
 * line names it, and what the run does instead.
 */
export function staleTokenWarning(
  entry: JournaledToken,
  now: number,
  words: { subject: string; restart: string },
): string | undefined {
  if (entry.step !== "certificate-created" || tokenStillValid(entry, now)) {
    return undefined;
  }
  const { subject, restart } = words;
  return now < entry.issuedAt
    ? `${subject} ${entry.certificateId} has an ownership token issued at ${
      new Date(entry.issuedAt).toISOString()
    }, after the clock NTP synchronised (${
      new Date(now).toISOString()
    }): its age is unknown; ${restart}.`
    : `${subject} ${entry.certificateId} has an expired ownership token; ${restart}.`;
}

/** Where the run starts, judged by a trusted clock: the journal's step, or over when its token is stale. */
export function resumeFromJournal(
  entry: JournalEntry | undefined,
  now: number,
  logger: Logger,
): StartState {
  if (!entry) return { step: "start" };
  const stale = staleTokenWarning(entry, now, {
    subject: "The journaled certificate",
    restart: "starting over with a new certificate",
  });
  if (stale) {
    logger.warn(stale);
    return { step: "start" };
  }
  logger.info(
    `Resuming provisioning at step ${entry.step} with certificate ${entry.certificateId}.`,
  );
  return entry;
}
