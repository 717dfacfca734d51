// SPDX-License-Identifier: Apache-2.0
/**
 * The provisioning journal: a small file (0600) in the config dir recording
 * each completed step, so a run killed at any point resumes instead of minting
 * another certificate. Written atomically; a damaged journal is ignored.
 *
 * @module
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Settings } from "../config/settings.ts";
import { osFailure } from "../errors.ts";
import { fsyncDirectory, writeFileAtomic } from "../secure_files/mod.ts";

/** File name of the journal inside the config dir. */
export const JOURNAL_FILE = "fleetprov-journal.json";

/** How long an ownership token is trusted after it was issued (1 hour less a margin). */
export const TOKEN_REUSE_WINDOW_MS = 55 * 60 * 1000;

/** Where the device's private key came from. */
export type KeySource = "service" | "device-key" | "generated" | "secure-element";

/** State after CreateKeysAndCertificate / CreateCertificateFromCsr. */
export interface CertificateCreated {
  step: "certificate-created";
  /** Endpoint and template the certificate belongs to; a journal for others is ignored. */
  endpoint: string;
  templateName: string;
  certificateId: string;
  certificatePem: string;
  keySource: KeySource;
  /** PEM private key for keySource "service" and "generated"; stays on the board. */
  privateKeyPem?: string;
  /** Path of the user's device key for keySource "device-key". */
  deviceKeyPath?: string;
  /** Never logged. */
  ownershipToken: string;
  /** When the token was issued (epoch ms). */
  issuedAt: number;
}

/** State after RegisterThing was accepted. */
export interface Registered extends Omit<CertificateCreated, "step"> {
  step: "registered";
  thingName: string;
  deviceConfiguration: Record<string, string>;
}

/**
 * State after the credentials and the runtime config were written, until the
 * new certificate has connected: the proof is pending, and the next start
 * retries it (no new certificate) instead of reporting "already provisioned".
 */
export interface Committed extends Omit<Registered, "step"> {
  step: "committed";
}

/** A journal entry. */
export type JournalEntry = CertificateCreated | Registered | Committed;

/** Path of the journal in a config dir. */
export function journalPath(configDir: string): string {
  return join(configDir, JOURNAL_FILE);
}

/**
 * Reads the journal; returns undefined when absent or damaged. An OS
 * condition (EIO, EACCES) is thrown: ignoring the journal then would mint
 * another certificate.
 */
export function readJournal(configDir: string): JournalEntry | undefined {
  let text: string;
  const path = journalPath(configDir);
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const os = osFailure(error, { path, action: "read" });
    if (os) throw os;
    return undefined;
  }
  try {
    const entry = JSON.parse(text) as JournalEntry;
    if (
      (entry.step === "certificate-created" || entry.step === "registered" ||
        entry.step === "committed") &&
      typeof entry.certificateId === "string" && typeof entry.certificatePem === "string" &&
      typeof entry.ownershipToken === "string" && typeof entry.issuedAt === "number"
    ) {
      return entry;
    }
  } catch {
    // A torn or foreign file: start over.
  }
  return undefined;
}

/** Records a step (atomic write, mode 0600). */
export function writeJournal(configDir: string, entry: JournalEntry): void {
  writeFileAtomic(journalPath(configDir), JSON.stringify(entry), { mode: 0o600 });
}

/** Removes the journal once the runtime config holds the result (nothing to do without one). */
export function clearJournal(configDir: string): void {
  const path = journalPath(configDir);
  if (!existsSync(path)) return;
  rmSync(path, { force: true });
  fsyncDirectory(configDir);
}

/**
 * True when the runtime config says "provisioned" but the journal holds the
 * same certificate at a step before the proof: the new certificate has not
 * connected yet, so the run is not over.
 */
export function proofPending(settings: Settings): boolean {
  if (settings.runtime.status !== "provisioned") return false;
  const entry = readJournal(settings.configDir);
  if (!entry || entry.step === "certificate-created") return false;
  try {
    return readFileSync(settings.runtime.cert, "utf8") === entry.certificatePem;
  } catch {
    return false;
  }
}

/** True while the journal's ownership token may still be used. */
export function tokenStillValid(entry: Pick<JournalEntry, "issuedAt">, now: number): boolean {
  return now - entry.issuedAt < TOKEN_REUSE_WINDOW_MS && now >= entry.issuedAt;
}
