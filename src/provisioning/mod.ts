// SPDX-License-Identifier: Apache-2.0
/**
 * Fleet provisioning as a small state machine:
 *
 *   start ─create─▶ certificate-created ─RegisterThing─▶ registered
 *         ─write files + runtime config─▶ committed ─connect with new cert─▶ done
 *
 * Each completed step is journaled, so a run killed anywhere resumes where it
 * stopped (reusing a still-valid ownership token); the journal is removed only
 * once the new certificate has connected, so a refused proof is retried by
 * the next start instead of being taken for "provisioned". Before connecting,
 * the clock is checked against the claim certificate and root CA. Transient
 * failures are retried with backoff within the deadline (a monotonic clock);
 * final ones end the run at once; a run mints at most
 * {@linkcode MAX_CERTIFICATES_PER_RUN} certificates.
 *
 * @module
 */
import { existsSync } from "node:fs";
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError, osFailure } from "../errors.ts";
import { crashPoint } from "../failpoints.ts";
import type { Logger } from "../log.ts";
import { type Session, SessionError } from "../mqtt/connection.ts";
import { RejectionError } from "../protocol/mod.ts";
import { ensureDirectory } from "../secure_files/mod.ts";
import { untrusted } from "../text.ts";
import { clockProblem, type ValidityWindow, validityWindow } from "./clock.ts";
import { connect, preopen, type Preopened, verifyCredentials } from "./connect.ts";
import {
  checkOutputPaths,
  claimContext,
  type ClaimCredentials,
  commitFiles,
  credentialPaths,
  readClaimCredentials,
} from "./files.ts";
import {
  clearJournal,
  type Committed,
  type JournalEntry,
  readJournal,
  tokenStillValid,
  writeJournal,
} from "./journal.ts";
import {
  certificateCap,
  finalError,
  HANGUPS_MEAN_REFUSED,
  hungUp,
  journalNote,
  MAX_CERTIFICATES_PER_RUN,
  mayHaveMinted,
  pastDeadline,
  POLICY_CLOSES,
  policyClose,
} from "./outcome.ts";
import { claimSubscriptions } from "./plan.ts";
import { createCertificate, type CsrPlan, csrPlan, registerThing } from "./requests.ts";
import { backoffDelay, delay, isTransient } from "./retry.ts";

export { MAX_CERTIFICATES_PER_RUN } from "./outcome.ts";
export { proofPending } from "./journal.ts";

/** Mode of a config dir fleetprov creates: what the Device Client checks for. */
const CONFIG_DIR_MODE = 0o745;

/** How often a run waiting for the clock looks at it again. */
const CLOCK_POLL_MS = 500;

/** What a completed provisioning produced. */
export interface ProvisionResult {
  thingName: string;
  certificateId: string;
  certPath: string;
  keyPath: string;
  deviceConfiguration: Record<string, string>;
  /** Milliseconds since process start when the runtime config was written. */
  runtimeConfigWrittenAt: number;
  /** Milliseconds since process start when the new certificate's CONNACK arrived. */
  verifiedAt: number;
  /** How many attempts failed transiently and were retried. */
  retries: number;
}

/** Options of {@linkcode provision}. */
export interface ProvisionOptions {
  logger: Logger;
  /** Called before each retry (the `--output json` line counts them). */
  onRetry?: () => void;
  /** Wall clock, for tests (token ages, the clock check). The deadline runs on a monotonic clock. */
  now?: () => number;
}

type State = { step: "start" } | JournalEntry | { step: "done"; entry: Committed };

/** Provisions the device described by `settings`; throws {@linkcode FleetprovError} on failure. */
export async function provision(
  settings: Settings,
  options: ProvisionOptions,
): Promise<ProvisionResult> {
  return await new Provisioning(settings, options).run();
}

/** One provisioning run: its state, its claim session, and its retry bookkeeping. */
class Provisioning {
  readonly #settings: Settings;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #onRetry: (() => void) | undefined;
  readonly #claim: ClaimCredentials;
  /** performance.now() at which the run gives up: immune to the wall clock jumping. */
  readonly #deadline: number;
  readonly #window: ValidityWindow | undefined;
  #state: State;
  #session: Session | undefined;
  /** The proof's transport, opened while RegisterThing is in flight. */
  #proofTransport: Preopened | undefined;
  #plan: { value: CsrPlan | undefined } | undefined;
  #attempt = 0;
  #retries = 0;
  #minted = 0;
  #policyCloses = 0;
  #clockLogged = false;
  #hangupsInARow = 0;
  #runtimeConfigWrittenAt = 0;

