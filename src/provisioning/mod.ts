// SPDX-License-Identifier: Apache-2.0
/**
 * Fleet provisioning as a small state machine:
 *
 *   start ─create─▶ certificate-created ─RegisterThing─▶ registered
 *         ─write files + runtime config─▶ committed ─connect with new cert─▶ done
 *
 * Each completed step is journaled, so a run killed anywhere resumes where it
 * stopped (reusing a still-valid ownership token). Transient failures are
 * retried with backoff within the deadline; final ones end the run at once.
 *
 * @module
 */
import { existsSync } from "node:fs";
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import { crashPoint } from "../failpoints.ts";
import type { Logger } from "../log.ts";
import { type Session, SessionError } from "../mqtt/connection.ts";
import { MalformedAnswerError, RejectionError } from "../protocol/mod.ts";
import { ensureDirectory } from "../secure_files/mod.ts";
import { connect, verifyCredentials } from "./connect.ts";
import {
  checkOutputPaths,
  type ClaimCredentials,
  commitFiles,
  credentialPaths,
  readClaimCredentials,
} from "./files.ts";
import {
  clearJournal,
  type JournalEntry,
  readJournal,
  type Registered,
  tokenStillValid,
  writeJournal,
} from "./journal.ts";
import { createCertificate, registerThing } from "./requests.ts";
import { backoffDelay, delay, isTransient } from "./retry.ts";

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
  /** Clock, for tests. */
  now?: () => number;
}

