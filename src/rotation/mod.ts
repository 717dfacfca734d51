// SPDX-License-Identifier: Apache-2.0
/**
 * Certificate rotation as a small state machine, on provisioning's parts
 * (requests, retries, certificate cap, answer checks, files, journal):
 *
 *   start ─create─▶ certificate-created ─RegisterThing─▶ registered
 *         ─connect with the new certificate─▶ proven ─switch files─▶ done
 *
 * It connects with the device's own certificate as its thing; the new
 * certificate is proven by a CONNACK before anything the board uses changes,
 * so the old certificate and key stay in place (and keep working) until the
 * new one has connected. From "proven" on the switch needs no network, and
 * any fleetprov run finishes it ({@linkcode finishRotation}): a backend that
 * retires the old certificate once the new one connected never strands the
 * board. A refused proof (AWS attaches the new certificate's policy with a
 * lag) is retried within the deadline, then the run ends with exit 75 and the
 * old identity active; the next run retries the proof only. Whatever depends
 * on the clock (a journaled token's age, whether a rotation is due) is judged
 * only once the clock is trusted ({@linkcode trustedNow}), as provisioning's.
 *
 * @module
 */
import type { ClockFloor } from "../clock/mod.ts";
import type { Settings } from "../config/settings.ts";
import { crashPoint } from "../failpoints.ts";
import type { Logger } from "../log.ts";
import type { Session } from "../mqtt/connection.ts";
import { Attempts } from "../provisioning/attempts.ts";
import { credentialWindow } from "../provisioning/clock.ts";
import { awaitTrustedClock } from "../provisioning/clock_wait.ts";
import { connect, preopen, type Preopened, verifyCredentials } from "../provisioning/connect.ts";
import {
  checkOutputPaths,
  claimContext,
  type ClaimCredentials,
  credentialPaths,
  readClaimCredentials,
  readText,
} from "../provisioning/files.ts";
import { claimSubscriptions } from "../provisioning/plan.ts";
import {
  createCertificate,
  type CsrPlan,
  csrPlan,
  registerThing,
} from "../provisioning/requests.ts";
import { untrusted } from "../text.ts";
import type { CurrentIdentity } from "./identity.ts";
import {
  type PendingRotation,
  pendingRotation,
  type Replaced,
  rotationJournalPath,
  type RotationProven,
  writeRotationJournal,
} from "./journal.ts";
import { rotationPolicy } from "./outcome.ts";
import { provisionedAt, resumeRotation, rotationFloor, rotationJournalOf } from "./resume.ts";
import { switchIdentity } from "./switch.ts";
import { rotationSettings } from "./view.ts";

export { type CurrentIdentity, currentIdentity } from "./identity.ts";
export {
  pendingRotation,
  readRotationJournal,
  ROTATION_JOURNAL_FILE,
  type RotationRecord,
} from "./journal.ts";

/** What a finished rotation did. */
export interface RotationResult {
  thingName: string;
  oldCertificateId: string;
  newCertificateId: string;
  /** The certificate and key the runtime config points at now. */
  certPath: string;
  keyPath: string;
  /** The step this run started from (`start` for a rotation begun in this run). */
  resumedFrom: string;
  /** How many attempts failed transiently and were retried. */
  retries: number;
  /** Milliseconds since process start when the new certificate's CONNACK arrived (undefined: an earlier run's). */
  provenAt?: number;
  /** Milliseconds since process start when the runtime config was switched. */
  switchedAt: number;
}

/** Options of {@linkcode rotate}. */
export interface RotateOptions {
  logger: Logger;
  /** Called before each retry (the `--output json` line counts them). */
  onRetry?: () => void;
  /** Wall clock, for tests. The deadline runs on a monotonic clock. */
  now?: () => number;
  /** performance.now() at which the run gives up (default: the retry deadline from its start). */
  deadline?: number;
  /** systemd-timesyncd's flag file, for tests (default: src/clock/mod.ts's TIMESYNC_FLAG). */
  timesyncFlag?: string;
  /**
   * End the run at the proof's first refusal instead of retrying it within the
   * deadline (the boot's run, which keeps the old identity then).
   */
  proofRefusalIsFinal?: boolean;
}

type State = { step: "start" } | PendingRotation;

/**
 * Rotates the certificate of `identity` (the board's, from the runtime
 * config), or finishes the rotation the journal holds; throws a
 * FleetprovError on failure, the old identity still active. A configuration
 * error (78) when the rotation cannot run (no rotation template, say).
 */
export async function rotate(
  settings: Settings,
  identity: CurrentIdentity,
  options: RotateOptions,
): Promise<RotationResult> {
  const run = withDeadline(settings, options);
  const state = await resumeTrusted(settings, identity, run);
  return await new Rotation(settings, identity, { ...run, state }).run();
}

