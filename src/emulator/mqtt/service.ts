// SPDX-License-Identifier: Apache-2.0
/**
 * The provisioning API itself: CreateKeysAndCertificate,
 * CreateCertificateFromCsr and RegisterThing, answered from the registry, the
 * CA and the template. Transport-free: the broker decodes requests and
 * delivers the answers.
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import type { Operation, Rejection } from "../../protocol/mod.ts";
import { type CertificateAuthority, parseCsr } from "../ca.ts";
import type { KeyPool } from "./keys.ts";
import type { CertificateRecord, Registry, ThingRecord } from "../registry.ts";
import {
  evaluateTemplate,
  TemplateError,
  type TemplateResult,
  type ThingResource,
  validateParameters,
} from "../../template/mod.ts";

/** An answer: accepted body, or a rejection. */
export type Answer =
  | { accepted: true; body: Record<string, unknown> }
  | { accepted: false; body: Rejection };

/** Who is asking: the certificate and client id of the connection. */
export interface Caller {
  certificateId: string;
  clientId: string;
}

/** Dependencies and settings of the service. */
export interface ServiceOptions {
  registry: Registry;
  ca: CertificateAuthority;
  /** Where CreateKeysAndCertificate takes its key pairs from (RSA 2048 by default). */
  keys: KeyPool;
  templateName: string;
  template: unknown;
  tokenLifetimeMs: number;
  log: (line: string) => void;
  /** Clock (epoch ms). */
  now?: () => number;
}

/** How often expired ownership tokens are swept (a used token is checked on its own). */
const SWEEP_INTERVAL_MS = 1000;

/** Builds a rejection answer. */
export function reject(statusCode: number, errorCode: string, errorMessage: string): Answer {
  return { accepted: false, body: { statusCode, errorCode, errorMessage } };
}

/** The hash under which a token is stored. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The fleet provisioning service. */
export class ProvisioningService {
  readonly #o: ServiceOptions;
  readonly #now: () => number;
  #sweptAt = -Infinity;

  /** Creates the service. */
  constructor(options: ServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Answers one request. `request` is the decoded payload (undefined when empty). */
  async handle(operation: Operation, request: unknown, caller: Caller): Promise<Answer> {
    const now = this.#now();
    if (now - this.#sweptAt >= SWEEP_INTERVAL_MS) {
      this.#sweptAt = now;
      for (const id of this.#o.registry.expireTokens(now)) {
        this.#o.log(`deleted certificate ${id}: its ownership token expired before RegisterThing`);
      }
    }
    if (
      request !== undefined &&
      (typeof request !== "object" || request === null || Array.isArray(request))
    ) {
      return reject(400, "InvalidPayload", `The ${operation} request must be a JSON object.`);
    }
    const body = (request ?? {}) as Record<string, unknown>;
    switch (operation) {
      case "CreateKeysAndCertificate":
        return await this.#createKeysAndCertificate(caller);
      case "CreateCertificateFromCsr":
        return await this.#createCertificateFromCsr(body, caller);
      case "RegisterThing":
        return this.#registerThing(body, caller);
    }
  }

  async #createKeysAndCertificate(caller: Caller): Promise<Answer> {
    const { privateKeyPem, spki } = await this.#o.keys.take();
    const { certificatePem, certificateId } = this.#o.ca.issueClient(spki);
    const certificateOwnershipToken = this.#register(certificatePem, certificateId, caller);
    return {
      accepted: true,
      body: { certificateId, certificatePem, privateKey: privateKeyPem, certificateOwnershipToken },
    };
  }

