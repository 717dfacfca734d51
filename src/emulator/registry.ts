// SPDX-License-Identifier: Apache-2.0
/**
 * The emulator's registry: certificates (status, attached things and
 * policies), things (attributes, type, groups), named policies and pending
 * ownership tokens. Persisted as readable JSON, atomically.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../secure_files/mod.ts";

/** Certificate statuses the emulator uses. */
export type CertificateStatus = "ACTIVE" | "INACTIVE" | "PENDING_ACTIVATION" | "REVOKED";

/** A registered certificate. */
export interface CertificateRecord {
  /** Hex SHA-256 of the DER certificate. */
  certificateId: string;
  certificatePem: string;
  status: CertificateStatus;
  /** ISO 8601 creation time. */
  createdAt: string;
  /** Things this certificate is attached to. */
  thingNames: string[];
  /** Names of the policies attached to it. */
  policyNames: string[];
  /** True for the claim certificate. */
  claim?: boolean;
  /** The claim certificate whose connection created it. */
  createdByClaim?: string;
}

/** A registered thing. */
export interface ThingRecord {
  thingName: string;
  attributes: Record<string, string>;
  thingTypeName?: string;
  thingGroups: string[];
  billingGroup?: string;
  /** Certificate ids attached to it. */
  principals: string[];
  createdAt: string;
  /** Incremented on every update. */
  version: number;
}

/** A pending ownership token, stored as its SHA-256 (the token itself is a secret). */
export interface TokenRecord {
  tokenSha256: string;
  certificateId: string;
  claimCertificateId: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

interface RegistryData {
  version: 1;
  certificates: Record<string, CertificateRecord>;
  things: Record<string, ThingRecord>;
  policies: Record<string, unknown>;
  tokens: Record<string, TokenRecord>;
}

/** Read access to the registry (what tests and users see). Returns copies. */
export interface RegistryView {
  /** Path of `registry.json`. */
  readonly path: string;
  /** Every certificate. */
  certificates(): CertificateRecord[];
  /** One certificate by id. */
  certificate(certificateId: string): CertificateRecord | undefined;
  /** Every thing. */
  things(): ThingRecord[];
  /** One thing by name. */
  thing(thingName: string): ThingRecord | undefined;
  /** Names of the policies attached to a certificate. */
  policiesOf(certificateId: string): string[];
  /** Every named policy. */
  policies(): Record<string, unknown>;
  /** One policy document by name. */
  policy(policyName: string): unknown;
}

/** The registry: the emulator mutates it, everyone may read it. */
export class Registry implements RegistryView {
  #data: RegistryData;
  #path: string;
  #dirty = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushDelayMs: number;
  #flushedAt = 0;
  #gapMs = 0;

  /**
   * Loads `<path>` if it exists, else starts empty. Changes are written
   * atomically right after the task that made them, then at most once per
   * `flushDelayMs` (or 20 times the last write's duration, if longer), and
   * on {@linkcode flush}. `flushDelayMs` 0 writes synchronously on every change.
   */
  constructor(path: string, options: { flushDelayMs?: number } = {}) {
    this.#path = path;
    this.#flushDelayMs = options.flushDelayMs ?? 0;
    this.#data = load(path);
  }

  /** Path of registry.json. */
  get path(): string {
    return this.#path;
  }