/**
 * Finishes a rotation an earlier run left in the journal, if there is one
 * for this board: a proven one with no network (the switch), a registered
 * one by its proof first. Undefined when none is pending; needs no rotation
 * setting (the journal names the template).
 */
export async function finishRotation(
  settings: Settings,
  identity: CurrentIdentity,
  options: RotateOptions,
): Promise<RotationResult | undefined> {
  if (!pendingRotation(settings.configDir)) return undefined;
  const run = withDeadline(settings, options);
  const state = await resumeTrusted(settings, identity, run);
  if (state.step === "start") return undefined;
  return await new Rotation(settings, identity, { ...run, state }).run();
}

/**
 * The time a rotation's decisions may be taken by (epoch ms), once the clock
 * is trusted: not before fleetprov's build or a floor given, and, until NTP
 * has synchronised it, inside the validity of the device certificate and the
 * root CA. Waits for it within the run's deadline; 75 (kind `clock`) past it.
 */
export async function trustedNow(
  settings: Settings,
  identity: CurrentIdentity,
  options: RotateOptions & { floors?: ClockFloor[] },
): Promise<number> {
  return await awaitTrustedClock({
    now: options.now ?? Date.now,
    window: credentialWindow(identity.certificatePem, rootCa(settings)),
    floors: options.floors ?? [],
    timesyncFlag: options.timesyncFlag,
  }, {
    logger: options.logger,
    deadline: withDeadline(settings, options).deadline,
    deadlineMs: settings.retry.deadlineMs,
  });
}

/** The options with the run's deadline fixed (one run, one deadline, whatever it calls). */
function withDeadline(
  settings: Settings,
  options: RotateOptions,
): RotateOptions & { deadline: number } {
  return {
    ...options,
    deadline: options.deadline ?? performance.now() + settings.retry.deadlineMs,
  };
}

/**
 * Where the rotation starts. A proven rotation needs neither the network nor
 * the clock (its switch is finished as it is); any other journal is judged
 * (is its token still fresh?) only by a trusted clock: a board without an RTC
 * boots at 1970 and would take a token of seconds ago for expired.
 */
async function resumeTrusted(
  settings: Settings,
  identity: CurrentIdentity,
  options: RotateOptions,
): Promise<State> {
  const { logger } = options;
  const journal = rotationJournalOf(settings, { identity, logger });
  if (journal?.step === "proven") {
    return resumeRotation(journal, (options.now ?? Date.now)(), logger);
  }
  const floors = journal ? [rotationFloor(journal)] : [];
  const now = await trustedNow(settings, identity, { ...options, floors });
  return resumeRotation(journal, now, logger);
}

/** One rotation run: its state, its session with the device certificate, its attempts. */
class Rotation {
  readonly #settings: Settings;
  readonly #identity: CurrentIdentity;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #attempts: Attempts;
  readonly #resumedFrom: State["step"];
  /** When the board was provisioned, read before a new rotation overwrites the last one's record. */
  readonly #provisionedAt: number;
  #device: ClaimCredentials | undefined;
  #state: State;
  #session: Session | undefined;
  #proofTransport: Preopened | undefined;
  #plan: { value: CsrPlan | undefined } | undefined;
  #provenAt: number | undefined;

