// SPDX-License-Identifier: Apache-2.0
/**
 * A local AWS IoT fleet provisioning endpoint for tests, demos and CI: mutual
 * TLS MQTT broker, CA, registry, template engine, claim policy.
 *
 * @example
 * ```ts
 * const emulator = await startEmulator({ stateDir: "/tmp/fp", port: 0 });
 * // fleetprov --config-file emulator.configPath
 * await emulator.close();
 * ```
 *
 * @module
 */
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { createPublicKey } from "node:crypto";
import { join } from "node:path";
import { certificateId as certificateIdOf } from "../pki/mod.ts";
import { ensureDirectory, sweepTemporaries, writeFileAtomic } from "../secure_files/mod.ts";
import { startBroker } from "./broker.ts";
import type { OperationCounters } from "./broker.ts";
import { CertificateAuthority } from "./ca.ts";
import {
  CLAIM_POLICY_NAME,
  claimPolicy,
  DEFAULT_TEMPLATE_NAME,
  fpCertPolicy,
  sampleTemplate,
} from "./defaults.ts";
import { EmulatorEvents } from "./events.ts";
import { FaultController, type FaultOperation, type FaultRule } from "./faults.ts";
import { KeyPool, type KeyType } from "./keys.ts";
import { checkPolicyDocument } from "../policy/mod.ts";
import { Registry, type RegistryView } from "./registry.ts";
import { ProvisioningService } from "./service.ts";

export type { OperationCounters } from "./broker.ts";
export type { EmulatorEventMap, EmulatorEventName } from "./events.ts";
export { EmulatorEvents } from "./events.ts";
export { parseFaultFlag } from "./fault_flag.ts";
export {
  FaultController,
  type FaultOperation,
  type FaultRule,
  parseFaults,
  type PauseHandle,
  type PausePoint,
} from "./faults.ts";
export type {
  CertificateRecord,
  CertificateStatus,
  RegistryView,
  ThingRecord,
} from "./registry.ts";
export { claimPolicy, DEFAULT_TEMPLATE_NAME, fpCertPolicy, sampleTemplate } from "./defaults.ts";
export { KEY_TYPES, type KeyType } from "./keys.ts";
export { checkPolicyDocument } from "../policy/mod.ts";

/**
 * Registry changes are written (atomically) at most this long after they
 * happen, coalesced: one write per burst instead of several per request.
 */
const REGISTRY_FLUSH_DELAY_MS = 100;

/** Options of {@linkcode startEmulator}. */
export interface EmulatorOptions {
  /** Created 0745 if missing (secrets inside stay 0700/0600); CA, claim, registry and config persist here. */
  stateDir: string;
  /** Listen address, default "127.0.0.1". */
  host?: string;
  /** Listen port, default 8883; 0 picks a free port. */
  port?: number;
  /** Template name in the RegisterThing topic, default "FleetprovTemplate". */
  templateName?: string;
  /** Provisioning template, default the Device Client's sample template. */
  template?: unknown;
  /** Ownership token lifetime in ms, default 3 600 000 (1 hour). */
  tokenLifetimeMs?: number;
  /** Extra named policies; "FPCertPolicy" (the Device Client sample) exists by default. */
  policies?: Record<string, unknown>;
  /**
   * The claim certificate's policy (AWS IoT policy JSON). Default: the policy
   * of the AWS docs, iot:Connect plus the provisioning topics of `templateName`.
   */
  claimPolicy?: unknown;
  /**
   * Key pairs CreateKeysAndCertificate hands out: "rsa-2048" (default, as AWS
   * IoT) or "ec-p256" (cheap to generate: storms and benchmarks).
   */
  keyType?: KeyType;
  /** Key pairs generated ahead (default 2; 0 generates each on demand). */
  keyPoolSize?: number;
  /**
   * TLS ALPN: "require" refuses connections that do not negotiate
   * `x-amzn-mqtt-ca` (as AWS IoT on port 443); "optional" accepts both.
   * Default: "require" on port 443, else "optional".
   */
  alpn?: "require" | "optional";
  /** Fault rules active from the start (more via `emulator.faults.add`). */
  faults?: FaultRule[];
  /** Log sink, one line per call; default silent. */
  log?: (line: string) => void;
}

