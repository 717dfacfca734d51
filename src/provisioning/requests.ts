// SPDX-License-Identifier: Apache-2.0
/**
 * The device's two requests: the new certificate (CreateKeysAndCertificate,
 * or CreateCertificateFromCsr with a CSR from a file, generated on the board
 * or signed in a secure element) and RegisterThing. Each issued certificate
 * is checked to carry this device's public key.
 *
 * @module
 */
import { createPublicKey, X509Certificate } from "node:crypto";
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Session } from "../mqtt/connection.ts";
import {
  encodePayload,
  MalformedAnswerError,
  operationTopics,
  parseAnswer,
} from "../protocol/mod.ts";
import { untrusted } from "../text.ts";
import { readText } from "./files.ts";
import { createOperationOf } from "./plan.ts";
import type { CertificateCreated, KeySource, Registered } from "./journal.ts";

/** A CreateCertificateFromCsr request: the CSR and where its private key lives. */
export interface CsrPlan {
  csr: string;
  /** The CSR's public key (SPKI DER): the issued certificate must carry it. */
  spki: Uint8Array;
  keySource: KeySource;
  privateKeyPem?: string;
  deviceKeyPath?: string;
}

/**
 * The CSR to send, or undefined for CreateKeysAndCertificate. Made before the
 * claim connection opens: generating a key on a slow board must not eat the
 * connection's timeout.
 */
export async function csrPlan(settings: Settings, logger: Logger): Promise<CsrPlan | undefined> {
  const fp = settings.fleetProvisioning;
  if (fp.generateKey) {
    const { createDeviceCsr, generateDeviceKey } = await import("../pki/csr.ts");
    const key = await generateDeviceKey(fp.generateKey);
    logger.info(`Generated a ${fp.generateKey} key on the device.`);
    return {
      csr: createDeviceCsr(settings.clientId, key, fp.generateKey),
      spki: key.spki,
      keySource: "generated",
      privateKeyPem: key.privateKeyPem,
    };
  }
  if (createOperationOf(settings) === "CreateKeysAndCertificate") {
    if (fp.csrFile) {
      logger.warn(
        "fleet-provisioning.csr-file is set without fleet-provisioning.device-key; using CreateKeysAndCertificate as the Device Client does.",
      );
    }
    return undefined;
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
  return {
    csr: readText(fp.csrFile!, "fleet-provisioning.csr-file"),
    spki: publicKeyOf(
      readText(fp.deviceKey!, "fleet-provisioning.device-key"),
      `fleet-provisioning.device-key ${fp.deviceKey}`,
    ),
    keySource: "device-key",
    deviceKeyPath: fp.deviceKey,
  };
}

/** Asks for a new certificate (from a CSR when there is one); the journal entry of the answer. */
export async function createCertificate(
  session: Session,
  settings: Settings,
  options: { plan: CsrPlan | undefined; now: () => number; logger: Logger },
): Promise<CertificateCreated> {
  const { plan, now, logger } = options;
  const format = settings.payloadFormat;
  const timeout = { timeoutMs: settings.retry.stepTimeoutMs };
  const base = {
    step: "certificate-created" as const,
    endpoint: settings.endpoint,
    templateName: settings.fleetProvisioning.templateName,
  };
  if (plan) {
    logger.info(`Requesting CreateCertificateFromCsr (key: ${plan.keySource}).`);
    const answer = await session.request(
      operationTopics("CreateCertificateFromCsr", { format }),
      encodePayload({ certificateSigningRequest: plan.csr }, format),
      timeout,
    );
    const accepted = parseAnswer("CreateCertificateFromCsr", answer, format);
    assertSameKey(accepted.certificatePem, plan.spki);
    logger.info(`Certificate ${untrusted(accepted.certificateId)} created from the CSR.`);
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
  logger.info(`Certificate ${untrusted(accepted.certificateId)} and its private key created.`);
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

/** Registers the thing with the new certificate's ownership token. */
export async function registerThing(
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
  logger.info(`Registered thing ${untrusted(accepted.thingName)}.`);
  return {
    ...created,
    step: "registered",
    thingName: accepted.thingName,
    deviceConfiguration: accepted.deviceConfiguration,
  };
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
  const { csrPublicKey: spkiOfCsr } = await import("../pki/csr.ts");
  try {
    return spkiOfCsr(csrPem);
  } catch (error) {
    throw new FleetprovError(
      `fleet-provisioning.csr-file is not a PEM certificate signing request (${
        (error as Error).message
      }).`,
      ExitCode.Config,
    );
  }
}