  async #createCertificateFromCsr(body: Record<string, unknown>, caller: Caller): Promise<Answer> {
    const pem = body.certificateSigningRequest;
    if (typeof pem !== "string" || pem.trim() === "") {
      return reject(400, "InvalidPayload", "certificateSigningRequest cannot be empty.");
    }
    let csr;
    try {
      csr = await parseCsr(pem);
    } catch (error) {
      return reject(400, "InvalidCsr", (error as Error).message);
    }
    const subject = new Uint8Array(csr.subjectName.toArrayBuffer());
    const { certificatePem, certificateId } = this.#o.ca.issueClient(
      new Uint8Array(csr.publicKey.rawData),
      {
        // An empty subject (SEQUENCE of nothing) gets the AWS default.
        subject: subject.length > 2 ? subject : undefined,
      },
    );
    const certificateOwnershipToken = this.#register(certificatePem, certificateId, caller);
    return { accepted: true, body: { certificateId, certificatePem, certificateOwnershipToken } };
  }

  /** Registers a new certificate PENDING_ACTIVATION; returns its ownership token. */
  #register(certificatePem: string, certificateId: string, caller: Caller): string {
    const record: CertificateRecord = {
      certificateId,
      certificatePem,
      status: "PENDING_ACTIVATION",
      createdAt: new Date(this.#now()).toISOString(),
      thingNames: [],
      policyNames: [],
      createdByClaim: caller.certificateId,
    };
    this.#o.registry.putCertificate(record);
    const certificateOwnershipToken = randomBytes(48).toString("base64");
    this.#o.registry.putToken({
      tokenSha256: tokenHash(certificateOwnershipToken),
      certificateId,
      claimCertificateId: caller.certificateId,
      expiresAt: this.#now() + this.#o.tokenLifetimeMs,
    });
    this.#o.log(`issued certificate ${certificateId} (PENDING_ACTIVATION) to ${caller.clientId}`);
    return certificateOwnershipToken;
  }

  #registerThing(body: Record<string, unknown>, caller: Caller): Answer {
    const token = body.certificateOwnershipToken;
    if (typeof token !== "string" || token === "") {
      return reject(
        400,
        "InvalidCertificateOwnershipToken",
        "Certificate ownership token cannot be empty.",
      );
    }
    const hash = tokenHash(token);
    let record = this.#o.registry.token(hash);
    const now = this.#now();
    if (record && record.expiresAt <= now) {
      this.#o.registry.expireToken(hash);
      record = undefined;
    }
    if (
      !record || record.expiresAt <= now || record.claimCertificateId !== caller.certificateId ||
      !this.#o.registry.peekCertificate(record.certificateId)
    ) {
      return reject(
        400,
        "InvalidCertificateOwnershipToken",
        "Certificate ownership token is invalid or has expired.",
      );
    }
    const certificateId = record.certificateId;
    let result: TemplateResult;
    try {
      const parameters = validateParameters(body.parameters);
      result = evaluateTemplate(this.#o.template, {
        parameters,
        pseudoParameters: { "AWS::IoT::Certificate::Id": certificateId },
      });
      this.#check(result, certificateId);
    } catch (error) {
      if (error instanceof TemplateError) {
        this.#o.log(`RegisterThing rejected for ${caller.clientId}: ${error.message}`);
        return reject(400, error.errorCode, error.message);
      }
      throw error;
    }
    this.#apply(result, certificateId);
    const thingName = result.thing?.thingName ?? "";
    this.#o.log(
      `registered certificate ${certificateId} as ${result.certificate?.status}` +
        (thingName ? ` for thing ${thingName}` : ""),
    );
    return { accepted: true, body: { thingName, deviceConfiguration: result.deviceConfiguration } };
  }

  /** Validates the template's result against the registry before changing anything. */
  #check(result: TemplateResult, certificateId: string): void {
    if (!result.certificate) {
      throw new TemplateError(
        "ResourceRegistrationFailure",
        "The template has no AWS::IoT::Certificate resource, so the new certificate cannot be activated.",
      );
    }
    if (result.certificate.certificateId !== certificateId) {
      throw new TemplateError(
        "ResourceRegistrationFailure",
        `The template's certificate resource names ${result.certificate.certificateId}, not the certificate being registered (${certificateId}); use {"Ref": "AWS::IoT::Certificate::Id"}.`,
      );
    }
    for (const policy of result.policies) {
      if ("policyName" in policy && this.#o.registry.policy(policy.policyName) === undefined) {
        throw new TemplateError(
          "ResourceRegistrationFailure",
          `Policy ${policy.policyName} does not exist; create it (emulator option "policies") or use PolicyDocument.`,
        );
      }
    }
    if (result.thing) {
      const existing = this.#o.registry.thing(result.thing.thingName);
      if (existing) mergeThing(existing, result.thing);
    }
  }

  #apply(result: TemplateResult, certificateId: string): void {
    const registry = this.#o.registry;
    if (result.thing) {
      const existing = registry.thing(result.thing.thingName);
      const thing = existing ? mergeThing(existing, result.thing) : {
        thingName: result.thing.thingName,
        attributes: result.thing.attributes ?? {},
        thingTypeName: result.thing.thingTypeName,
        thingGroups: [...new Set(result.thing.thingGroups ?? [])],
        billingGroup: result.thing.billingGroup,
        principals: [],
        createdAt: new Date(this.#now()).toISOString(),
        version: 1,
      };
      registry.putThing(thing);
      registry.attachThing(certificateId, thing.thingName);
    }
    for (const policy of result.policies) {
      let name: string;
      if ("policyName" in policy) {
        name = policy.policyName;
      } else {
        const text = JSON.stringify(policy.policyDocument);
        name = `${this.#o.templateName}-${
          createHash("sha256").update(text).digest("hex").slice(0, 16)
        }`;
        registry.putPolicy(name, policy.policyDocument);
      }
      registry.attachPolicy(certificateId, name);
    }
    registry.setStatus(certificateId, result.certificate!.status);
  }
}