/** A running emulator. */
export interface Emulator {
  host: string;
  port: number;
  /** The endpoint devices use (the server certificate is valid for it). */
  endpoint: "localhost";
  /** The CA certificate (PEM) that issued the server and device certificates. */
  caCertPem: string;
  /** Root CA copy for devices: `<stateDir>/claim/root-ca.pem` (0644 in a 0700 dir). */
  caPath: string;
  /** The claim certificate (0644) and key (0600), registered ACTIVE. */
  claim: { certPath: string; keyPath: string; certificateId: string };
  /** `<stateDir>/device-client.conf`: a config file fleetprov can use as is. */
  configPath: string;
  /** Live registry (read-only view). */
  registry: RegistryView;
  /** Events (connect, request, answer, dropped, violation, disconnect). */
  events: EmulatorEvents;
  /** Requests and answers counted per operation, and CONNECTs under "connect" (live). */
  counters: Record<FaultOperation, OperationCounters>;
  /** Fault injection: add/clear rules, pause at a step. */
  faults: FaultController;
  /**
   * Issues and registers (ACTIVE, claim policy) another claim certificate for
   * a public key the emulator never sees the private half of, e.g. a key in a
   * device's secure element. `publicKeyPem` is a PEM SubjectPublicKeyInfo.
   */
  issueClaimCertificate(publicKeyPem: string): { certificatePem: string; certificateId: string };
  /** Stops listening, disconnects everyone, writes the registry. */
  close(): Promise<void>;
}

/** Starts the emulator; resolves once it listens and the config file is written. */
export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  const stateDir = options.stateDir;
  const host = options.host ?? "127.0.0.1";
  const templateName = options.templateName ?? DEFAULT_TEMPLATE_NAME;
  const template = options.template ?? sampleTemplate();
  const log = options.log ?? (() => {});
  const tokenLifetimeMs = options.tokenLifetimeMs ?? 3_600_000;
  const claimPolicyDocument = options.claimPolicy ?? claimPolicy(templateName);
  checkOptions({ template, claimPolicy: claimPolicyDocument, tokenLifetimeMs }, options);
  const faults = new FaultController(options.faults ?? []);

  prepareStateDir(stateDir);
  const ca = await CertificateAuthority.loadOrCreate(join(stateDir, "ca"));
  const server = await serverCertificate(ca, join(stateDir, "ca"));
  const registry = openRegistry(join(stateDir, "registry.json"), {
    claimPolicy: claimPolicyDocument,
    policies: options.policies,
  });
  const claim = await claimFiles(ca, registry, join(stateDir, "claim"));
  registry.flush();

  const events = new EmulatorEvents();
  const keys = new KeyPool(options.keyType ?? "rsa-2048", options.keyPoolSize ?? 2);
  const service = new ProvisioningService({
    registry,
    ca,
    keys,
    templateName,
    template,
    tokenLifetimeMs,
    log,
  });
  const port = options.port ?? 8883;
  const broker = await startBroker({
    host,
    port,
    alpn: options.alpn ?? (port === 443 ? "require" : "optional"),
    serverCertPem: server.certPem,
    serverKeyPem: server.keyPem,
    ca,
    registry,
    service,
    templateName,
    events,
    faults,
    log,
  }).catch(async (error) => {
    await keys.close();
    throw error;
  });
  const configPath = writeDeviceConfig(join(stateDir, "device-client.conf"), {
    port: broker.port,
    claim,
    templateName,
  });
  log(`listening on ${host}:${broker.port}; device config ${configPath}`);

  let closing: Promise<void> | undefined;
  return {
    host,
    port: broker.port,
    endpoint: "localhost",
    caCertPem: ca.certPem,
    caPath: claim.caPath,
    claim: { certPath: claim.certPath, keyPath: claim.keyPath, certificateId: claim.certificateId },
    configPath,
    registry,
    events,
    counters: broker.counters,
    faults,
    issueClaimCertificate: (publicKeyPem) => issueClaimCertificate(ca, registry, publicKeyPem),
    close() {
      closing ??= Promise.all([broker.close(), keys.close()]).finally(() => registry.flush())
        .then(() => {});
      return closing;
    },
  };
}

/**
 * Creates the state dir, 0745 (what the Device Client wants for the directory
 * of a config file; the secrets inside stay in 0700 directories and 0600
 * files), and sweeps the temporary files an emulator killed mid-write left.
 */
function prepareStateDir(stateDir: string): void {
  ensureDirectory(stateDir, 0o745);
  for (const dir of [stateDir, join(stateDir, "ca"), join(stateDir, "claim")]) {
    sweepTemporaries(dir);
  }
}

function checkOptions(
  given: { template: unknown; claimPolicy: unknown; tokenLifetimeMs: number },
  options: EmulatorOptions,
): void {
  checkTemplate(given.template);
  checkTokenLifetime(given.tokenLifetimeMs);
  checkPolicyDocument(given.claimPolicy, "The claim policy");
  if (options.alpn !== undefined && options.alpn !== "require" && options.alpn !== "optional") {
    throw new Error(`alpn must be "require" or "optional", not ${JSON.stringify(options.alpn)}.`);
  }
}

function checkTokenLifetime(tokenLifetimeMs: number): void {
  if (!Number.isFinite(tokenLifetimeMs) || tokenLifetimeMs < 0) {
    throw new Error(`tokenLifetimeMs must be a number >= 0, not ${tokenLifetimeMs}.`);
  }
}

