// SPDX-License-Identifier: Apache-2.0
/**
 * Is the system clock plausible for this run? TLS needs it inside the
 * validity of the claim certificate and of the root CA, both on disk, and no
 * clock reads before fleetprov was built or before a time this board already
 * recorded (src/clock/mod.ts says what each means). This parses the files
 * (node:crypto: loaded with provisioning only) into the windows it judges.
 * A board without an RTC boots at 1970 until NTP sets the clock.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import { type Validity, type ValidityWindow, validityWindow } from "../clock/mod.ts";

/** The window in which both the claim certificate and (one of) the root CAs are valid. */
export function credentialWindow(claimPem: string, caPem?: string): ValidityWindow | undefined {
  const claim = validitiesOf(claimPem).at(0);
  if (!claim) return undefined;
  return validityWindow({ claim, ca: caPem === undefined ? [] : validitiesOf(caPem) });
}

function validitiesOf(pem: string): Validity[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const out: Validity[] = [];
  for (const block of blocks) {
    try {
      const cert = new X509Certificate(block);
      const notBefore = new Date(cert.validFrom);
      const notAfter = new Date(cert.validTo);
      if (!Number.isNaN(notBefore.getTime()) && !Number.isNaN(notAfter.getTime())) {
        out.push({ notBefore, notAfter });
      }
    } catch {
      // Not parseable here: the settings' checks or the TLS handshake say what is wrong with it.
    }
  }
  return out;
}
