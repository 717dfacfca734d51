// SPDX-License-Identifier: Apache-2.0
/**
 * Who the board is, from what is on its disk: the runtime config, the
 * certificate it names, the journals of provisioning and rotation, the claim
 * certificate. Read-only: it never connects and never writes (no lock, no
 * log file, no journal cleanup). Ages and expiries are judged by a clock
 * that is plausible by the rule a rotation uses (src/clock/mod.ts); a board
 * without an RTC whose clock is not set yet gets none (null) and the reason.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { clockProblem, iso, readClock } from "../clock/mod.ts";
import type { Settings } from "../config/settings.ts";
import { readPem } from "../config/validators/paths.ts";
import { credentialWindow } from "../provisioning/clock.ts";
import { proofPending, readJournal } from "../provisioning/journal.ts";
import { DEFAULT_DUE_POLICY, rotationDue } from "../rotation/due.ts";
import {
  type CurrentIdentity,
  currentIdentity,
  DAY_MS,
  parseCertificate,
} from "../rotation/identity.ts";
import { readRotationJournal } from "../rotation/journal.ts";
import { provisionedAt } from "../rotation/resume.ts";

/** Where the device certificate's private key is. */
export type KeyLocation =
  | { location: "file"; path: string }
  | { location: "pkcs11"; token: string | null; slot: number | null; label: string | null };

/** Something in progress that a later run finishes. */
export interface Pending {
  /** `provisioning`: its proof or its steps; `rotation`: a new certificate not switched to yet. */
  kind: "provisioning" | "rotation";
  /** The journal's step. */
  step: string;
  /** The certificate the journal holds (the new one). */
  certificateId: string;
}

/** The board's status. */
export interface BoardStatus {
  provisioned: boolean;
  /** Why not, when not provisioned. */
  reason: string | null;
  thingName: string | null;
  certificate: {
    id: string;
    path: string;
    notBefore: string;
    notAfter: string;
    /** Null while the clock is not plausible (see `clock`). */
    ageDays: number | null;
    expiresInDays: number | null;
    /** By Device Defender's default thresholds (what `fleetprov rotate` uses without flags). */
    rotationDue: boolean | null;
  } | null;
  privateKey: KeyLocation | null;
  provisionedAt: string | null;
  lastRotation: { at: string; oldCertificateId: string; newCertificateId: string } | null;
  pending: Pending | null;
  claimCertificate: { path: string; notAfter: string | null; expiresInDays: number | null } | null;
  runtimeConfig: string;
  /** The clock the ages are judged by; `problem` says why it is not plausible (then no age). */
  clock: { now: string; synchronised: boolean; problem: string | null };
}

/** What {@linkcode boardStatus} reads the clock from (tests move both). */
export interface StatusClock {
  now: Date;
  /** systemd-timesyncd's flag file (default: src/clock/mod.ts's TIMESYNC_FLAG). */
  timesyncFlag?: string;
}

/** The status of the board `settings` describe, by the clock `at`. */
export function boardStatus(settings: Settings, at: StatusClock): BoardStatus {
  const runtime = settings.runtime;
  const identity = proofPending(settings) ? undefined : currentIdentity(settings);
  const clock = judgeClock(settings, identity, at);
  // A clock that is not plausible (no RTC, not set yet) ages nothing: no age, no expiry.
  const now = clock.problem === null ? at.now : undefined;
  const base = {
    claimCertificate: claimCertificate(settings.claimCert, now),
    runtimeConfig: settings.runtimeConfigPath,
    pending: pendingWork(settings),
    clock,
  };
  if (!identity || runtime.status !== "provisioned") {
    return {
      provisioned: false,
      reason: runtime.status === "absent"
        ? `${settings.runtimeConfigPath} does not exist.`
        : runtime.status === "not-provisioned"
        ? runtime.reason
        : "provisioning's new certificate has not connected yet (fleetprov proves it at the next run).",
      thingName: runtime.status === "provisioned" ? runtime.thingName : null,
      certificate: null,
      privateKey: null,
      provisionedAt: null,
      lastRotation: null,
      ...base,
    };
  }
  return {
    provisioned: true,
    reason: null,
    thingName: identity.thingName,
    certificate: {
      id: identity.certificateId,
      path: identity.certPath,
      notBefore: identity.notBefore.toISOString(),
      notAfter: identity.notAfter.toISOString(),
      ageDays: now ? Math.floor((now.getTime() - identity.notBefore.getTime()) / DAY_MS) : null,
      expiresInDays: now
        ? Math.floor((identity.notAfter.getTime() - now.getTime()) / DAY_MS)
        : null,
      rotationDue: now ? rotationDue(identity, { policy: DEFAULT_DUE_POLICY, now }).due : null,
    },
    privateKey: keyLocation(settings, identity.keyPath),
    provisionedAt: new Date(provisionedAt(settings.configDir, identity)).toISOString(),
    lastRotation: lastRotation(settings.configDir, identity.certificateId),
    ...base,
  };
}

