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
import { createPublicKey, X509Certificate } from "node:crypto";
import { existsSync, lstatSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import { crashPoint } from "../failpoints.ts";
import type { Logger } from "../log.ts";
import {
  AWS_MQTT_ALPN,
  openSession,
  type Session,
  SessionError,
  type SessionOptions,
} from "../mqtt/connection.ts";
import { openProxyTunnel } from "../mqtt/proxy.ts";
import { openTokenContext, type TokenContext } from "../pkcs11/mod.ts";
import { writeRuntimeConfig } from "../runtime_config/mod.ts";
import { ensureDirectory, writeFileAtomic } from "../secure_files/mod.ts";
import {
  type CertificateCreated,
  clearJournal,
  type JournalEntry,
  journalPath,
  type KeySource,
  readJournal,
  type Registered,
  tokenStillValid,
  writeJournal,
} from "./journal.ts";
import { encodePayload } from "./payload.ts";
import { MalformedAnswerError, parseAnswer, RejectionError } from "./protocol.ts";
import { backoffDelay, delay, isTransient } from "./retry.ts";
import { operationTopics } from "./topics.ts";

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
  const { logger } = options;
  const now = options.now ?? Date.now;
  const fp = settings.fleetProvisioning;
  const claim = readClaimCredentials(settings);
  const deadline = now() + settings.retry.deadlineMs;
  checkOutputPaths(settings);
  if (!existsSync(settings.configDir)) ensureDirectory(settings.configDir, CONFIG_DIR_MODE);
  ensureDirectory(settings.keysDir, 0o700);

  let state: State = resumeFromJournal(settings, now(), logger);
  let session: Session | undefined;
  let attempt = 0;
  let retries = 0;
  let closedInARow = 0;
  let runtimeConfigWrittenAt = 0;

  async function claimSession(): Promise<Session> {
    session ??= await connect(settings, { ...claim, clientId: settings.clientId });
    return session;
  }
  async function dropSession(): Promise<void> {
    const current = session;
    session = undefined;
    // The verify connection reuses the address: no second DNS lookup.
    if (!settings.httpProxy?.enabled) claim.address ??= current?.remoteAddress();
    await current?.close();
  }

  while (state.step !== "done") {
    attempt++;
    try {
      switch (state.step) {
        case "start":
          state = await createCertificate(await claimSession(), settings, now, logger);
          crashPoint("after-create-answer");
          writeJournal(settings.configDir, state);
          crashPoint("after-journal-created");
          break;
        case "certificate-created":
          state = await registerThing(await claimSession(), settings, state, logger);
          crashPoint("after-register-answer");
          writeJournal(settings.configDir, state);
          crashPoint("after-journal-registered");
          await dropSession();
          break;
        case "registered":
          await dropSession();
          state = { step: "committed", entry: commitFiles(settings, state) };
          runtimeConfigWrittenAt = performance.now();
          crashPoint("after-runtime-config");
          clearJournal(settings.configDir);
          crashPoint("after-journal-clear");
          logger.info(`Wrote the runtime config ${settings.runtimeConfigPath}.`);
          break;
        case "committed":
          await verifyCredentials(settings, claim, state.entry, logger);
          crashPoint("after-verify");
          state = { step: "done", entry: state.entry };
          break;
      }
      closedInARow = 0;
    } catch (error) {
      await dropSession();
      if (
        error instanceof RejectionError &&
        error.rejection.errorCode === "InvalidCertificateOwnershipToken" &&
        state.step === "certificate-created"
      ) {
        logger.warn(
          `The saved ownership token for certificate ${state.certificateId} was refused; starting over with a new certificate.`,
        );
        clearJournal(settings.configDir);
        state = { step: "start" };
        continue;
      }
      closedInARow = error instanceof SessionError && error.kind === "closed"
        ? closedInARow + 1
        : 0;
      if (closedInARow >= 2) {
        throw new FleetprovError(
          `The broker closed the connection twice at step ${state.step}; the claim certificate's policy most likely forbids these topics (check iot:Publish/iot:Subscribe/iot:Receive on $aws/certificates/create* and $aws/provisioning-templates/${fp.templateName}/provision/*).`,
          ExitCode.Rejected,
        );
      }
      if (!isTransient(error)) throw finalError(error, state.step);
      const wait = backoffDelay(attempt, settings.retry);
      if (now() + wait >= deadline) {
        const reason = (error as Error).message;
        throw new FleetprovError(
          state.step === "committed"
            ? `Provisioned as thing ${state.entry.thingName} (runtime config written), but the new certificate could not connect within the ${
              settings.retry.deadlineMs / 1000
            } s deadline: ${reason} The next start uses the stored credentials.`
            : `Provisioning did not finish within the ${
              settings.retry.deadlineMs / 1000
            } s deadline; last failure at step ${state.step}: ${reason}`,
          error instanceof RejectionError || error instanceof MalformedAnswerError
            ? ExitCode.Rejected
            : ExitCode.Network,
        );
      }
      retries++;
      options.onRetry?.();
      logger.warn(
        `Attempt ${attempt} failed at step ${state.step}: ${
          (error as Error).message
        } Retrying in ${wait} ms.`,
      );
      await delay(wait);
    }
  }
  const entry = state.entry;
  return {
    thingName: entry.thingName,
    certificateId: entry.certificateId,
    ...credentialPaths(settings, entry),
    deviceConfiguration: entry.deviceConfiguration,
    runtimeConfigWrittenAt,
    verifiedAt: performance.now(),
    retries,
  };
}

