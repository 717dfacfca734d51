// SPDX-License-Identifier: Apache-2.0
/**
 * Who the board is now: the thing and the certificate the runtime config
 * names, with the certificate's id and validity. Read-only.
 *
 * @module
 */
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";

/** The board's identity, as the runtime config names it. */
export interface CurrentIdentity {
  thingName: string;
  /** The certificate the runtime config points at. */
  certPath: string;
  /** Its private key (`""` when it lives in a secure element). */
  keyPath: string;
  certificatePem: string;
  /** AWS IoT's id of the certificate: hex SHA-256 of its DER. */
  certificateId: string;
  notBefore: Date;
  notAfter: Date;
  /** The runtime config's `device-config`. */
  deviceConfig: Record<string, string>;
  /** When the runtime config was last written (epoch ms). */
  runtimeConfigWrittenAt: number;
}

/** One day in milliseconds. */
export const DAY_MS = 24 * 60 * 60 * 1000;

/** The board's identity, or undefined when the runtime config does not say "provisioned". */
export function currentIdentity(settings: Settings): CurrentIdentity | undefined {
  const runtime = settings.runtime;
  if (runtime.status !== "provisioned") return undefined;
  const certificatePem = readFileSync(runtime.cert, "utf8");
  const parsed = parseCertificate(certificatePem, runtime.cert);
  return {
    thingName: runtime.thingName,
    certPath: runtime.cert,
    keyPath: runtime.key,
    certificatePem,
    ...parsed,
    deviceConfig: runtime.deviceConfig,
    runtimeConfigWrittenAt: statSync(settings.runtimeConfigPath).mtimeMs,
  };
}

/** A PEM certificate's AWS IoT id and validity; a configuration error naming `path` if unreadable. */
export function parseCertificate(
  pem: string,
  path: string,
): { certificateId: string; notBefore: Date; notAfter: Date } {
  try {
    const certificate = new X509Certificate(pem);
    return {
      certificateId: createHash("sha256").update(certificate.raw).digest("hex"),
      notBefore: new Date(certificate.validFrom),
      notAfter: new Date(certificate.validTo),
    };
  } catch (error) {
    throw new FleetprovError(
      `Certificate ${path} cannot be parsed (${
        (error as Error).message
      }); it is not a PEM X.509 certificate.`,
      ExitCode.Config,
    );
  }
}
