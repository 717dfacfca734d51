// SPDX-License-Identifier: Apache-2.0
/**
 * What fleetprov may believe about the system clock, and what it may then
 * say about the claim certificate and the root CA.
 *
 * - **A floor.** The clock cannot read before fleetprov was built (systemd
 *   uses its own build time the same way): a board without an RTC that boots
 *   at 1970 is known wrong. Release binaries carry their build time
 *   (`SOURCE_DATE_EPOCH`, else the last commit's time); from source the floor
 *   is {@linkcode SOURCE_BUILD_TIME}, this version's release date.
 * - **Synchronised.** systemd-timesyncd creates
 *   {@linkcode TIMESYNC_FLAG} once NTP has set the clock; then the clock is
 *   trusted.
 * - **Credentials that cannot work, whatever the clock** (a configuration
 *   error, 78): a certificate that expired before the floor, a claim
 *   certificate and root CA whose validities never overlap, and, with a
 *   synchronised clock, one that is expired or not yet valid now.
 * - **A clock that is wrong** (75, wait for it): before the floor, or outside
 *   the credentials' validity without a synchronised clock to say which is wrong.
 *
 * Windows come in as dates: parsing certificates needs node:crypto, which the
 * already-provisioned boot does without.
 *
 * @module
 */
import { existsSync } from "node:fs";

/** Defined by the build (build/mod.ts) in release bundles: when the binary was built, ISO 8601. */
declare const FLEETPROV_BUILD_TIME: string | undefined;

/**
 * The floor when running from source: no earlier than this version's
 * release, so no correct clock reads before it (tests/clock_test.ts checks it
 * is not after the last commit). A release moves it with the version.
 */
export const SOURCE_BUILD_TIME = "2026-12-01T00:00:00Z";

/** The file systemd-timesyncd creates once NTP has synchronised the clock. */
export const TIMESYNC_FLAG = "/run/systemd/timesync/synchronized";

/** The time the clock cannot read before: this binary's build time (from source, the release date). */
export function buildTime(): Date {
  const built = typeof FLEETPROV_BUILD_TIME === "string" ? FLEETPROV_BUILD_TIME : undefined;
  return new Date(built ?? SOURCE_BUILD_TIME);
}

/** What one reading of the clock tells. */
export interface ClockReading {
  now: Date;
  /** fleetprov's build time: a correct clock reads after it. */
  built: Date;
  /** NTP set the clock (systemd-timesyncd's flag): it is trusted. */
  synchronised: boolean;
}

/** Reads the clock (`now` in ms for tests), the floor and whether NTP set it. */
export function readClock(
  options: { now?: number; timesyncFlag?: string } = {},
): ClockReading {
  return {
    now: new Date(options.now ?? Date.now()),
    built: buildTime(),
    synchronised: existsSync(options.timesyncFlag ?? TIMESYNC_FLAG),
  };
}

/** When a certificate (or a bundle) is valid. */
export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/** When the clock makes sense for a set of credentials. */
export interface ValidityWindow extends Validity {
  /** What the window comes from, for the message. */
  from: string;
}

/** The credentials' validities: the claim certificate's, and the root CA's (its certificates). */
export interface CredentialValidity {
  claim: Validity;
  /** Each certificate of the root CA file; a bundle is usable while any of them is. */
  ca?: Validity[];
}

/** The window in which both the claim certificate and (one of) the root CAs are valid. */
export function validityWindow(credentials: CredentialValidity): ValidityWindow {
  const { claim, ca = [] } = credentials;
  if (ca.length === 0) return { ...claim, from: "the claim certificate" };
  const caFrom = Math.min(...ca.map((w) => w.notBefore.getTime()));
  const caTo = Math.max(...ca.map((w) => w.notAfter.getTime()));
  return {
    notBefore: new Date(Math.max(claim.notBefore.getTime(), caFrom)),
    notAfter: new Date(Math.min(claim.notAfter.getTime(), caTo)),
    from: "the claim certificate and the root CA",
  };
}

/**
 * A configuration problem (one line naming the dates) when the credentials
 * cannot work whatever the clock reads, else undefined: expired before
 * fleetprov was built, validities that never overlap, or (with a synchronised
 * clock) expired or not yet valid now.
 */
