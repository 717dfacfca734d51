// SPDX-License-Identifier: Apache-2.0
/**
 * The emulator's registry: certificates (status, attached things and
 * policies), things (attributes, type, groups), named policies, pending
 * ownership tokens, provisioning templates, and the thing groups, thing types
 * and billing groups templates may name. Shared by the MQTT side and the
 * control plane; persisted as readable JSON, atomically (`data.ts`).
 *
 * @module
 */
import { writeFileAtomic } from "../../secure_files/mod.ts";
import {
  type CatalogKind,
  type CatalogRecord,
  type CertificateRecord,
  type CertificateStatus,
  loadRegistry,
  type PolicyInfo,
  type RegistryData,
  type TemplateRecord,
  type ThingRecord,
  type TokenRecord,
} from "./data.ts";

export type {
  CatalogKind,
  CatalogRecord,
  CertificateRecord,
  CertificateStatus,
  HookRecord,
  PolicyInfo,
  TemplateRecord,
  ThingRecord,
  TokenRecord,
} from "./data.ts";

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
  /** Whether a named policy exists (without copying its document). */
  hasPolicy(policyName: string): boolean;
  /** The names of the policies. */
  policyNames(): string[];
  /** Every provisioning template. */
  templates(): TemplateRecord[];
  /** One provisioning template by name. */
  template(templateName: string): TemplateRecord | undefined;
  /** The thing groups, thing types or billing groups. */
  catalog(kind: CatalogKind): CatalogRecord[];
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
    this.#data = loadRegistry(path);
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

  hasPolicy(policyName: string): boolean {
    return Object.hasOwn(this.#data.policies, policyName);
  }

  policyNames(): string[] {
    return Object.keys(this.#data.policies);
  }

  /** When a policy was created and its text as given (undefined for an unknown policy). */
  policyInfo(policyName: string): PolicyInfo | undefined {
    if (!this.hasPolicy(policyName)) return undefined;
    const info = this.#data.policyInfo[policyName] as PolicyInfo | undefined;
    return { ...info, createdAt: info?.createdAt ?? new Date(0).toISOString() };
  }

  templates(): TemplateRecord[] {
    return Object.values(this.#data.templates).map((t) => structuredClone(t));
  }

  template(templateName: string): TemplateRecord | undefined {
    const record = this.#data.templates[templateName];
    return record && structuredClone(record);
  }

  catalog(kind: CatalogKind): CatalogRecord[] {
    return Object.values(this.#data[kind]).map((r) => structuredClone(r));
  }

  /** Whether a thing group, thing type or billing group exists. */
  hasCatalog(kind: CatalogKind, name: string): boolean {
    return Object.hasOwn(this.#data[kind], name);
  }

  /** Live (uncopied) certificate record, for the emulator's hot paths. Do not mutate. */
  peekCertificate(certificateId: string): Readonly<CertificateRecord> | undefined {
    return this.#data.certificates[certificateId];
  }

  /** Live template record. Do not mutate. */
  peekTemplate(templateName: string): Readonly<TemplateRecord> | undefined {
    return this.#data.templates[templateName];
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

  /** Sets a certificate's status (and its last-modified time). */
  setStatus(certificateId: string, status: CertificateStatus): void {
    const record = this.#require(certificateId);
    record.status = status;
    record.updatedAt = new Date().toISOString();
    this.#changed();
  }

  /** Adds or replaces a named policy; `text` is the document as given, kept for GetPolicy. */
  putPolicy(policyName: string, document: unknown, text?: string): void {
    this.#data.policies[policyName] = document;
    const info = this.#data.policyInfo[policyName];
    this.#data.policyInfo[policyName] = {
      createdAt: info?.createdAt ?? new Date().toISOString(),
      ...(text === undefined ? {} : { text }),
    };
    this.#changed();
  }

  /** Attaches a policy to a certificate (idempotent). */
  attachPolicy(certificateId: string, policyName: string): void {
    const record = this.#require(certificateId);
    if (!this.hasPolicy(policyName)) {
      throw new Error(`Policy ${policyName} does not exist.`);
    }
    if (!record.policyNames.includes(policyName)) record.policyNames.push(policyName);
    this.#changed();
  }

  /** Detaches a policy from a certificate (idempotent). */
  detachPolicy(certificateId: string, policyName: string): void {
    const record = this.#require(certificateId);
    record.policyNames = record.policyNames.filter((n) => n !== policyName);
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

  /** Detaches a certificate from a thing (idempotent). */
  detachThing(certificateId: string, thingName: string): void {
    const record = this.#data.certificates[certificateId];
    if (record) record.thingNames = record.thingNames.filter((n) => n !== thingName);
    const thing = this.#data.things[thingName];
    if (thing) thing.principals = thing.principals.filter((p) => p !== certificateId);
    this.#changed();
  }

  /** Adds or replaces a provisioning template. */
  putTemplate(record: TemplateRecord): void {
    this.#data.templates[record.templateName] = record;
    this.#changed();
  }

  /** Deletes a provisioning template. */
  deleteTemplate(templateName: string): void {
    delete this.#data.templates[templateName];
    this.#changed();
  }

  /** Adds a thing group, thing type or billing group. */
  putCatalog(kind: CatalogKind, record: CatalogRecord): void {
    this.#data[kind][record.name] = record;
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

  /** Writes pending changes now (atomically: a kill leaves the old file or the new one). */
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
