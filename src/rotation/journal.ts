// SPDX-License-Identifier: Apache-2.0
/**
 * The rotation journal, `fleetprov-rotation.json` (0600) in the config dir,
 * beside provisioning's and written the same way (atomically, each completed
 * step): the identity it replaces, then the provisioning journal's steps
 * (certificate created, registered), then "proven" (the new certificate has
 * connected: from here the switch needs no network and any fleetprov run
 * finishes it), then "done", a record of the last rotation without secrets
 * (`fleetprov status` reads it). A damaged file is ignored, as provisioning's.
 *
 * @module
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { osFailure } from "../errors.ts";
import type { CertificateCreated, Registered } from "../provisioning/journal.ts";
import { fsyncDirectory, writeFileAtomic } from "../secure_files/mod.ts";

/** File name of the rotation journal inside the config dir. */
export const ROTATION_JOURNAL_FILE = "fleetprov-rotation.json";

/** The identity a rotation replaces, as the runtime config named it when the rotation began. */
export interface Replaced {
  thingName: string;
  certificateId: string;
  /** When the board was provisioned (epoch ms), carried from rotation to rotation. */
  provisionedAt?: number;
}

/** What every step of a rotation carries besides provisioning's fields. */
interface Rotating {
  replaces: Replaced;
  /** When the rotation began (epoch ms). */
  startedAt: number;
}

/** The new certificate exists (its key with it); not registered yet. */
export type RotationCreated = CertificateCreated & Rotating;

/** RegisterThing accepted the new certificate: it may connect, and the backend may see it. */
export type RotationRegistered = Registered & Rotating;

/** The new certificate connected: the switch to it needs no network. */
export interface RotationProven extends Omit<Registered, "step">, Rotating {
  step: "proven";
  /** When its CONNACK arrived (epoch ms). */
  provenAt: number;
}

/** The last rotation, finished: which certificate replaced which, and when. No secrets. */
export interface RotationDone {
  step: "done";
  thingName: string;
  /** The new certificate, now the active one. */
  certificateId: string;
  replaces: Replaced;
  startedAt: number;
  rotatedAt: number;
}

/** A rotation in progress. */
export type PendingRotation = RotationCreated | RotationRegistered | RotationProven;

/** What the rotation journal holds. */
export type RotationRecord = PendingRotation | RotationDone;

/** Path of the rotation journal in a config dir. */
export function rotationJournalPath(configDir: string): string {
  return join(configDir, ROTATION_JOURNAL_FILE);
}

/**
 * Reads the rotation journal; undefined when absent or damaged. An OS
 * condition (EIO, EACCES) is thrown: ignoring the journal then could mint
 * another certificate or strand a proven one.
 */
export function readRotationJournal(configDir: string): RotationRecord | undefined {
  const path = rotationJournalPath(configDir);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const os = osFailure(error, { path, action: "read" });
    if (os) throw os;
    return undefined;
  }
  try {
    const record = JSON.parse(text) as RotationRecord;
    if (isRecord(record)) return record;
  } catch {
    // A foreign file: ignored.
  }
  return undefined;
}

/** Records a step (atomic write, mode 0600). */
export function writeRotationJournal(configDir: string, record: RotationRecord): void {
  writeFileAtomic(rotationJournalPath(configDir), JSON.stringify(record), { mode: 0o600 });
}

/** Removes the rotation journal (one that belongs to another identity). */
export function clearRotationJournal(configDir: string): void {
  const path = rotationJournalPath(configDir);
  if (!existsSync(path)) return;
  rmSync(path, { force: true });
  fsyncDirectory(configDir);
}

/** A rotation still to finish, or undefined. */
export function pendingRotation(configDir: string): PendingRotation | undefined {
  const record = readRotationJournal(configDir);
  return record && record.step !== "done" ? record : undefined;
}

function isRecord(value: RotationRecord): boolean {
  if (typeof value !== "object" || value === null) return false;
  const replaces = value.replaces as Partial<Replaced> | undefined;
  if (
    typeof replaces?.thingName !== "string" || typeof replaces.certificateId !== "string" ||
    typeof value.certificateId !== "string" || typeof value.startedAt !== "number"
  ) {
    return false;
  }
  switch (value.step) {
    case "done":
      return typeof value.thingName === "string" && typeof value.rotatedAt === "number";
    case "proven":
    case "registered":
      if (typeof value.thingName !== "string") return false;
      // falls through
    case "certificate-created":
      return typeof value.certificatePem === "string" &&
        typeof value.ownershipToken === "string" && typeof value.issuedAt === "number";
    default:
      return false;
  }
}
