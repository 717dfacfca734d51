// SPDX-License-Identifier: Apache-2.0
/**
 * The provisioning API itself: CreateKeysAndCertificate,
 * CreateCertificateFromCsr and RegisterThing (`register_thing.ts`), answered
 * from the registry, the CA and the registry's templates. Transport-free: the
 * broker decodes requests and delivers the answers.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import type { Operation } from "../../protocol/mod.ts";
import { type CertificateAuthority, parseCsr } from "../ca.ts";
import type { CertificateRecord, Registry } from "../registry/mod.ts";
import { type Answer, type Caller, reject, tokenHash } from "./answers.ts";
import type { KeyPool } from "./keys.ts";
import { ThingRegistrar } from "./register_thing.ts";

/** Dependencies and settings of the service. */
export interface ServiceOptions {
  registry: Registry;
  ca: CertificateAuthority;
  /** Where CreateKeysAndCertificate takes its key pairs from (RSA 2048 by default). */
  keys: KeyPool;
  tokenLifetimeMs: number;
  /** A pre-provisioning hook's time limit (AWS: 5 s). */
  hookTimeoutMs?: number;
  /** How many pre-provisioning hooks may run at once (default 32). */
  hookConcurrency?: number;
  log: (line: string) => void;
  /** Clock (epoch ms). */
  now?: () => number;
}

/** How often expired ownership tokens are swept (a used token is checked on its own). */
const SWEEP_INTERVAL_MS = 1000;

/** The fleet provisioning service. */
export class ProvisioningService {
  readonly #o: ServiceOptions;
  readonly #now: () => number;
  readonly #registrar: ThingRegistrar;
  #sweptAt = -Infinity;

  /** Creates the service. */
  constructor(options: ServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#registrar = new ThingRegistrar({
      registry: options.registry,
      log: options.log,
      now: this.#now,
      hookTimeoutMs: options.hookTimeoutMs,
      hookConcurrency: options.hookConcurrency,
    });
  }

  /**
   * Answers one request. `request` is the decoded payload (undefined when
   * empty); `templateName` is RegisterThing's, from its topic.
   */
  async handle(
    operation: Operation,
    request: unknown,
    caller: Caller & { templateName?: string },
  ): Promise<Answer> {
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
        return await this.#registrar.register(body, {
          templateName: caller.templateName ?? "",
          caller: { certificateId: caller.certificateId, clientId: caller.clientId },
        });
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
}
