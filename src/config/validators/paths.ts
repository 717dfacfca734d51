// SPDX-License-Identifier: Apache-2.0
/**
 * Checks of paths and permissions: locating the optional files (config
 * file, proxy config), and the claim certificate, its key and the root CA:
 * existence, type, modes, owners and contents.
 *
 * @module
 */
import type { KeyObject, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { expandPath } from "../paths.ts";
import { checkFile, type PermissionRule, RULES } from "../permissions.ts";
import type { LoadContext, Located } from "../problems.ts";
import { describe } from "../problems.ts";
import type { ClockReading } from "../../clock/mod.ts";
import { checkValidity, parseRootCa } from "./credentials.ts";

/**
 * The path of an optional file: the flag's (which must exist), else
 * `fallback` when it exists, else undefined. `what` names it in messages.
 */
export function locateFile(
  flag: { name: string; value: string | undefined },
  what: string,
  fallback: string,
  context: LoadContext,
): string | undefined {
  if (flag.value === undefined) return existsSync(fallback) ? fallback : undefined;
  const expanded = expandPath(flag.value, context.expand);
  if (!expanded.ok) {
    context.problems.error(
      `${flag.name} is ${describe(flag.value)}: it ${expanded.reason}.`,
    );
  } else if (!existsSync(expanded.path)) {
    context.problems.error(`${what} ${expanded.path} (from ${flag.name}) does not exist.`);
  } else return expanded.path;
  return undefined;
}

/** Checks a file against a permission rule; returns true when nothing fatal was found. */
export function checkPermissions(
  path: string,
  rule: PermissionRule,
  origin: string,
  context: LoadContext,
): boolean {
  if (context.offline) return true;
  return context.problems.findings(
    checkFile(path, rule, { origin, identity: context.identity, checkedDirs: context.checkedDirs }),
  );
}

/** node:crypto, loaded only where contents are parsed. */
type Crypto = typeof import("node:crypto");

/** The armour of a PEM private key (PKCS#8, PKCS#1, SEC 1). */
const PRIVATE_KEY_ARMOUR = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/**
 * The certificate and key (checked, parsed, and matched with each other) and
 * the root CA (a missing one means the system trust store). Returns the
 * certificate's PEM and the root CA path when they are usable. On a
 * provisioned device (the runtime config's certificate and key) the files are
 * checked as the Device Client checks them (there, mode, owner) and for their
 * PEM armour, not parsed: parsing needs node:crypto, which the
 * already-provisioned boot does without, and the Device Client's next
 * connection reads them anyway.
 */
export async function checkCredentialFiles(
  claim: { cert?: Located; key?: Located; rootCa?: Located },
  options: { provisioned: boolean; clock: ClockReading },
  context: LoadContext,
): Promise<{ certPem?: string; rootCa?: string }> {
  const { cert, key } = claim;
  const problems = context.problems;
  const crypto = options.provisioned ? undefined : await import("node:crypto");
  let certPem: string | undefined;
  let certificate: X509Certificate | undefined;
  if (cert && checkPermissions(cert.path, RULES.certificate, cert.origin, context)) {
    certPem = readPem(cert.path);
    certificate = crypto && certPem ? parseCertificate(crypto, certPem) : undefined;
    if (!certPem?.includes("-----BEGIN CERTIFICATE-----") || (crypto && !certificate)) {
      problems.error(
        `Certificate ${cert.path} (from ${cert.origin}) is not a PEM X.509 certificate.`,
      );
      certPem = undefined;
    }
  }
  let privateKey: KeyObject | undefined;
  if (key && checkPermissions(key.path, RULES.privateKey, key.origin, context)) {
    const pem = readPem(key.path);
    const armoured = pem !== undefined && PRIVATE_KEY_ARMOUR.test(pem);
    privateKey = armoured && crypto ? parseKey(crypto, pem) : undefined;
    if (!armoured || (crypto && !privateKey)) {
      problems.error(
        `Private key ${key.path} (from ${key.origin}) is not an unencrypted PEM private key.`,
      );
    }
  }
  if (certPem && certificate && privateKey && !keyMatches(certificate, privateKey)) {
    problems.error(
      `Private key ${key!.path} does not belong to certificate ${
        cert!.path
      }; give the key made with that certificate.`,
    );
  }
  const rootCa = checkRootCa(claim.rootCa, context);
  if (crypto) {
    // What the run's TLS would parse, and whether any clock can make it work.
    const located = rootCa === undefined ? undefined : claim.rootCa!;
    const cas = located && parseRootCa(crypto, readPem(located.path), located, context);
    if (certificate && (cas || !located)) {
      const ca = cas && { certificates: cas, path: located!.path };
      checkValidity({ certificate, path: cert!.path }, ca, options.clock, context);
    }
  }
  return { certPem, rootCa };
}

function keyMatches(certificate: X509Certificate, privateKey: KeyObject): boolean {
  if (typeof certificate.checkPrivateKey !== "function") return true;
  try {
    return certificate.checkPrivateKey(privateKey);
  } catch {
    return true; // key type not comparable here: the TLS handshake will tell
  }
}

function checkRootCa(rootCa: Located | undefined, context: LoadContext): string | undefined {
  if (!rootCa) return undefined;
  if (!existsSync(rootCa.path)) {
    context.problems.warn(
      `Root CA ${rootCa.path} (from ${rootCa.origin}) does not exist; using the system trust store.`,
    );
    return undefined;
  }
  return checkPermissions(rootCa.path, RULES.rootCa, rootCa.origin, context)
    ? rootCa.path
    : undefined;
}

/** The text of a file, or undefined when it cannot be read. */
export function readPem(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function parseCertificate(crypto: Crypto, pem: string): X509Certificate | undefined {
  try {
    return new crypto.X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function parseKey(crypto: Crypto, pem: string): KeyObject | undefined {
  try {
    return crypto.createPrivateKey({ key: pem, format: "pem" });
  } catch {
    return undefined;
  }
}

/** An unencrypted PEM private key from a file, or undefined. */
export async function parsePrivateKey(path: string): Promise<KeyObject | undefined> {
  const pem = readPem(path);
  if (pem === undefined || !PRIVATE_KEY_ARMOUR.test(pem)) return undefined;
  return parseKey(await import("node:crypto"), pem);
}
