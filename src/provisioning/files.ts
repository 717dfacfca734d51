// SPDX-License-Identifier: Apache-2.0
/**
 * The device's files around a provisioning: the claim credentials it reads,
 * the paths it will write (refused when they are links), and the new
 * credentials and runtime config it commits, runtime config last.
 *
 * @module
 */
import { lstatSync, readFileSync } from "node:fs";
import { join } from "node:path";
import tls from "node:tls";
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import { crashPoint } from "../failpoints.ts";
import type { SessionOptions } from "../mqtt/connection.ts";
import { openTokenContext, type TokenContext } from "../pkcs11/mod.ts";
import { AWS_MQTT_ALPN } from "../protocol/mod.ts";
import { writeRuntimeConfig } from "../runtime_config/mod.ts";
import { writeFileAtomic } from "../secure_files/mod.ts";
import { journalPath, type Registered } from "./journal.ts";

/** The claim connection's credentials and endpoint (the client id is added per connection). */
export interface ClaimCredentials extends Omit<SessionOptions, "clientId"> {
  /** The secure element's TLS context, when the key lives in a token. */
  token?: TokenContext;
}

/** Reads the claim certificate, key and root CA (or opens the secure element's context). */
export function readClaimCredentials(settings: Settings): ClaimCredentials {
  const cert = readText(settings.cert, "cert");
  const ca = settings.rootCa === undefined ? undefined : readText(settings.rootCa, "root-ca");
  // With a secure element, both connections sign with the token's key.
  const token = settings.secureElement.enabled
    ? openTokenContext(settings.secureElement, { certificatePem: cert, caPem: ca })
    : undefined;
  return {
    endpoint: settings.endpoint,
    port: settings.port,
    cert,
    ...(token
      ? { secureContext: token.secureContext, token }
      : { key: settings.key === undefined ? undefined : readText(settings.key, "key") }),
    ca,
    alpnProtocols: settings.port === 443 ? [AWS_MQTT_ALPN] : undefined,
    connectTimeoutMs: settings.retry.stepTimeoutMs,
  };
}

/**
 * The claim connection's TLS context (certificate, key, trusted CAs), built
 * once per run and kept for its retries; the secure element's, when there is one.
 */
export function claimContext(claim: ClaimCredentials): tls.SecureContext {
  claim.secureContext ??= tls.createSecureContext({
    cert: claim.cert,
    key: claim.key,
    ca: claim.ca,
    minVersion: "TLSv1.2",
  });
  return claim.secureContext;
}

/**
 * Refuses, before any request, a path fleetprov will write that is a symbolic
 * link (or not a plain file or directory): writes never go through a link, and
 * failing later would strand a registered certificate. `files` are more files
 * the run writes (a rotation's journal).
 */
export function checkOutputPaths(settings: Settings, files: readonly string[] = []): void {
  const keys = settings.keysDir;
  const paths: [string, "file" | "directory"][] = [
    [keys, "directory"],
    [join(keys, "active-certificate.pem.crt"), "file"],
    [join(keys, "active-private.pem.key"), "file"],
    [settings.runtimeConfigPath, "file"],
    [journalPath(settings.configDir), "file"],
    ...files.map((path): [string, "file"] => [path, "file"]),
  ];
  for (const [path, kind] of paths) {
    let stats: ReturnType<typeof lstatSync>;
    try {
      stats = lstatSync(path);
    } catch {
      continue; // absent (or under a missing directory): created later
    }
    if (kind === "file" ? stats.isFile() : stats.isDirectory()) continue;
    throw new FleetprovError(
      `${path} is ${
        stats.isSymbolicLink() ? "a symbolic link" : `not a ${kind}`
      }; fleetprov writes it itself and never through a link. Remove it and run again.`,
      ExitCode.Config,
    );
  }
}

/** The text of a file named by setting `key`; a configuration error when it cannot be read. */
export function readText(path: string, key: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new FleetprovError(
      `Cannot read ${key} file ${path} (${
        (error as NodeJS.ErrnoException).code
      }); check the path and its permissions.`,
      ExitCode.Config,
    );
  }
}

/** Where the new certificate and its key are (the key path is empty for a secure element). */
export function credentialPaths(
  settings: Settings,
  entry: Omit<Registered, "step">,
): { certPath: string; keyPath: string } {
  const keyPath = {
    "device-key": entry.deviceKeyPath!,
    // The key lives in the token; the Device Client records an empty path.
    "secure-element": "",
    "service": join(settings.keysDir, "active-private.pem.key"),
    "generated": join(settings.keysDir, "active-private.pem.key"),
  }[entry.keySource];
  return { certPath: join(settings.keysDir, "active-certificate.pem.crt"), keyPath };
}

/** Writes the certificate (0644) and key (0600) files, then the runtime config last. */
export function commitFiles(settings: Settings, entry: Registered): Registered {
  const dir = settings.keysDir;
  const { certPath, keyPath } = credentialPaths(settings, entry);
  writeFileAtomic(join(dir, `${entry.certificateId}-certificate.pem.crt`), entry.certificatePem, {
    mode: 0o644,
  });
  crashPoint("after-certificate-file");
  if (entry.privateKeyPem !== undefined) {
    writeFileAtomic(join(dir, `${entry.certificateId}-private.pem.key`), entry.privateKeyPem, {
      mode: 0o600,
    });
    crashPoint("after-key-file");
    writeFileAtomic(keyPath, entry.privateKeyPem, { mode: 0o600 });
  }
  writeFileAtomic(certPath, entry.certificatePem, { mode: 0o644 });
  writeRuntimeConfig(settings.runtimeConfigPath, {
    cert: certPath,
    key: keyPath,
    thingName: entry.thingName,
    deviceConfig: entry.deviceConfiguration,
  });
  return entry;
}
