// SPDX-License-Identifier: Apache-2.0
/**
 * The retry bookkeeping every certificate run shares (provisioning with the
 * claim certificate, rotation with the device's own): attempts within one
 * deadline on a monotonic clock, backoff with jitter, the certificate cap,
 * the same refusal again and again told apart from a flaky link, and the wait
 * for a plausible clock. What differs between the runs (the step that proves
 * a new certificate, how a refusal is worded) comes in {@linkcode RunPolicy}.
 *
 * @module
 */
import type { ClockFloor } from "../clock/mod.ts";
import type { Settings } from "../config/settings.ts";
import { type FleetprovError, osFailure } from "../errors.ts";
import type { Logger } from "../log.ts";
import { SessionError } from "../mqtt/connection.ts";
import { RejectionError } from "../protocol/mod.ts";
import { awaitTrustedClock, type ClockFacts, clockIsWrong } from "./clock_wait.ts";
import {
  certificateCap,
  HANGUPS_MEAN_REFUSED,
  type JournalMark,
  journalNote,
  MAX_CERTIFICATES_PER_RUN,
  mayHaveMinted,
  POLICY_CLOSES,
} from "./outcome.ts";
import { backoffDelay, delay, isTransient } from "./retry.ts";

/** What differs between the runs that share {@linkcode Attempts}. */
export interface RunPolicy {
  /**
   * The step that connects with the new certificate: its CONNACK refusals are
   * retried (AWS attaches the new certificate's policy with a lag) and its
   * hang-ups are not taken for a refusal.
   */
  proofStep: string;
  /** The end of a run whose broker closed the connection right after the same request, again and again. */
  policyClose(step: string): FleetprovError;
  /** The end of a run whose broker hung up right after CONNECT, again and again. */
  hungUp(step: string): FleetprovError;
  /** The end of a run by a failure no retry can fix. */
  finalError(error: unknown, step: string, journal: JournalMark | undefined): FleetprovError;
  /** The end of a run at its deadline. */
  pastDeadline(error: unknown, step: string): FleetprovError;
  /** The end of a run at the certificate cap (default: provisioning's words). */
  certificateCap?(last: unknown): FleetprovError;
}

/** Options of {@linkcode Attempts}. */
export interface AttemptsOptions {
  logger: Logger;
  /**
   * What the clock is judged by: the wall clock, the credentials' validity,
   * the floors (more with {@linkcode Attempts.addFloor}). The deadline runs on
   * a monotonic clock.
   */
  clock: Omit<ClockFacts, "floors">;
  /** performance.now() at which the run gives up (default: the retry deadline from now). */
  deadline?: number;
  /** Called before each retry (the `--output json` line counts them). */
  onRetry?: () => void;
  policy: RunPolicy;
}

/** What {@linkcode Attempts.recover} needs to know about the run that failed. */
export interface Failure {
  /** The run's step when it failed. */
  step: string;
  /** What the disk keeps (which may be a step behind when its write failed). */
  journal: JournalMark | undefined;
  /** Starts over with a new certificate when the service refused the journaled token; true if it did. */
  startOver(): boolean;
  /** The run's step now (after a start-over). */
  current(): string;
}

/** One run's attempts: counted, spaced out, and ended at the deadline or the cap. */
export class Attempts {
  readonly #settings: Settings;
  readonly #o: AttemptsOptions;
  /** performance.now() at which the run gives up: immune to the wall clock jumping. */
  readonly #deadline: number;
  #attempt = 0;
  #retries = 0;
  #minted = 0;
  #policyCloses = 0;
  #hangupsInARow = 0;
  readonly #clock: ClockFacts;

  constructor(settings: Settings, options: AttemptsOptions) {
    this.#settings = settings;
    this.#o = options;
    this.#deadline = options.deadline ?? performance.now() + settings.retry.deadlineMs;
    this.#clock = { ...options.clock, floors: [] };
  }

  /** A time the clock cannot read before (a journal's token issue): judged by the clock wait. */
  addFloor(floor: ClockFloor): void {
    this.#clock.floors.push(floor);
  }

  /** How many attempts failed transiently and were retried. */
  get retries(): number {
    return this.#retries;
  }

  /** Counts the next attempt. */
  begin(): void {
    this.#attempt++;
  }

