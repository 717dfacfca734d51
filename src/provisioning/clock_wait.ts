// SPDX-License-Identifier: Apache-2.0
/**
 * The wait for a clock a run may trust, shared by every certificate run
 * (provisioning, rotation) and by the decisions taken on the clock before one
 * (is a journaled token still fresh, is a rotation due): the clock is judged
 * by src/clock/mod.ts (the build-time floor, a time this board recorded, the
 * credentials' validity, NTP's synchronised flag), polled every
 * {@linkcode CLOCK_POLL_MS}, and the wait ends at the run's deadline with 75.
 *
 * @module
 */
import { type ClockFloor, clockProblem, readClock, type ValidityWindow } from "../clock/mod.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { delay } from "./retry.ts";

/** How often a run waiting for the clock looks at it again (README: "polls every 0.5 s"). */
export const CLOCK_POLL_MS = 500;

/** What a run judges the clock by. */
export interface ClockFacts {
  /** Wall clock, epoch ms (tests move it). */
  now: () => number;
  /** When the credentials the run connects with are valid (undefined: not parseable here). */
  window: ValidityWindow | undefined;
  /** Times the clock cannot read before besides the build time (a journal's token issue). */
  floors: ClockFloor[];
  /** systemd-timesyncd's flag file, for tests (default: src/clock/mod.ts's TIMESYNC_FLAG). */
  timesyncFlag?: string;
}

/** One line saying why the clock cannot be trusted yet, or undefined when it can. */
export function clockIsWrong(facts: ClockFacts): string | undefined {
  const clock = readClock({ now: facts.now(), timesyncFlag: facts.timesyncFlag });
  return clockProblem(clock, { window: facts.window, floors: facts.floors });
}

/**
 * Logs once and polls while the clock cannot be trusted; 75 (kind `clock`)
 * when the wait would pass `deadline` (a performance.now() time, the run's).
 * Returns the trusted time (epoch ms).
 */
export async function awaitTrustedClock(
  facts: ClockFacts,
  options: { logger: Logger; deadline: number; deadlineMs: number },
): Promise<number> {
  const { logger, deadline } = options;
  let logged = false;
  for (let problem = clockIsWrong(facts); problem; problem = clockIsWrong(facts)) {
    const left = deadline - performance.now();
    if (left <= CLOCK_POLL_MS) {
      throw new FleetprovError(
        `${problem} Gave up at the ${
          options.deadlineMs / 1000
        } s deadline; systemd retries (exit 75).`,
        ExitCode.TempFail,
        { kind: "clock" },
      );
    }
    if (!logged) {
      logged = true;
      logger.warn(`${problem} Waiting up to ${Math.round(left / 1000)} s for it.`);
    }
    logger.debug(`The clock is not plausible yet; looking again in ${CLOCK_POLL_MS} ms.`);
    await delay(CLOCK_POLL_MS);
  }
  const now = facts.now();
  if (logged) logger.info(`The system clock is now plausible (${new Date(now).toISOString()}).`);
  return now;
}
