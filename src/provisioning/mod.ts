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
import { crashPoint } from "../failpoints.ts";
import type { Logger } from "../log.ts";
import type { Session } from "../mqtt/connection.ts";
import { ensureDirectory } from "../secure_files/mod.ts";
import { untrusted } from "../text.ts";
import { Attempts, type RunPolicy } from "./attempts.ts";
import { credentialWindow } from "./clock.ts";
import { journalFloor, journalOf, resumeFromJournal } from "./resume.ts";
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
  writeJournal,
} from "./journal.ts";
import { finalError, hungUp, pastDeadline, policyClose } from "./outcome.ts";
import { claimSubscriptions } from "./plan.ts";
import { createCertificate, type CsrPlan, csrPlan, registerThing } from "./requests.ts";

export { CLOCK_POLL_MS } from "./clock_wait.ts";
export { MAX_CERTIFICATES_PER_RUN } from "./outcome.ts";
export { proofPending } from "./journal.ts";

/** Mode of a config dir fleetprov creates: what the Device Client checks for. */
const CONFIG_DIR_MODE = 0o745;

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
  /** systemd-timesyncd's flag file, for tests (default: src/clock/mod.ts's TIMESYNC_FLAG). */
  timesyncFlag?: string;
}

type State = { step: "start" } | JournalEntry | { step: "done"; entry: Committed };

/** Provisions the device described by `settings`; throws a FleetprovError on failure. */
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
  readonly #claim: ClaimCredentials;
  readonly #attempts: Attempts;
  #state: State = { step: "start" };
  #session: Session | undefined;
  /** The proof's transport, opened while RegisterThing is in flight. */
  #proofTransport: Preopened | undefined;
  #plan: { value: CsrPlan | undefined } | undefined;
  #runtimeConfigWrittenAt = 0;

  constructor(settings: Settings, options: ProvisionOptions) {
    this.#settings = settings;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#claim = readClaimCredentials(settings);
    this.#attempts = new Attempts(settings, {
      logger: this.#logger,
      clock: {
        now: this.#now,
        window: credentialWindow(this.#claim.cert, this.#claim.ca),
        timesyncFlag: options.timesyncFlag,
      },
      onRetry: options.onRetry,
      policy: provisioningPolicy(settings),
    });
    checkOutputPaths(settings);
    if (!existsSync(settings.configDir)) ensureDirectory(settings.configDir, CONFIG_DIR_MODE);
    ensureDirectory(settings.keysDir, 0o700);
  }

  /** Steps until done; a failure is retried, or ends the run, by {@linkcode recover}. */
  async run(): Promise<ProvisionResult> {
    // The journal is judged (is its token still fresh?) only by a clock this run
    // trusts: a board without an RTC boots at 1970 and would take a token of
    // seconds ago for expired, and mint a second certificate.
    const journal = journalOf(this.#settings, this.#logger);
    if (journal) this.#attempts.addFloor(journalFloor(journal));
    const now = await this.#attempts.awaitPlausibleClock();
    this.#state = resumeFromJournal(journal, now, this.#logger) as State;
    try {
      while (this.#state.step !== "done") {
        this.#attempts.begin();
        const step = this.#state.step;
        try {
          await this.#step();
          if (this.#state.step !== step) this.#attempts.advanced();
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
      retries: this.#attempts.retries,
    };
  }

  /** One step of the state machine, journaled, with its crash points. */
  async #step(): Promise<void> {
    const { configDir, runtimeConfigPath } = this.#settings;
    const state = this.#state;
    switch (state.step) {
      case "start": {
        // The key is made before the claim connection opens (once per run).
        const plan = this.#plan ??= { value: await csrPlan(this.#settings, this.#logger) };
        // Each certificate the service may have minted counts: #recover stops the run at the cap.
        this.#state = await this.#attempts.minting(async () =>
          createCertificate(await this.#claimSession(), this.#settings, {
            plan: plan.value,
            now: this.#now,
            logger: this.#logger,
          })
        );
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

  /** After a failed step: ended, started over or retried by {@linkcode Attempts.recover}. */
  async #recover(error: unknown): Promise<void> {
    await this.#dropSession();
    this.#proofTransport?.discard();
    this.#proofTransport = undefined;
    const state = this.#state;
    await this.#attempts.recover(error, {
      step: state.step,
      // What the disk holds, which may be a step behind the state when its write failed.
      journal: readJournal(this.#settings.configDir),
      startOver: () => {
        if (state.step !== "certificate-created") return false;
        this.#logger.warn(
          `The ownership token for certificate ${
            untrusted(state.certificateId)
          } was refused; starting over with a new certificate.`,
        );
        clearJournal(this.#settings.configDir);
        this.#state = { step: "start" };
        return true;
      },
      current: () => this.#state.step,
    });
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

/** Provisioning's wording of its failures: it connects with the claim certificate. */
function provisioningPolicy(settings: Settings): RunPolicy {
  return {
    proofStep: "committed",
    policyClose: (step) => policyClose(step, settings),
    hungUp: (step) => hungUp(step, settings),
    finalError,
    pastDeadline: (error, step) => pastDeadline(error, step, settings),
  };
}