  certificates(): CertificateRecord[] {
    return Object.values(this.#data.certificates).map((c) => structuredClone(c));
  }

  certificate(certificateId: string): CertificateRecord | undefined {
    const record = this.#data.certificates[certificateId];
    return record && structuredClone(record);
  }

  things(): ThingRecord[] {
    return Object.values(this.#data.things).map((t) => structuredClone(t));
  }

  thing(thingName: string): ThingRecord | undefined {
    const record = this.#data.things[thingName];
    return record && structuredClone(record);
  }

  policiesOf(certificateId: string): string[] {
    return [...(this.#data.certificates[certificateId]?.policyNames ?? [])];
  }

  policies(): Record<string, unknown> {
    return structuredClone(this.#data.policies);
  }

  policy(policyName: string): unknown {
    const document = this.#data.policies[policyName];
    return document === undefined ? undefined : structuredClone(document);
  }

  /** Live (uncopied) certificate record, for the emulator's hot paths. Do not mutate. */
  peekCertificate(certificateId: string): Readonly<CertificateRecord> | undefined {
    return this.#data.certificates[certificateId];
  }

  /** Live policy documents attached to a certificate. Do not mutate. */
  policyDocumentsOf(certificateId: string): unknown[] {
    const names = this.#data.certificates[certificateId]?.policyNames ?? [];
    return names.map((n) => this.#data.policies[n]).filter((d) => d !== undefined);
  }

  /** Adds or replaces a certificate. */
  putCertificate(record: CertificateRecord): void {
    this.#data.certificates[record.certificateId] = record;
    this.#changed();
  }

  /** Deletes a certificate, its tokens and its thing attachments. */
  deleteCertificate(certificateId: string): void {
    const record = this.#data.certificates[certificateId];
    if (!record) return;
    for (const name of record.thingNames) {
      const thing = this.#data.things[name];
      if (thing) thing.principals = thing.principals.filter((p) => p !== certificateId);
    }
    delete this.#data.certificates[certificateId];
    for (const [hash, token] of Object.entries(this.#data.tokens)) {
      if (token.certificateId === certificateId) delete this.#data.tokens[hash];
    }
    this.#changed();
  }

  /** Sets a certificate's status. */
  setStatus(certificateId: string, status: CertificateStatus): void {
    const record = this.#require(certificateId);
    record.status = status;
    this.#changed();
  }

  /** Adds or replaces a named policy. */
  putPolicy(policyName: string, document: unknown): void {
    this.#data.policies[policyName] = document;
    this.#changed();
  }

  /** Attaches a policy to a certificate (idempotent). */
  attachPolicy(certificateId: string, policyName: string): void {
    const record = this.#require(certificateId);
    if (!(policyName in this.#data.policies)) {
      throw new Error(`Policy ${policyName} does not exist.`);
    }
    if (!record.policyNames.includes(policyName)) record.policyNames.push(policyName);
    this.#changed();
  }

  /** Adds or replaces a thing. */
  putThing(record: ThingRecord): void {
    this.#data.things[record.thingName] = record;
    this.#changed();
  }

  /** Attaches a certificate to a thing (idempotent). */
  attachThing(certificateId: string, thingName: string): void {
    const record = this.#require(certificateId);
    const thing = this.#data.things[thingName];
    if (!thing) throw new Error(`Thing ${thingName} does not exist.`);
    if (!record.thingNames.includes(thingName)) record.thingNames.push(thingName);
    if (!thing.principals.includes(certificateId)) thing.principals.push(certificateId);
    this.#changed();
  }

  /** Records an ownership token (by hash). */
  putToken(token: TokenRecord): void {
    this.#data.tokens[token.tokenSha256] = token;
    this.#changed();
  }

  /** Looks a token up by hash. */
  token(tokenSha256: string): TokenRecord | undefined {
    return this.#data.tokens[tokenSha256];
  }

  /**
   * Drops expired tokens and deletes the certificates they left
   * PENDING_ACTIVATION (AWS deletes an unregistered certificate after an hour).
   * Returns the deleted certificate ids.
   */
  expireTokens(now: number): string[] {
    const deleted: string[] = [];
    for (const [hash, token] of Object.entries(this.#data.tokens)) {
      if (token.expiresAt > now) continue;
      delete this.#data.tokens[hash];
      this.#dirty = true;
      const cert = this.#data.certificates[token.certificateId];
      if (cert?.status === "PENDING_ACTIVATION") {
        this.deleteCertificate(token.certificateId);
        deleted.push(token.certificateId);
      }
    }
    if (this.#dirty) this.#changed();
    return deleted;
  }

  /** Drops one token; deletes its certificate if still PENDING_ACTIVATION. */
  expireToken(tokenSha256: string): void {
    const token = this.#data.tokens[tokenSha256];
    if (!token) return;
    delete this.#data.tokens[tokenSha256];
    if (this.#data.certificates[token.certificateId]?.status === "PENDING_ACTIVATION") {
      this.deleteCertificate(token.certificateId);
    }
    this.#changed();
  }

  /** Writes pending changes now. */
  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (!this.#dirty) return;
    this.#dirty = false;
    const started = Date.now();
    writeFileAtomic(this.#path, JSON.stringify(this.#data, null, 2) + "\n", { mode: 0o600 });
    this.#flushedAt = Date.now();
    // Keep writing under ~5% of the time as the registry grows: wait at least
    // 20 times as long as the last write took before the next one.
    this.#gapMs = Math.max(this.#flushDelayMs, 20 * (this.#flushedAt - started));
  }

  #changed(): void {
    this.#dirty = true;
    if (this.#flushDelayMs <= 0) {
      this.flush();
    } else if (this.#timer === undefined) {
      // Write as soon as the current task ends, but at most once per flushDelayMs.
      const delay = Math.max(0, this.#flushedAt + this.#gapMs - Date.now());
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.flush();
      }, delay);
    }
  }

  #require(certificateId: string): CertificateRecord {
    const record = this.#data.certificates[certificateId];
    if (!record) throw new Error(`Certificate ${certificateId} is not registered.`);
    return record;
  }
}

function load(path: string): RegistryData {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return { version: 1, certificates: {}, things: {}, policies: {}, tokens: {} };
    }
    throw error;
  }
  let data: RegistryData;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new Error(
      `${path} is not valid JSON (${(error as Error).message}); fix it or delete it to start over.`,
    );
  }
  if (data?.version !== 1 || typeof data.certificates !== "object") {
    throw new Error(`${path} is not an emulator registry (version 1); delete it to start over.`);
  }
  data.things ??= {};
  data.policies ??= {};
  data.tokens ??= {};
  return data;
}