/**
 * Applies OverrideSettings to an existing thing (default DO_NOTHING). Throws
 * ResourceRegistrationFailure when a FAIL property would change.
 */
export function mergeThing(existing: ThingRecord, wanted: ThingResource): ThingRecord {
  const next: ThingRecord = structuredClone(existing);
  const action = (property: string) => wanted.overrides[property] ?? "DO_NOTHING";
  const failIf = (property: string, differs: boolean) => {
    if (differs) {
      throw new TemplateError(
        "ResourceRegistrationFailure",
        `Thing ${existing.thingName} exists and its ${property} differs; the template's OverrideSettings say FAIL.`,
      );
    }
  };
  if (wanted.attributes !== undefined) {
    switch (action("AttributePayload")) {
      case "REPLACE":
        next.attributes = { ...wanted.attributes };
        break;
      case "MERGE":
        next.attributes = { ...existing.attributes, ...wanted.attributes };
        break;
      case "FAIL":
        failIf("AttributePayload", !sameRecord(existing.attributes, wanted.attributes));
        break;
    }
  }
  if (wanted.thingGroups !== undefined) {
    switch (action("ThingGroups")) {
      case "REPLACE":
        next.thingGroups = [...new Set(wanted.thingGroups)];
        break;
      case "MERGE":
        next.thingGroups = [...new Set([...existing.thingGroups, ...wanted.thingGroups])];
        break;
      case "FAIL":
        failIf(
          "ThingGroups",
          [...new Set(wanted.thingGroups)].sort().join("\n") !==
            [...existing.thingGroups].sort().join("\n"),
        );
        break;
    }
  }
  if (wanted.thingTypeName !== undefined) {
    switch (action("ThingTypeName")) {
      case "REPLACE":
        next.thingTypeName = wanted.thingTypeName;
        break;
      case "FAIL":
        failIf("ThingTypeName", existing.thingTypeName !== wanted.thingTypeName);
        break;
    }
  }
  if (wanted.billingGroup !== undefined) {
    switch (action("BillingGroup")) {
      case "REPLACE":
        next.billingGroup = wanted.billingGroup;
        break;
      case "FAIL":
        failIf("BillingGroup", existing.billingGroup !== wanted.billingGroup);
        break;
    }
  }
  if (JSON.stringify(next) !== JSON.stringify(existing)) next.version++;
  return next;
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