  constructor(
    settings: Settings,
    identity: CurrentIdentity,
    options: RotateOptions & { state: State },
  ) {
    this.#identity = identity;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    checkOutputPaths(settings, [rotationJournalPath(settings.configDir)]);
    this.#provisionedAt = provisionedAt(settings.configDir, identity);
    this.#state = options.state;
    this.#resumedFrom = this.#state.step;
    const pending = this.#state.step === "start" ? undefined : this.#state;
    this.#settings = rotationSettings(settings, identity, { pending });
    this.#attempts = new Attempts(this.#settings, {
      logger: this.#logger,
      clock: {
        now: this.#now,
        window: credentialWindow(identity.certificatePem, rootCa(this.#settings)),
        timesyncFlag: options.timesyncFlag,
      },
      deadline: options.deadline,
      onRetry: options.onRetry,
      policy: rotationPolicy(this.#settings, identity, {
        retryRefusedProof: !options.proofRefusalIsFinal,
      }),
    });
    if (pending) this.#attempts.addFloor(rotationFloor(pending));
  }

  /**
   * Steps to "proven" (retried by Attempts), then the switch. The clock is
   * trusted already: every way here passes through `resumeTrusted`.
   */
  async run(): Promise<RotationResult> {
    try {
      while (this.#state.step !== "proven") {
        this.#attempts.begin();
        const step = this.#state.step;
        try {
          await this.#step(this.#state);
          if (this.#state.step !== step) this.#attempts.advanced();
        } catch (error) {
          await this.#recover(error);
        }
      }
    } finally {
      this.#proofTransport?.discard();
      await this.#dropSession();
    }
    return this.#switch(this.#state);
  }

  /** One step of the state machine, journaled, with its crash points. */
  async #step(state: Exclude<State, RotationProven>): Promise<void> {
    const configDir = this.#settings.configDir;
    switch (state.step) {
      case "start": {
        // The new key is made before the connection opens (once per run).
        const plan = this.#plan ??= { value: await csrPlan(this.#settings, this.#logger) };
        const created = await this.#attempts.minting(async () =>
          createCertificate(await this.#deviceSession(), this.#settings, {
            plan: plan.value,
            now: this.#now,
            logger: this.#logger,
          })
        );
        this.#state = { ...created, replaces: this.#replaces(), startedAt: this.#now() };
        crashPoint("after-create-answer");
        writeRotationJournal(configDir, this.#state);
        crashPoint("after-journal-created");
        break;
      }
      case "certificate-created": {
        const session = await this.#deviceSession();
        const request = registerThing(session, this.#settings, state, this.#logger);
        this.#proofTransport = preopen(this.#settings, session.remoteAddress());
        this.#state = { ...(await request), replaces: state.replaces, startedAt: state.startedAt };
        crashPoint("after-register-answer");
        writeRotationJournal(configDir, this.#state);
        crashPoint("after-journal-registered");
        await this.#dropSession();
        break;
      }
      case "registered": {
        await this.#dropSession();
        await verifyCredentials(this.#settings, this.#credentials(), state, {
          logger: this.#logger,
          transport: this.#proofTransport,
        });
        this.#proofTransport = undefined;
        this.#provenAt = performance.now();
        crashPoint("after-verify");
        this.#state = { ...state, step: "proven", provenAt: this.#now() };
        writeRotationJournal(configDir, this.#state);
        crashPoint("after-journal-proven");
        break;
      }
    }
  }

  /** After a failed step: ended, started over or retried by Attempts. */
  async #recover(error: unknown): Promise<void> {
    await this.#dropSession();
    this.#proofTransport?.discard();
    this.#proofTransport = undefined;
    const state = this.#state;
    await this.#attempts.recover(error, {
      step: state.step,
      journal: pendingRotation(this.#settings.configDir),
      startOver: () => {
        if (state.step !== "certificate-created") return false;
        this.#logger.warn(
          `The ownership token for certificate ${
            untrusted(state.certificateId)
          } was refused; starting the rotation over with a new certificate.`,
        );
        this.#state = { step: "start" };
        return true;
      },
      current: () => this.#state.step,
    });
  }

  #switch(proven: RotationProven): RotationResult {
    const done = switchIdentity(this.#settings, proven, {
      deviceConfig: this.#identity.deviceConfig,
      now: this.#now(),
    });
    this.#logger.info(
      `Switched thing ${
        untrusted(done.thingName)
      } from certificate ${done.replaces.certificateId} to ${
        untrusted(done.certificateId)
      }; the old certificate's files are removed.`,
    );
    return {
      thingName: done.thingName,
      oldCertificateId: done.replaces.certificateId,
      newCertificateId: done.certificateId,
      ...credentialPaths(this.#settings, proven),
      resumedFrom: this.#resumedFrom,
      retries: this.#attempts.retries,
      provenAt: this.#provenAt,
      switchedAt: performance.now(),
    };
  }

  #replaces(): Replaced {
    const { thingName, certificateId } = this.#identity;
    return { thingName, certificateId, provisionedAt: this.#provisionedAt };
  }

  /** The device's certificate, key (or token) and endpoint, read once, when a connection needs them. */
  #credentials(): ClaimCredentials {
    this.#device ??= readClaimCredentials(this.#settings);
    return this.#device;
  }

  async #deviceSession(): Promise<Session> {
    const step = this.#state.step === "start" ? "start" : "certificate-created";
    const device = this.#credentials();
    this.#session ??= await connect(this.#settings, {
      ...device,
      secureContext: claimContext(device),
      clientId: this.#settings.clientId,
      policyName: "the device certificate's policy",
      subscriptions: claimSubscriptions(this.#settings, step),
    });
    return this.#session;
  }

  async #dropSession(): Promise<void> {
    const current = this.#session;
    this.#session = undefined;
    const device = this.#device;
    if (device && !this.#settings.httpProxy?.enabled) device.address ??= current?.remoteAddress();
    await current?.close();
  }
}

/** The root CA's text (the clock check's window), or undefined for the system trust store. */
function rootCa(settings: Settings): string | undefined {
  return settings.rootCa === undefined ? undefined : readText(settings.rootCa, "root-ca");
}