/**
 * The clock as a rotation judges it: after fleetprov's build time and, until
 * NTP has synchronised it, inside the validity of the device certificate and
 * the root CA (a certificate AWS IoT issued has a notBefore that has passed).
 */
function judgeClock(
  settings: Settings,
  identity: CurrentIdentity | undefined,
  at: StatusClock,
): BoardStatus["clock"] {
  const reading = readClock({ now: at.now.getTime(), timesyncFlag: at.timesyncFlag });
  const window = identity &&
    credentialWindow(
      identity.certificatePem,
      settings.rootCa === undefined ? undefined : readPem(settings.rootCa),
    );
  const problem = clockProblem(reading, {
    window: window &&
      { ...window, from: `the device certificate${settings.rootCa ? " and the root CA" : ""}` },
  });
  return { now: iso(reading.now), synchronised: reading.synchronised, problem: problem ?? null };
}

/** A file's text, or undefined when it is not set or cannot be read (a run names that problem). */
function keyLocation(settings: Settings, keyPath: string): KeyLocation {
  const se = settings.secureElement;
  if (keyPath === "" && se.enabled) {
    return {
      location: "pkcs11",
      token: se.tokenLabel ?? null,
      slot: se.slotId ?? null,
      label: se.keyLabel ?? null,
    };
  }
  return { location: "file", path: keyPath };
}

/** The rotation that made the current certificate, if the journal recorded it. */
function lastRotation(configDir: string, certificateId: string): BoardStatus["lastRotation"] {
  const record = readRotationJournal(configDir);
  if (record?.step !== "done" || record.certificateId !== certificateId) return null;
  return {
    at: new Date(record.rotatedAt).toISOString(),
    oldCertificateId: record.replaces.certificateId,
    newCertificateId: record.certificateId,
  };
}

/** A provisioning or rotation the journals hold, still to finish. */
function pendingWork(settings: Settings): Pending | null {
  // Once provisioned and proven, a provisioning journal left behind is stale: the next run drops it.
  const stale = settings.runtime.status === "provisioned" && !proofPending(settings);
  const provisioning = stale ? undefined : readJournal(settings.configDir);
  if (provisioning) {
    return {
      kind: "provisioning",
      step: provisioning.step,
      certificateId: provisioning.certificateId,
    };
  }
  const rotation = readRotationJournal(settings.configDir);
  if (rotation && rotation.step !== "done") {
    return { kind: "rotation", step: rotation.step, certificateId: rotation.certificateId };
  }
  return null;
}

function claimCertificate(
  path: string | undefined,
  now: Date | undefined,
): BoardStatus["claimCertificate"] {
  if (path === undefined) return null;
  try {
    const { notAfter } = parseCertificate(readFileSync(path, "utf8"), path);
    return {
      path,
      notAfter: notAfter.toISOString(),
      expiresInDays: now ? Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS) : null,
    };
  } catch {
    return { path, notAfter: null, expiresInDays: null };
  }
}
