// SPDX-License-Identifier: Apache-2.0
/**
 * Fixtures of the config, permission and check tests: a device layout with
 * a real claim certificate and key, a root CA, a CSR and its key, all with
 * the modes the Device Client demands, in a fresh temporary directory.
 *
 * @module
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCsr, generateKeyPair, x509 } from "../src/pki/mod.ts";
import { SettingsError } from "../src/config/mod.ts";
import { tempDir } from "./support/mod.ts";

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
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial,
    name: `CN=${cn}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
  });
  return cert.toString("pem") + "\n";
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