type State = { step: "start" } | JournalEntry | { step: "committed"; entry: Registered } | {
  step: "done";
  entry: Registered;
};

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
  readonly #deadline: number;
  #state: State;
  #session: Session | undefined;
  #attempt = 0;
  #retries = 0;
  #closedInARow = 0;
  #hangupsInARow = 0;
  #runtimeConfigWrittenAt = 0;

  constructor(settings: Settings, options: ProvisionOptions) {
    this.#settings = settings;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#onRetry = options.onRetry;
    this.#claim = readClaimCredentials(settings);
    this.#deadline = this.#now() + settings.retry.deadlineMs;
    checkOutputPaths(settings);
    if (!existsSync(settings.configDir)) ensureDirectory(settings.configDir, CONFIG_DIR_MODE);
    ensureDirectory(settings.keysDir, 0o700);
    this.#state = resumeFromJournal(settings, this.#now(), this.#logger);
  }

  /** Steps until done; a failure is retried, or ends the run, by {@linkcode recover}. */
  async run(): Promise<ProvisionResult> {
    while (this.#state.step !== "done") {
      this.#attempt++;
      try {
        await this.#step();
        this.#closedInARow = 0;
      } catch (error) {
        await this.#recover(error);
      }
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
      case "start":
        this.#state = await createCertificate(
          await this.#claimSession(),
          this.#settings,
          this.#now,
          this.#logger,
        );
        crashPoint("after-create-answer");
        writeJournal(configDir, this.#state);
        crashPoint("after-journal-created");
        break;
      case "certificate-created":
        this.#state = await registerThing(
          await this.#claimSession(),
          this.#settings,
          state,
          this.#logger,
        );
        crashPoint("after-register-answer");
        writeJournal(configDir, this.#state);
        crashPoint("after-journal-registered");
        await this.#dropSession();
        break;
      case "registered":
        await this.#dropSession();
        this.#state = { step: "committed", entry: commitFiles(this.#settings, state) };
        this.#runtimeConfigWrittenAt = performance.now();
        crashPoint("after-runtime-config");
        clearJournal(configDir);
        crashPoint("after-journal-clear");
        this.#logger.info(`Wrote the runtime config ${runtimeConfigPath}.`);
        break;
      case "committed":
        await verifyCredentials(this.#settings, this.#claim, state.entry, this.#logger);
        crashPoint("after-verify");
        this.#state = { step: "done", entry: state.entry };
        break;
    }
  }

  /**
   * After a failed step: start over when a journaled token was refused,
   * give up on a final failure, a broker closing twice or the deadline, else
   * wait (backoff with jitter) and retry.
   */
  async #recover(error: unknown): Promise<void> {
    await this.#dropSession();
    const state = this.#state;
    if (
      error instanceof RejectionError &&
      error.rejection.errorCode === "InvalidCertificateOwnershipToken" &&
      state.step === "certificate-created"
    ) {
      this.#logger.warn(
        `The saved ownership token for certificate ${state.certificateId} was refused; starting over with a new certificate.`,
      );
      clearJournal(this.#settings.configDir);
      this.#state = { step: "start" };
      return;
    }
    this.#closedInARow = error instanceof SessionError && error.kind === "closed"
      ? this.#closedInARow + 1
      : 0;
    this.#hangupsInARow = error instanceof SessionError && error.kind === "hangup"
      ? this.#hangupsInARow + 1
      : 0;
    if (this.#closedInARow >= 2) throw closedTwice(state.step, this.#settings);
    if (this.#hangupsInARow >= HANGUPS_MEAN_REFUSED) {
      throw hungUp(state.step, this.#settings);
    }
    if (!isTransient(error)) throw finalError(error, state.step);
    const wait = backoffDelay(this.#attempt, this.#settings.retry);
    if (this.#now() + wait >= this.#deadline) throw pastDeadline(error, state, this.#settings);
    this.#retries++;
    this.#onRetry?.();
    this.#logger.warn(
      `Attempt ${this.#attempt} failed at step ${state.step}: ${
        (error as Error).message
      } Retrying in ${wait} ms.`,
    );
    await delay(wait);
  }

  async #claimSession(): Promise<Session> {
    this.#session ??= await connect(this.#settings, {
      ...this.#claim,
      clientId: this.#settings.clientId,
      policyName: "the claim policy",
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

/**
 * How many hang-ups right after CONNECT in a row mean "refused": over MQTT
 * 3.1.1 AWS IoT refuses an unknown, inactive or revoked certificate, or a
 * policy without iot:Connect, by closing the connection without CONNACK. One
 * can be a network failure; the same answer three times is a refusal.
 */
const HANGUPS_MEAN_REFUSED = 3;

/** The broker hung up right after CONNECT again and again: the certificate or its policy. */
function hungUp(step: string, settings: Settings): FleetprovError {
  const which = step === "committed" ? "new" : "claim";
  return new FleetprovError(
    `The broker closed the connection right after CONNECT, without CONNACK, ${HANGUPS_MEAN_REFUSED} times in a row at step ${step}: this is how AWS IoT refuses a ${which} certificate over MQTT 3.1.1. Check that the ${which} certificate is registered and ACTIVE and that its policy allows iot:Connect as client id ${
      step === "committed" ? "(the thing name)" : settings.clientId
    } (--mqtt-version 5 gets the broker's reason code).`,
    ExitCode.Rejected,
  );
}

/** The broker closed the connection twice at the same step: the claim policy, most likely. */
function closedTwice(step: string, settings: Settings): FleetprovError {
  return new FleetprovError(
    `The broker closed the connection twice at step ${step}; the claim certificate's policy most likely forbids these topics (check iot:Publish/iot:Subscribe/iot:Receive on $aws/certificates/create* and $aws/provisioning-templates/${settings.fleetProvisioning.templateName}/provision/*).`,
    ExitCode.Rejected,
  );
}

/** The deadline passed at `state`; after the commit, the device is provisioned all the same. */
function pastDeadline(error: unknown, state: State, settings: Settings): FleetprovError {
  const reason = (error as Error).message;
  const seconds = settings.retry.deadlineMs / 1000;
  return new FleetprovError(
    state.step === "committed"
      ? `Provisioned as thing ${state.entry.thingName} (runtime config written), but the new certificate could not connect within the ${seconds} s deadline: ${reason} The next start uses the stored credentials.`
      : `Provisioning did not finish within the ${seconds} s deadline; last failure at step ${state.step}: ${reason}`,
    error instanceof RejectionError || error instanceof MalformedAnswerError
      ? ExitCode.Rejected
      : ExitCode.Network,
  );
}

function finalError(error: unknown, step: string): FleetprovError {
  if (error instanceof FleetprovError) return error;
  if (error instanceof RejectionError) return new FleetprovError(error.message, ExitCode.Rejected);
  if (error instanceof SessionError) {
    if (error.kind === "tls") {
      return new FleetprovError(
        `${error.message} Check root-ca and that endpoint names the server in its certificate.`,
        ExitCode.Config,
      );
    }
    if (error.kind === "denied") return new FleetprovError(error.message, ExitCode.Rejected);
    if (error.kind === "refused") {
      return new FleetprovError(
        `${error.message} Check that the ${
          step === "committed" ? "new" : "claim"
        } certificate is registered and ACTIVE and that its policy allows iot:Connect for this client id.`,
        ExitCode.Rejected,
      );
    }
    return new FleetprovError(error.message, ExitCode.Network);
  }
  if (error instanceof MalformedAnswerError) {
    return new FleetprovError(error.message, ExitCode.Rejected);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new FleetprovError(`Unexpected failure at step ${step}: ${message}`, ExitCode.Internal);
}