  constructor(settings: Settings, options: ProvisionOptions) {
    this.#settings = settings;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#onRetry = options.onRetry;
    this.#deadline = performance.now() + settings.retry.deadlineMs;
    this.#claim = readClaimCredentials(settings);
    this.#window = validityWindow(this.#claim.cert, this.#claim.ca);
    checkOutputPaths(settings);
    if (!existsSync(settings.configDir)) ensureDirectory(settings.configDir, CONFIG_DIR_MODE);
    ensureDirectory(settings.keysDir, 0o700);
    this.#state = resumeFromJournal(settings, this.#now(), this.#logger);
  }

  /** Steps until done; a failure is retried, or ends the run, by {@linkcode recover}. */
  async run(): Promise<ProvisionResult> {
    await this.#awaitPlausibleClock();
    try {
      while (this.#state.step !== "done") {
        this.#attempt++;
        const step = this.#state.step;
        try {
          await this.#step();
          if (this.#state.step !== step) this.#policyCloses = 0;
        } catch (error) {
          await this.#recover(error);
        }
      }
    } finally {
      this.#proofTransport?.discard();
    }
    const entry = this.#state.entry;
    return {
      thingName: entry.thingName,
      certificateId: entry.certificateId,
      ...credentialPaths(this.#settings, entry),
      deviceConfiguration: entry.deviceConfiguration,
      runtimeConfigWrittenAt: this.#runtimeConfigWrittenAt,
      verifiedAt: performance.now(),
      retries: this.#retries,
    };
  }

  /** One step of the state machine, journaled, with its crash points. */
  async #step(): Promise<void> {
    const { configDir, runtimeConfigPath } = this.#settings;
    const state = this.#state;
    switch (state.step) {
      case "start": {
        // The key is made before the claim connection opens (once per run).
        this.#plan ??= { value: await csrPlan(this.#settings, this.#logger) };
        // Each certificate the service may have minted counts, whatever became
        // of it (its token refused, its answer malformed or lost on the way
        // back): #recover stops the run at the cap.
        try {
          this.#state = await createCertificate(await this.#claimSession(), this.#settings, {
            plan: this.#plan.value,
            now: this.#now,
            logger: this.#logger,
          });
          this.#minted++;
        } catch (error) {
          if (mayHaveMinted(error)) this.#minted++;
          throw error;
        }
        crashPoint("after-create-answer");
        writeJournal(configDir, this.#state);
        crashPoint("after-journal-created");
        break;
      }
      case "certificate-created": {
        const session = await this.#claimSession();
        const request = registerThing(session, this.#settings, state, this.#logger);
        this.#proofTransport = preopen(this.#settings, session.remoteAddress());
        this.#state = await request;
        crashPoint("after-register-answer");
        writeJournal(configDir, this.#state);
        crashPoint("after-journal-registered");
        await this.#dropSession();
        break;
      }
      case "registered":
        await this.#dropSession();
        commitFiles(this.#settings, state);
        this.#runtimeConfigWrittenAt = performance.now();
        crashPoint("after-runtime-config");
        this.#state = { ...state, step: "committed" };
        writeJournal(configDir, this.#state);
        crashPoint("after-journal-committed");
        this.#logger.info(`Wrote the runtime config ${runtimeConfigPath}.`);
        break;
      case "committed":
        await verifyCredentials(this.#settings, this.#claim, state, {
          logger: this.#logger,
          transport: this.#proofTransport,
        });
        this.#proofTransport = undefined;
        crashPoint("after-verify");
        clearJournal(configDir);
        crashPoint("after-journal-clear");
        this.#state = { step: "done", entry: state };
        break;
    }
  }

  /**
   * After a failed step: an OS condition or a final failure ends the run;
   * a refused journaled token starts over (within the cap on certificates);
   * everything else waits (backoff with jitter) and retries, until the deadline.
   */
  async #recover(error: unknown): Promise<void> {
    await this.#dropSession();
    this.#proofTransport?.discard();
    this.#proofTransport = undefined;
    const state = this.#state;
    // What the disk holds, which may be a step behind the state when its write failed.
    const journal = readJournal(this.#settings.configDir);
    const os = osFailure(error, { note: journalNote(journal) });
    if (os) throw os;
    if (error instanceof SessionError && error.kind === "tls" && this.#clockIsWrong()) {
      // A certificate "not yet valid" or "expired" here is the board's clock.
      return await this.#awaitPlausibleClock();
    }
    if (isRefusedToken(error, state)) {
      this.#logger.warn(
        `The ownership token for certificate ${
          untrusted(state.certificateId)
        } was refused; starting over with a new certificate.`,
      );
      clearJournal(this.#settings.configDir);
      this.#state = { step: "start" };
    } else {
      this.#countPolicyClose(error);
      if (!this.#retryable(error)) throw finalError(error, state.step, journal);
    }
    // The next attempt would ask for another certificate: not past the cap.
    if (this.#state.step === "start" && this.#minted >= MAX_CERTIFICATES_PER_RUN) {
      throw certificateCap(error);
    }
    await this.#backoff(error, state.step);
  }

  #retryable(error: unknown): boolean {
    // AWS attaches the new certificate's policy with a lag: a refused proof may pass later.
    return isTransient(error) ||
      (this.#state.step === "committed" && error instanceof SessionError &&
        error.kind === "refused");
  }

  /**
   * The same refusal again and again, told apart from a flaky link: closes
   * right after the request (the claim policy), hang-ups right after CONNECT
   * (MQTT 3.1.1 refusing the claim certificate). A refused proof is not
   * counted: AWS attaches the new certificate's policy with a lag.
   */
  #countPolicyClose(error: unknown): void {
    const kind = error instanceof SessionError ? error.kind : undefined;
    const silent = error instanceof SessionError && error.closeDetail === "after-request";
    this.#policyCloses = silent ? this.#policyCloses + 1 : 0;
    this.#hangupsInARow = kind === "hangup" ? this.#hangupsInARow + 1 : 0;
    const step = this.#state.step;
    if (this.#policyCloses >= POLICY_CLOSES) throw policyClose(step, this.#settings);
    if (this.#hangupsInARow >= HANGUPS_MEAN_REFUSED && step !== "committed") {
      throw hungUp(step, this.#settings);
    }
  }

  /** Waits before the next attempt, or ends the run when the wait would pass the deadline. */
  async #backoff(error: unknown, failedStep: State["step"]): Promise<void> {
    const wait = backoffDelay(this.#attempt, this.#settings.retry);
    if (performance.now() + wait >= this.#deadline) {
      throw pastDeadline(error, this.#state.step, this.#settings);
    }
    this.#retries++;
    this.#onRetry?.();
    this.#logger.warn(
      `Attempt ${this.#attempt} failed at step ${failedStep}: ${
        (error as Error).message
      } Retrying in ${wait} ms.`,
    );
    await delay(wait);
  }

  #clockIsWrong(): string | undefined {
    return this.#window && clockProblem(this.#window, new Date(this.#now()));
  }

  /** Logs once and polls while the clock is outside the credentials' validity; 75 at the deadline. */
  async #awaitPlausibleClock(): Promise<void> {
    for (let problem = this.#clockIsWrong(); problem; problem = this.#clockIsWrong()) {
      const left = this.#deadline - performance.now();
      if (left <= CLOCK_POLL_MS) {
        throw new FleetprovError(
          `${problem} Gave up at the ${
            this.#settings.retry.deadlineMs / 1000
          } s deadline; systemd retries (exit 75).`,
          ExitCode.TempFail,
          { kind: "clock" },
        );
      }
      if (!this.#clockLogged) {
        this.#clockLogged = true;
        this.#logger.warn(`${problem} Waiting up to ${Math.round(left / 1000)} s for it.`);
      }
      await delay(CLOCK_POLL_MS);
    }
    if (this.#clockLogged) {
      this.#clockLogged = false;
      this.#logger.info(
        `The system clock is now plausible (${new Date(this.#now()).toISOString()}).`,
      );
    }
  }

  async #claimSession(): Promise<Session> {
    const step = this.#state.step === "start" ? "start" : "certificate-created";
    this.#session ??= await connect(this.#settings, {
      ...this.#claim,
      secureContext: claimContext(this.#claim),
      clientId: this.#settings.clientId,
      policyName: "the claim policy",
      subscriptions: claimSubscriptions(this.#settings, step),
    });
    return this.#session;
  }

