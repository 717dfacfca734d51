// SPDX-License-Identifier: Apache-2.0
/**
 * Is the system clock plausible? TLS needs it inside the validity of the
 * claim certificate and of the root CA, both on disk, so this is checked
 * before connecting, the same way under Deno's TLS and Node's, and again
 * when a TLS verification fails. A board without an RTC boots at 1970 until
 * NTP sets the clock.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";

/** When the clock makes sense for these credentials. */
export interface ValidityWindow {
  notBefore: Date;
  notAfter: Date;
  /** What the window comes from, for the message. */
  from: string;
}

/** The window in which both the claim certificate and (one of) the root CAs are valid. */
export function validityWindow(claimPem: string, caPem?: string): ValidityWindow | undefined {
  const claim = windowsOf(claimPem).at(0);
  if (!claim) return undefined;
  const cas = caPem === undefined ? [] : windowsOf(caPem);
  if (cas.length === 0) return { ...claim, from: "the claim certificate" };
  // A bundle is usable while any of its CAs is valid.
  const caFrom = Math.min(...cas.map((w) => w.notBefore.getTime()));
  const caTo = Math.max(...cas.map((w) => w.notAfter.getTime()));
  return {
    notBefore: new Date(Math.max(claim.notBefore.getTime(), caFrom)),
    notAfter: new Date(Math.min(claim.notAfter.getTime(), caTo)),
    from: "the claim certificate and the root CA",
  };
}

/** A one-line diagnosis when `now` lies outside `window`, else undefined. */
export function clockProblem(window: ValidityWindow, now: Date): string | undefined {
  const before = now < window.notBefore;
  if (!before && now <= window.notAfter) return undefined;
  return `The system clock reads ${iso(now)}, ${
    before ? "before" : "after"
  } the validity of ${window.from}; it should read after ${iso(window.notBefore)} and before ${
    iso(window.notAfter)
  }. TLS cannot work until the clock is set: by NTP (systemd-timesyncd: timedatectl set-ntp true, and systemd-time-wait-sync.service so time-sync.target waits for it) or from an RTC (hwclock --hctosys).`;
}

function windowsOf(pem: string): { notBefore: Date; notAfter: Date }[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const out: { notBefore: Date; notAfter: Date }[] = [];
  for (const block of blocks) {
    try {
      const cert = new X509Certificate(block);
      const notBefore = new Date(cert.validFrom);
      const notAfter = new Date(cert.validTo);
      if (!Number.isNaN(notBefore.getTime()) && !Number.isNaN(notAfter.getTime())) {
        out.push({ notBefore, notAfter });
      }
    } catch {
      // Not parseable here: the TLS handshake will say what is wrong with it.
    }
  }
  return out;
}

function iso(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}