  /** The run moved to another step: closes after a request are counted afresh. */
  advanced(): void {
    this.#policyCloses = 0;
  }

  /**
   * A create request (CreateKeysAndCertificate, CreateCertificateFromCsr):
   * each certificate the service may have minted counts, whatever became of
   * it (its token refused, its answer malformed or lost on the way back).
   */
  async minting<T>(request: () => Promise<T>): Promise<T> {
    try {
      const result = await request();
      this.#minted++;
      return result;
    } catch (error) {
      if (mayHaveMinted(error)) this.#minted++;
      throw error;
    }
  }

  /**
   * After a failed step: an OS condition or a final failure ends the run; a
   * refused journaled token starts over (within the cap on certificates);
   * everything else waits (backoff with jitter) and retries, until the deadline.
   */
  async recover(error: unknown, failure: Failure): Promise<void> {
    const { step, journal } = failure;
    const os = osFailure(error, { note: journalNote(journal) });
    if (os) throw os;
    if (error instanceof SessionError && error.kind === "tls" && clockIsWrong(this.#clock)) {
      // A certificate "not yet valid" or "expired" here is the board's clock.
      await this.awaitPlausibleClock();
      return;
    }
    if (!(isRefusedToken(error) && step === "certificate-created" && failure.startOver())) {
      this.#countPolicyClose(error, step);
      if (!this.#retryable(error, step)) throw this.#o.policy.finalError(error, step, journal);
    }
    // The next attempt would ask for another certificate: not past the cap.
    if (failure.current() === "start" && this.#minted >= MAX_CERTIFICATES_PER_RUN) {
      throw this.#o.policy.certificateCap?.(error) ?? certificateCap(error);
    }
    await this.#backoff(error, { failed: step, now: failure.current() });
  }

  #retryable(error: unknown, step: string): boolean {
    // AWS attaches the new certificate's policy with a lag: a refused proof may pass later.
    return isTransient(error) ||
      (step === this.#o.policy.proofStep && error instanceof SessionError &&
        error.kind === "refused");
  }

  /**
   * The same refusal again and again, told apart from a flaky link: closes
   * right after the request (the policy), hang-ups right after CONNECT
   * (MQTT 3.1.1 refusing the certificate). A refused proof is not counted:
   * AWS attaches the new certificate's policy with a lag.
   */
  #countPolicyClose(error: unknown, step: string): void {
    const kind = error instanceof SessionError ? error.kind : undefined;
    const silent = error instanceof SessionError && error.closeDetail === "after-request";
    this.#policyCloses = silent ? this.#policyCloses + 1 : 0;
    this.#hangupsInARow = kind === "hangup" ? this.#hangupsInARow + 1 : 0;
    if (this.#policyCloses >= POLICY_CLOSES) throw this.#o.policy.policyClose(step);
    if (this.#hangupsInARow >= HANGUPS_MEAN_REFUSED && step !== this.#o.policy.proofStep) {
      throw this.#o.policy.hungUp(step);
    }
  }

  /** Waits before the next attempt, or ends the run when the wait would pass the deadline. */
  async #backoff(error: unknown, steps: { failed: string; now: string }): Promise<void> {
    const wait = backoffDelay(this.#attempt, this.#settings.retry);
    if (performance.now() + wait >= this.#deadline) {
      throw this.#o.policy.pastDeadline(error, steps.now);
    }
    this.#retries++;
    this.#o.onRetry?.();
    this.#o.logger.warn(
      `Attempt ${this.#attempt} failed at step ${steps.failed}: ${
        (error as Error).message
      } Retrying in ${wait} ms.`,
    );
    await delay(wait);
  }

  /**
   * Logs once and polls while the clock cannot be trusted (before a floor, or
   * outside the credentials' validity unsynchronised); 75 at the deadline.
   * Returns the trusted time (epoch ms).
   */
  async awaitPlausibleClock(): Promise<number> {
    return await awaitTrustedClock(this.#clock, {
      logger: this.#o.logger,
      deadline: this.#deadline,
      deadlineMs: this.#settings.retry.deadlineMs,
    });
  }
}

/** The service refused an ownership token (expired, or issued to another connection). */
function isRefusedToken(error: unknown): boolean {
  return error instanceof RejectionError &&
    error.rejection.errorCode === "InvalidCertificateOwnershipToken";
}
