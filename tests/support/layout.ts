// SPDX-License-Identifier: Apache-2.0
/**
 * Fixtures of the config, permission and check tests: a device layout with
 * a real claim certificate and key, a root CA, a CSR and its key, all with
 * the modes the Device Client demands, in a fresh temporary directory.
 *
 * @module
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCsr, generateKeyPair } from "../../src/pki/mod.ts";
import { SettingsError } from "../../src/config/mod.ts";
import { writeRuntimeConfig } from "../../src/runtime_config/mod.ts";
import { ensureDirectory, writeFileAtomic } from "../../src/secure_files/mod.ts";
import { tempDir } from "./fs.ts";
import { selfSignedCertificate } from "./pki.ts";

/** PEM material shared by every layout (generated once per test process). */
interface Material {
  claimCert: string;
  claimKey: string;
  otherKey: string;
  rootCa: string;
  csr: string;
  deviceKey: string;
}

let material: Promise<Material> | undefined;

async function selfSigned(cn: string, keys: CryptoKeyPair, serial: string): Promise<string> {
  const { certificate } = await selfSignedCertificate(cn, { keys, serial });
  return certificate.toString("pem") + "\n";
}

function makeMaterial(): Promise<Material> {
  material ??= (async () => {
    const claim = await generateKeyPair("ec-p256");
    const ca = await generateKeyPair("ec-p256");
    const other = await generateKeyPair("ec-p256");
    const device = await generateKeyPair("ec-p256");
    return {
      claimCert: await selfSigned("claim", claim.keys, "0a1b2c3d4e5f"),
      claimKey: claim.privateKeyPem + "\n",
      otherKey: other.privateKeyPem + "\n",
      rootCa: await selfSigned("Test Root CA", ca.keys, "01"),
      csr: await createCsr("device", device.keys) + "\n",
      deviceKey: device.privateKeyPem + "\n",
    };
  })();
  return material;
}

/** A device layout on disk. */
export interface Layout {
  /** Temporary root holding everything. */
  root: string;
  /** HOME of the device (its `.aws-iot-device-client` does not exist yet). */
  home: string;
  /** `<home>/.aws-iot-device-client`. */
  configDir: string;
  /** Directory of the claim files (0700). */
  certsDir: string;
  claimCert: string;
  claimKey: string;
  rootCa: string;
  csr: string;
  deviceKey: string;
  /** A private key that does not belong to the claim certificate (0600). */
  otherKey: string;
  /** Flags that make a complete, valid provisioning command line. */
  args: string[];
  /** The same settings as a config file object. */
  config: Record<string, unknown>;
  /** Machine id file with a fixed id (so client ids are deterministic). */
  machineIdFile: string;
}

/** Creates a fresh device layout with correct modes everywhere. */
export async function makeLayout(): Promise<Layout> {
  const m = await makeMaterial();
  const root = tempDir("fleetprov-config-");
  const home = join(root, "home");
  mkdirSync(home, { mode: 0o700 });
  const certsDir = join(root, "certs");
  mkdirSync(certsDir, { mode: 0o700 });
  chmodSync(certsDir, 0o700);
  const put = (name: string, text: string, mode: number) => {
    const path = join(certsDir, name);
    writeFileSync(path, text, { mode });
    chmodSync(path, mode);
    return path;
  };
  const layout = {
    root,
    home,
    configDir: join(home, ".aws-iot-device-client"),
    certsDir,
    claimCert: put("claim.pem.crt", m.claimCert, 0o644),
    claimKey: put("claim.pem.key", m.claimKey, 0o600),
    rootCa: put("AmazonRootCA1.pem", m.rootCa, 0o644),
    csr: put("device.csr", m.csr, 0o600),
    deviceKey: put("device.pem.key", m.deviceKey, 0o600),
    otherKey: put("other.pem.key", m.otherKey, 0o600),
    machineIdFile: join(root, "machine-id"),
  };
  writeFileSync(layout.machineIdFile, "0123456789abcdef0123456789abcdef\n");
  return {
    ...layout,
    args: [
      "--endpoint",
      "abc123-ats.iot.us-east-1.amazonaws.com",
      "--cert",
      layout.claimCert,
      "--key",
      layout.claimKey,
      "--root-ca",
      layout.rootCa,
      "--enable-fleet-provisioning",
      "true",
      "--fleet-provisioning-template-name",
      "BoardTemplate",
    ],
    config: {
      endpoint: "abc123-ats.iot.us-east-1.amazonaws.com",
      cert: layout.claimCert,
      key: layout.claimKey,
      "root-ca": layout.rootCa,
      "fleet-provisioning": { enabled: true, "template-name": "BoardTemplate" },
    },
  };
}

/** Writes a config file (text or object as JSON) with a mode, in a 0745 directory; returns its path. */
export function writeConfig(
  layout: Layout,
  content: string | Record<string, unknown>,
  options: { name?: string; mode?: number; dir?: string } = {},
): string {
  const dir = options.dir ?? join(layout.root, "etc");
  mkdirSync(dir, { recursive: true, mode: 0o745 });
  chmodSync(dir, 0o745);
  const path = join(dir, options.name ?? "fleetprov.conf");
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content, null, 2));
  chmodSync(path, options.mode ?? 0o640);
  return path;
}

/** Flags that enable a secure element with its PKCS#11 library and PIN. */
export function secureElementFlags(secureElement: { lib: string; pin: string }): string[] {
  return [
    "--enable-secure-element",
    "true",
    "--pkcs11-lib",
    secureElement.lib,
    "--secure-element-pin",
    secureElement.pin,
  ];
}

/** Load options pinned to a layout. */
export function loadOptions(layout: Layout, env: Record<string, string> = {}) {
  return {
    home: layout.home,
    env: { HOME: layout.home, ...env },
    machineIdFiles: [layout.machineIdFile],
  };
}

/** Runs `fn`, which must reject with a SettingsError, and returns it. */
export async function settingsError(fn: () => Promise<unknown>): Promise<SettingsError> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof SettingsError) return error;
    throw error;
  }
  throw new Error("expected a SettingsError, but the settings loaded");
}

/**
 * Lays out what a provisioning leaves, as fleetprov writes it: config dir
 * 0745 (as the Device Client creates it), keys dir 0700, certificate 0644 and
 * key 0600 (atomic writes; the claim's stand in for the new ones), runtime
 * config 0640 naming them. Returns the certificate and key paths.
 */
export function writeProvisioned(
  layout: Layout,
  runtime: { thingName: string; deviceConfig?: Record<string, string> },
): { cert: string; key: string } {
  ensureDirectory(layout.configDir, 0o745);
  const keysDir = join(layout.configDir, "keys");
  ensureDirectory(keysDir, 0o700);
  const cert = join(keysDir, "active-certificate.pem.crt");
  const key = join(keysDir, "active-private.pem.key");
  writeFileAtomic(cert, readFileSync(layout.claimCert), { mode: 0o644 });
  writeFileAtomic(key, readFileSync(layout.claimKey), { mode: 0o600 });
  writeRuntimeConfig(join(layout.configDir, "aws-iot-device-client-runtime.conf"), {
    cert,
    key,
    thingName: runtime.thingName,
    deviceConfig: runtime.deviceConfig ?? {},
  });
  return { cert, key };
}