  async #dropSession(): Promise<void> {
    const current = this.#session;
    this.#session = undefined;
    // The verify connection reuses the address: no second DNS lookup.
    if (!this.#settings.httpProxy?.enabled) this.#claim.address ??= current?.remoteAddress();
    await current?.close();
  }
}

function isRefusedToken(error: unknown, state: State): state is JournalEntry & {
  step: "certificate-created";
} {
  return error instanceof RejectionError &&
    error.rejection.errorCode === "InvalidCertificateOwnershipToken" &&
    state.step === "certificate-created";
}

function resumeFromJournal(settings: Settings, now: number, logger: Logger): State {
  const entry = readJournal(settings.configDir);
  if (!entry) return { step: "start" };
  if (
    entry.endpoint !== settings.endpoint ||
    entry.templateName !== settings.fleetProvisioning.templateName
  ) {
    logger.warn("Ignoring the provisioning journal: it belongs to another endpoint or template.");
    return { step: "start" };
  }
  if (entry.step === "certificate-created" && !tokenStillValid(entry, now)) {
    logger.warn(
      `The journaled certificate ${entry.certificateId} has an expired ownership token; starting over with a new certificate.`,
    );
    return { step: "start" };
  }
  logger.info(
    `Resuming provisioning at step ${entry.step} with certificate ${entry.certificateId}.`,
  );
  return entry;
}
