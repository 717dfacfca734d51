// SPDX-License-Identifier: Apache-2.0
/**
 * The registry's records and its file: what `registry.json` holds, and how
 * it is read back (older files, without templates or groups, load as is).
 *
 * @module
 */
import { readFileSync } from "node:fs";

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
  /** ISO 8601 time of the last status change, when there was one. */
  updatedAt?: string;
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

/** A pre-provisioning hook: a `file:` command or an `http(s):` URL, and the payload version. */
export interface HookRecord {
  targetArn: string;
  payloadVersion?: string;
}

/** A provisioning template, as CreateProvisioningTemplate stores it. */
export interface TemplateRecord {
  templateName: string;
  description: string;
  /** The body exactly as given (JSON text, at most 10240 characters). */
  templateBody: string;
  enabled: boolean;
  provisioningRoleArn: string;
  preProvisioningHook?: HookRecord;
  type: "FLEET_PROVISIONING";
  /** ISO 8601. */
  creationDate: string;
  lastModifiedDate: string;
  defaultVersionId: number;
  tags?: { Key: string; Value: string }[];
}

/** Kinds of named groupings a thing refers to, which must exist before a template names them. */
export type CatalogKind = "thingGroups" | "thingTypes" | "billingGroups";

/** A thing group, thing type or billing group: its name and creation time. */
export interface CatalogRecord {
  name: string;
  createdAt: string;
  description?: string;
}

/** When a policy was created, and its text as given (GetPolicy returns it verbatim). */
export interface PolicyInfo {
  createdAt: string;
  text?: string;
}

/** The whole registry, as `registry.json` holds it. */
export interface RegistryData {
  version: 1;
  certificates: Record<string, CertificateRecord>;
  things: Record<string, ThingRecord>;
  policies: Record<string, unknown>;
  policyInfo: Record<string, PolicyInfo>;
  tokens: Record<string, TokenRecord>;
  templates: Record<string, TemplateRecord>;
  thingGroups: Record<string, CatalogRecord>;
  thingTypes: Record<string, CatalogRecord>;
  billingGroups: Record<string, CatalogRecord>;
}

/** The registry's tables, keyed by names that come from outside. */
const TABLES = [
  "certificates",
  "things",
  "policies",
  "policyInfo",
  "tokens",
  "templates",
  "thingGroups",
  "thingTypes",
  "billingGroups",
] as const;

/**
 * A registry whose tables hold `data`'s entries (none by default), each table
 * without a prototype: a name such as `constructor`, `toString` or
 * `__proto__` (all valid AWS IoT names) is a key like any other, never
 * Object.prototype's.
 */
function withTables(data: Partial<RegistryData> = {}): RegistryData {
  const registry = { ...data, version: 1 } as RegistryData;
  for (const name of TABLES) {
    (registry as unknown as Record<string, unknown>)[name] = Object.assign(
      Object.create(null),
      data[name] ?? {},
    );
  }
  return registry;
}

/** Reads `path` (empty registry when missing); throws a sentence naming it when it is not one. */
export function loadRegistry(path: string): RegistryData {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return withTables();
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
  return withTables(data);
}