interface ClaimCredentials extends Omit<SessionOptions, "clientId"> {
  /** The secure element's TLS context, when the key lives in a token. */
  token?: TokenContext;
}

function readClaimCredentials(settings: Settings): ClaimCredentials {
  const cert = readText(settings.cert, "cert");
  const ca = settings.rootCa === undefined ? undefined : readText(settings.rootCa, "root-ca");
  // With a secure element, both connections sign with the token's key.
  const token = settings.secureElement.enabled
    ? openTokenContext(settings.secureElement, { certificatePem: cert, caPem: ca })
    : undefined;
  return {
    endpoint: settings.endpoint,
    port: settings.port,
    cert,
    ...(token
      ? { secureContext: token.secureContext, token }
      : { key: settings.key === undefined ? undefined : readText(settings.key, "key") }),
    ca,
    alpnProtocols: settings.port === 443 ? [AWS_MQTT_ALPN] : undefined,
    connectTimeoutMs: settings.retry.stepTimeoutMs,
  };
}

/**
 * Refuses, before any request, a path fleetprov will write that is a symbolic
 * link (or not a plain file or directory): writes never go through a link, and
 * failing later would strand a registered certificate.
 */
function checkOutputPaths(settings: Settings): void {
  const keys = settings.keysDir;
  const paths: [string, "file" | "directory"][] = [
    [keys, "directory"],
    [join(keys, "active-certificate.pem.crt"), "file"],
    [join(keys, "active-private.pem.key"), "file"],
    [settings.runtimeConfigPath, "file"],
    [journalPath(settings.configDir), "file"],
  ];
  for (const [path, kind] of paths) {
    let stats: ReturnType<typeof lstatSync>;
    try {
      stats = lstatSync(path);
    } catch {
      continue; // absent (or under a missing directory): created later
    }
    if (kind === "file" ? stats.isFile() : stats.isDirectory()) continue;
    throw new FleetprovError(
      `${path} is ${
        stats.isSymbolicLink() ? "a symbolic link" : `not a ${kind}`
      }; fleetprov writes it itself and never through a link. Remove it and run again.`,
      ExitCode.Config,
    );
  }
}

