// SPDX-License-Identifier: Apache-2.0
/**
 * When to rotate: Device Defender's audit flags a device certificate past an
 * age (DEVICE_CERTIFICATE_AGE_CHECK, 365 days by default) or close to its
 * expiry (DEVICE_CERTIFICATE_EXPIRING_CHECK, 30 days by default);
 * `fleetprov rotate` uses the same thresholds, so a daily timer replaces a
 * certificate before the audit flags it. The age counts from the
 * certificate's notBefore (when AWS IoT issued it).
 *
 * @module
 */
import { DAY_MS } from "./identity.ts";

/** Device Defender's default certificate age threshold (DEVICE_CERTIFICATE_AGE_CHECK), days. */
export const DEFAULT_IF_OLDER_THAN_DAYS = 365;

/** Device Defender's default expiry threshold (DEVICE_CERTIFICATE_EXPIRING_CHECK), days. */
export const DEFAULT_IF_EXPIRES_WITHIN_DAYS = 30;

/** When a rotation is due. */
export interface DuePolicy {
  /** Rotate a certificate older than this many days. */
  ifOlderThanDays: number;
  /** Rotate a certificate that expires within this many days. */
  ifExpiresWithinDays: number;
  /** Rotate regardless. */
  force: boolean;
}

/** The default policy: Device Defender's thresholds, not forced. */
export const DEFAULT_DUE_POLICY: DuePolicy = {
  ifOlderThanDays: DEFAULT_IF_OLDER_THAN_DAYS,
  ifExpiresWithinDays: DEFAULT_IF_EXPIRES_WITHIN_DAYS,
  force: false,
};

/** Whether to rotate a certificate now, and why, in one sentence. */
export function rotationDue(
  certificate: { certificateId: string; notBefore: Date; notAfter: Date },
  options: { policy: DuePolicy; now: Date },
): { due: boolean; reason: string } {
  const { policy, now } = options;
  const ageMs = now.getTime() - certificate.notBefore.getTime();
  const leftMs = certificate.notAfter.getTime() - now.getTime();
  const age = `${days(Math.floor(ageMs / DAY_MS))} old`;
  const left = leftMs <= 0
    ? `expired on ${day(certificate.notAfter)}`
    : `expires in ${days(Math.floor(leftMs / DAY_MS))} (${day(certificate.notAfter)})`;
  const what = `Certificate ${certificate.certificateId} is ${age} and ${left}`;
  if (policy.force) return { due: true, reason: `${what}; rotating because of --force.` };
  if (ageMs > policy.ifOlderThanDays * DAY_MS) {
    return {
      due: true,
      reason: `${what}: older than ${policy.ifOlderThanDays} days (--if-older-than).`,
    };
  }
  if (leftMs <= policy.ifExpiresWithinDays * DAY_MS) {
    return {
      due: true,
      reason: `${what}: within ${policy.ifExpiresWithinDays} days of expiry (--if-expires-within).`,
    };
  }
  return {
    due: false,
    reason:
      `${what}; not rotating before it is ${policy.ifOlderThanDays} days old or ${policy.ifExpiresWithinDays} days from expiry (--if-older-than, --if-expires-within; --force rotates now).`,
  };
}

/** "1 day", "3 days". */
export function days(count: number): string {
  return `${count} ${Math.abs(count) === 1 ? "day" : "days"}`;
}

function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}