/** The registry with the Device Client's sample policy, the claim policy and the extra policies. */
function openRegistry(
  path: string,
  given: { claimPolicy: unknown; policies?: Record<string, unknown> },
): Registry {
  const registry = new Registry(path, { flushDelayMs: REGISTRY_FLUSH_DELAY_MS });
  if (registry.policy("FPCertPolicy") === undefined) {
    registry.putPolicy("FPCertPolicy", fpCertPolicy());
  }
  registry.putPolicy(CLAIM_POLICY_NAME, given.claimPolicy);
  for (const [name, document] of Object.entries(given.policies ?? {})) {
    registry.putPolicy(name, document);
  }
  return registry;
}

/** Writes `<stateDir>/device-client.conf`, a config file fleetprov uses as is; returns its path. */
function writeDeviceConfig(
  path: string,
  device: {
    port: number;
    claim: { certPath: string; keyPath: string; caPath: string };
    templateName: string;
  },
): string {
  const config = {
    endpoint: "localhost",
    port: device.port,
    cert: device.claim.certPath,
    key: device.claim.keyPath,
    "root-ca": device.claim.caPath,
    logging: { level: "INFO", type: "STDOUT" },
    "fleet-provisioning": { enabled: true, "template-name": device.templateName },
  };
  writeFileAtomic(path, JSON.stringify(config, null, 2) + "\n", { mode: 0o640 });
  return path;
}

/** Registers another claim certificate (ACTIVE, claim policy) for a public key. */
function issueClaimCertificate(
  ca: CertificateAuthority,
  registry: Registry,
  publicKeyPem: string,
): { certificatePem: string; certificateId: string } {
  const spki = createPublicKey(publicKeyPem).export({ type: "spki", format: "der" });
  const issued = ca.issueClient(new Uint8Array(spki));
  registerClaim(registry, issued);
  return issued;
}

/** Registers a claim certificate: ACTIVE, with the claim policy. */
function registerClaim(
  registry: Registry,
  issued: { certificateId: string; certificatePem: string },
): void {
  registry.putCertificate({
    certificateId: issued.certificateId,
    certificatePem: issued.certificatePem,
    status: "ACTIVE",
    createdAt: new Date().toISOString(),
    thingNames: [],
    policyNames: [CLAIM_POLICY_NAME],
    claim: true,
  });
}

function checkTemplate(template: unknown): void {
  if (typeof template !== "object" || template === null || Array.isArray(template)) {
    throw new Error("The provisioning template must be a JSON object.");
  }
  const resources = (template as { Resources?: unknown }).Resources;
  if (typeof resources !== "object" || resources === null || Array.isArray(resources)) {
    throw new Error("The provisioning template has no Resources object.");
  }
}

async function serverCertificate(
  ca: CertificateAuthority,
  dir: string,
): Promise<{ certPem: string; keyPem: string }> {
  const certPath = join(dir, "server-cert.pem");
  const keyPath = join(dir, "server-key.pem");
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { certPem: readFileSync(certPath, "utf8"), keyPem: readFileSync(keyPath, "utf8") };
  }
  const issued = await ca.issueWithKey({ subject: "CN=localhost", server: true, days: 3650 });
  writeFileAtomic(keyPath, issued.privateKeyPem, { mode: 0o600 });
  writeFileAtomic(certPath, issued.certificatePem, { mode: 0o644 });
  return { certPem: issued.certificatePem, keyPem: issued.privateKeyPem };
}

async function claimFiles(ca: CertificateAuthority, registry: Registry, dir: string) {
  ensureDirectory(dir, 0o700);
  const certPath = join(dir, "claim-certificate.pem.crt");
  const keyPath = join(dir, "claim-private.pem.key");
  const caPath = join(dir, "root-ca.pem");
  let certificateId: string | undefined;
  if (existsSync(certPath) && existsSync(keyPath)) {
    const id = certificateIdOf(readFileSync(certPath, "utf8"));
    if (registry.peekCertificate(id)?.claim) certificateId = id;
  }
  if (!certificateId) {
    const issued = await ca.issueWithKey({ subject: "CN=fleetprov claim" });
    writeFileAtomic(keyPath, issued.privateKeyPem, { mode: 0o600 });
    writeFileAtomic(certPath, issued.certificatePem, { mode: 0o644 });
    certificateId = certificateIdOf(issued.certificatePem);
    registerClaim(registry, { certificateId, certificatePem: issued.certificatePem });
  }
  if (!existsSync(caPath) || readFileSync(caPath, "utf8") !== ca.certPem) {
    writeFileAtomic(caPath, ca.certPem, { mode: 0o644 });
  }
  // Devices check these modes exactly (Device Client rules): restore them.
  chmodSync(certPath, 0o644);
  chmodSync(keyPath, 0o600);
  chmodSync(caPath, 0o644);
  return { certPath, keyPath, caPath, certificateId };
}