export function credentialProblem(
  credentials: CredentialValidity,
  clock: ClockReading,
  names: { claim: string; ca?: string },
): string | undefined {
  const { claim } = credentials;
  const ca = bundleValidity(credentials.ca);
  const claimProblem = expiryProblem(claim, clock, `The claim certificate ${names.claim}`);
  if (claimProblem) return claimProblem;
  if (ca && names.ca) {
    const caProblem = expiryProblem(ca, clock, `The root CA ${names.ca}`);
    if (caProblem) return caProblem;
    if (claim.notAfter < ca.notBefore || ca.notAfter < claim.notBefore) {
      return `The claim certificate ${names.claim} (${span(claim)}) and the root CA ${names.ca} (${
        span(ca)
      }) are never valid at the same time, so no clock can make TLS work; replace the one that is out of date.`;
    }
  }
  return undefined;
}

/** Why one certificate (or bundle) cannot be used, or undefined. */
function expiryProblem(validity: Validity, clock: ClockReading, what: string): string | undefined {
  const { built, now, synchronised } = clock;
  if (validity.notAfter < built) {
    return `${what} expired on ${iso(validity.notAfter)} (valid ${
      span(validity)
    }), before fleetprov was built (${
      iso(built)
    }): no correct clock is inside it. Replace it with a valid one.`;
  }
  if (!synchronised) return undefined;
  if (now > validity.notAfter) {
    return `${what} expired on ${iso(validity.notAfter)} (valid ${span(validity)}); the clock (${
      iso(now)
    }) is synchronised by NTP. Replace it with a valid one.`;
  }
  if (now < validity.notBefore) {
    return `${what} is not valid yet: valid ${span(validity)}, and the clock (${
      iso(now)
    }) is synchronised by NTP. Replace it with one valid now.`;
  }
  return undefined;
}

/** A time the clock cannot read before, and what makes it so. */
export interface ClockFloor {
  time: Date;
  /** "fleetprov was built", "this board journaled the certificate ...". */
  what: string;
}

/** How to set a clock, for the messages. */
const SET_THE_CLOCK =
  "TLS cannot work until the clock is set: by NTP (systemd-timesyncd: timedatectl set-ntp true, and systemd-time-wait-sync.service so time-sync.target waits for it) or from an RTC (hwclock --hctosys).";

/**
 * A one-line diagnosis when the clock is known wrong (before a floor) or,
 * not synchronised, outside the credentials' window; else undefined (the
 * clock is trusted enough to connect and to judge a journaled token's age).
 */
export function clockProblem(
  clock: ClockReading,
  facts: { window?: ValidityWindow; floors?: ClockFloor[] },
): string | undefined {
  const floors = [{ time: clock.built, what: "fleetprov was built" }, ...facts.floors ?? []];
  const passed = floors.filter((f) => clock.now < f.time)
    .sort((a, b) => b.time.getTime() - a.time.getTime());
  // A synchronised clock is right: a later floor (a journal's time) was the wrong one.
  if (passed.length > 0 && !(clock.synchronised && clock.now >= clock.built)) {
    return `The system clock reads ${iso(clock.now)}, before ${passed[0].what} (${
      iso(passed[0].time)
    }), so it is not set yet. ${SET_THE_CLOCK}`;
  }
  const window = facts.window;
  if (!window || clock.synchronised) return undefined;
  const before = clock.now < window.notBefore;
  if (!before && clock.now <= window.notAfter) return undefined;
  return `The system clock reads ${iso(clock.now)}, ${
    before ? "before" : "after"
  } the validity of ${window.from}; it should read after ${iso(window.notBefore)} and before ${
    iso(window.notAfter)
  }. ${SET_THE_CLOCK}`;
}

/** The validity of a bundle: from its earliest start to its latest end, or undefined when empty. */
function bundleValidity(certificates: Validity[] | undefined): Validity | undefined {
  if (!certificates || certificates.length === 0) return undefined;
  return {
    notBefore: new Date(Math.min(...certificates.map((w) => w.notBefore.getTime()))),
    notAfter: new Date(Math.max(...certificates.map((w) => w.notAfter.getTime()))),
  };
}

function span(validity: Validity): string {
  return `from ${iso(validity.notBefore)} to ${iso(validity.notAfter)}`;
}

/** ISO 8601 to the second. */
export function iso(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}
