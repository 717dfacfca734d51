// SPDX-License-Identifier: Apache-2.0
/**
 * The emulator's state directory: the CA's server certificate, the claim
 * certificate and key (registered ACTIVE with the claim policy), the root CA
 * copy for devices, the registry with its default policies, and the device
 * config file fleetprov uses as is.
 *
 * @module
 */
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { createPublicKey } from "node:crypto";
import { join } from "node:path";
import { certificateId as certificateIdOf } from "../pki/mod.ts";
import { ensureDirectory, writeFileAtomic } from "../secure_files/mod.ts";
import type { CertificateAuthority } from "./ca.ts";
import { CLAIM_POLICY_NAME, deviceClientCertPolicy, fpCertPolicy } from "./defaults.ts";
import { Registry } from "./registry/mod.ts";

/**
 * Registry changes are written (atomically) at most this long after they
 * happen, coalesced: one write per burst instead of several per request.
 */
const REGISTRY_FLUSH_DELAY_MS = 100;

/**
 * The registry with the device policy (FPCertPolicy), the claim policy and
 * the extra policies. FPCertPolicy is created when missing, and replaced when
 * it is the Device Client's sample verbatim (what a state directory of an
 * emulator without rotation holds); one changed through the control plane
 * stays.
 */
export function openRegistry(
  path: string,
  given: { claimPolicy: unknown; policies?: Record<string, unknown> },
): Registry {
  const registry = new Registry(path, { flushDelayMs: REGISTRY_FLUSH_DELAY_MS });
  const stored = registry.policy("FPCertPolicy");
  if (stored === undefined || isDeepStrictEqual(stored, deviceClientCertPolicy())) {
    registry.putPolicy("FPCertPolicy", fpCertPolicy());
  }
  registry.putPolicy(CLAIM_POLICY_NAME, given.claimPolicy);
  for (const [name, document] of Object.entries(given.policies ?? {})) {
    registry.putPolicy(name, document);
  }
  return registry;
}

/** Writes `<stateDir>/device-client.conf`, a config file fleetprov uses as is; returns its path. */
export function writeDeviceConfig(
  path: string,
  device: {
    port: number;
    claim: { certPath: string; keyPath: string; caPath: string };
    templateName: string;
    /** The rotation template, when the emulator serves one (`fleetprov rotate` reads it). */
    rotationTemplateName?: string;
  },
): string {
  const rotation = device.rotationTemplateName === undefined
    ? {}
    : { "rotation-template-name": device.rotationTemplateName };
  const config = {
    endpoint: "localhost",
    port: device.port,
    cert: device.claim.certPath,
    key: device.claim.keyPath,
    "root-ca": device.claim.caPath,
    logging: { level: "INFO", type: "STDOUT" },
    "fleet-provisioning": { enabled: true, "template-name": device.templateName, ...rotation },
  };
  writeFileAtomic(path, JSON.stringify(config, null, 2) + "\n", { mode: 0o640 });
  return path;
}

/** Registers another claim certificate (ACTIVE, claim policy) for a public key. */
export function issueClaimCertificate(
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

/** The claim's files and certificate id. */
export interface ClaimFiles {
  certPath: string;
  keyPath: string;
  caPath: string;
  certificateId: string;
}

/** The claim certificate, key and root CA copy (created once, reused; modes restored). */
export async function claimFiles(
  ca: CertificateAuthority,
  registry: Registry,
  dir: string,
): Promise<ClaimFiles> {
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