function readText(path: string, key: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new FleetprovError(
      `Cannot read ${key} file ${path} (${
        (error as NodeJS.ErrnoException).code
      }); check the path and its permissions.`,
      ExitCode.Config,
    );
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

/** A CreateCertificateFromCsr request: the CSR and where its private key lives. */
interface CsrPlan {
  csr: string;
  /** The CSR's public key (SPKI DER): the issued certificate must carry it. */
  spki: Uint8Array;
  keySource: KeySource;
  privateKeyPem?: string;
  deviceKeyPath?: string;
}

/** The CSR to send, or undefined for CreateKeysAndCertificate. */
async function csrPlan(settings: Settings, logger: Logger): Promise<CsrPlan | undefined> {
  const fp = settings.fleetProvisioning;
  if (fp.generateKey) {
    // The X.509 library is loaded only on the paths that need it (it costs ~8 MB of RSS).
    const { createCsr, generateKeyPair } = await import("../pki/mod.ts");
    const { keys, privateKeyPem } = await generateKeyPair(fp.generateKey);
    logger.info(`Generated a ${fp.generateKey} key on the device.`);
    return {
      csr: await createCsr(settings.clientId, keys, { algorithm: fp.generateKey }),
      spki: publicKeyOf(privateKeyPem, "the generated key"),
      keySource: "generated",
      privateKeyPem,
    };
  }
  if (settings.secureElement.enabled) {
    if (!fp.csrFile) {
      throw new FleetprovError(
        "With a secure element, provisioning needs a CSR signed inside the token: set fleet-provisioning.csr-file (--csr-file); fleetprov never imports a private key into the token.",
        ExitCode.Config,
      );
    }
    const csr = readText(fp.csrFile, "fleet-provisioning.csr-file");
    return { csr, spki: await csrPublicKey(csr), keySource: "secure-element" };
  }
  if (fp.csrFile && fp.deviceKey) {
    return {
      csr: readText(fp.csrFile, "fleet-provisioning.csr-file"),
      spki: publicKeyOf(
        readText(fp.deviceKey, "fleet-provisioning.device-key"),
        `fleet-provisioning.device-key ${fp.deviceKey}`,
      ),
      keySource: "device-key",
      deviceKeyPath: fp.deviceKey,
    };
  }
  if (fp.csrFile) {
    logger.warn(
      "fleet-provisioning.csr-file is set without fleet-provisioning.device-key; using CreateKeysAndCertificate as the Device Client does.",
    );
  }
  return undefined;
}

async function createCertificate(
  session: Session,
  settings: Settings,
  now: () => number,
  logger: Logger,
): Promise<CertificateCreated> {
  const format = settings.payloadFormat;
  const timeout = { timeoutMs: settings.retry.stepTimeoutMs };
  const base = {
    step: "certificate-created" as const,
    endpoint: settings.endpoint,
    templateName: settings.fleetProvisioning.templateName,
  };
  const plan = await csrPlan(settings, logger);
  if (plan) {
    logger.info(`Requesting CreateCertificateFromCsr (key: ${plan.keySource}).`);
    const answer = await session.request(
      operationTopics("CreateCertificateFromCsr", { format }),
      encodePayload({ certificateSigningRequest: plan.csr }, format),
      timeout,
    );
    const accepted = parseAnswer("CreateCertificateFromCsr", answer, format);
    assertSameKey(accepted.certificatePem, plan.spki);
    logger.info(`Certificate ${accepted.certificateId} created from the CSR.`);
    return {
      ...base,
      certificateId: accepted.certificateId,
      certificatePem: accepted.certificatePem,
      keySource: plan.keySource,
      ...(plan.privateKeyPem ? { privateKeyPem: plan.privateKeyPem } : {}),
      ...(plan.deviceKeyPath ? { deviceKeyPath: plan.deviceKeyPath } : {}),
      ownershipToken: accepted.certificateOwnershipToken,
      issuedAt: now(),
    };
  }
  logger.info("Requesting CreateKeysAndCertificate.");
  const answer = await session.request(
    operationTopics("CreateKeysAndCertificate", { format }),
    encodePayload({}, format),
    timeout,
  );
  const accepted = parseAnswer("CreateKeysAndCertificate", answer, format);
  let spki: Uint8Array;
  try {
    spki = publicKeyOf(accepted.privateKey, "the private key in the answer");
  } catch (error) {
    throw new MalformedAnswerError((error as Error).message);
  }
  assertSameKey(accepted.certificatePem, spki);
  logger.info(`Certificate ${accepted.certificateId} and its private key created.`);
  return {
    ...base,
    certificateId: accepted.certificateId,
    certificatePem: accepted.certificatePem,
    keySource: "service",
    privateKeyPem: accepted.privateKey,
    ownershipToken: accepted.certificateOwnershipToken,
    issuedAt: now(),
  };
}

async function registerThing(
  session: Session,
  settings: Settings,
  created: CertificateCreated,
  logger: Logger,
): Promise<Registered> {
  const fp = settings.fleetProvisioning;
  const format = settings.payloadFormat;
  const topics = operationTopics("RegisterThing", { format, templateName: fp.templateName });
  const request: Record<string, unknown> = { certificateOwnershipToken: created.ownershipToken };
  if (Object.keys(fp.templateParameters).length > 0) request.parameters = fp.templateParameters;
  logger.info(
    `Requesting RegisterThing with template ${fp.templateName} and parameters ${
      Object.keys(fp.templateParameters).join(", ") || "(none)"
    }.`,
  );
  const answer = await session.request(topics, encodePayload(request, format), {
    timeoutMs: settings.retry.stepTimeoutMs,
  });
  const accepted = parseAnswer("RegisterThing", answer, format);
  logger.info(`Registered thing ${accepted.thingName}.`);
  return {
    ...created,
    step: "registered",
    thingName: accepted.thingName,
    deviceConfiguration: accepted.deviceConfiguration,
  };
}

function credentialPaths(
  settings: Settings,
  entry: Registered,
): { certPath: string; keyPath: string } {
  const keyPath = {
    "device-key": entry.deviceKeyPath!,
    // The key lives in the token; the Device Client records an empty path.
    "secure-element": "",
    "service": join(settings.keysDir, "active-private.pem.key"),
    "generated": join(settings.keysDir, "active-private.pem.key"),
  }[entry.keySource];
  return { certPath: join(settings.keysDir, "active-certificate.pem.crt"), keyPath };
}

/** Writes the certificate (0644) and key (0600) files, then the runtime config last. */
function commitFiles(settings: Settings, entry: Registered): Registered {
  const dir = settings.keysDir;
  const { certPath, keyPath } = credentialPaths(settings, entry);
  writeFileAtomic(join(dir, `${entry.certificateId}-certificate.pem.crt`), entry.certificatePem, {
    mode: 0o644,
  });
  crashPoint("after-certificate-file");
  if (entry.privateKeyPem !== undefined) {
    writeFileAtomic(join(dir, `${entry.certificateId}-private.pem.key`), entry.privateKeyPem, {
      mode: 0o600,
    });
    crashPoint("after-key-file");
    writeFileAtomic(keyPath, entry.privateKeyPem, { mode: 0o600 });
  }
  writeFileAtomic(certPath, entry.certificatePem, { mode: 0o644 });
  writeRuntimeConfig(settings.runtimeConfigPath, {
    cert: certPath,
    key: keyPath,
    thingName: entry.thingName,
    deviceConfig: entry.deviceConfiguration,
  });
  return entry;
}

async function verifyCredentials(
  settings: Settings,
  claim: ClaimCredentials,
  entry: Registered,
  logger: Logger,
): Promise<void> {
  const { keyPath } = credentialPaths(settings, entry);
  if (entry.keySource === "secure-element") claim.token!.useCertificate(entry.certificatePem);
  const key = entry.keySource === "secure-element"
    ? {} // the token context now holds the new certificate with the same key
    : { key: entry.privateKeyPem ?? readText(keyPath, "fleet-provisioning.device-key") };
  const session = await connect(settings, {
    ...claim,
    ...key,
    cert: entry.certificatePem,
    clientId: entry.thingName,
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      session.connected,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new SessionError(
                `No CONNACK within ${settings.retry.stepTimeoutMs} ms.`,
                "network",
                "ETIMEDOUT",
              ),
            ),
          settings.retry.stepTimeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await session.close();
  }
  logger.info(`Connected with the new certificate as ${entry.thingName}.`);
}

/** Opens a session, through the HTTP proxy's CONNECT tunnel when one is enabled. */
async function connect(settings: Settings, options: SessionOptions): Promise<Session> {
  const proxy = settings.httpProxy;
  if (!proxy?.enabled) return openSession(options);
  const socket = await openProxyTunnel(proxy, { host: options.endpoint, port: options.port }, {
    timeoutMs: settings.retry.stepTimeoutMs,
  });
  return openSession({ ...options, socket });
}

/** The public key (SPKI DER) of a PEM private key. */
function publicKeyOf(privateKeyPem: string, what: string): Uint8Array {
  try {
    return createPublicKey(privateKeyPem).export({ type: "spki", format: "der" });
  } catch (error) {
    throw new FleetprovError(`Cannot read ${what} (${(error as Error).message}).`, ExitCode.Config);
  }
}

/** Throws unless the certificate carries this public key (SPKI DER): an answer meant for another device. */
function assertSameKey(certificatePem: string, spki: Uint8Array): void {
  let certKey: Buffer;
  try {
    certKey = new X509Certificate(certificatePem).publicKey.export({ type: "spki", format: "der" });
  } catch (error) {
    throw new MalformedAnswerError(
      `The issued certificate cannot be parsed (${(error as Error).message}).`,
    );
  }
  if (Buffer.compare(certKey, spki) !== 0) {
    throw new MalformedAnswerError(
      "The issued certificate does not belong to this device's private key.",
    );
  }
}

async function csrPublicKey(csrPem: string): Promise<Uint8Array> {
  const { x509 } = await import("../pki/mod.ts");
  try {
    return new Uint8Array(new x509.Pkcs10CertificateRequest(csrPem).publicKey.rawData);
  } catch (error) {
    throw new FleetprovError(
      `fleet-provisioning.csr-file is not a PEM certificate signing request (${
        (error as Error).message
      }).`,
      ExitCode.Config,
    );
  }
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
