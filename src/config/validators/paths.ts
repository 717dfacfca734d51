// SPDX-License-Identifier: Apache-2.0
/**
 * Checks of paths and permissions: locating the optional files (config
 * file, proxy config), and the claim certificate, its key and the root CA:
 * existence, type, modes, owners and contents.
 *
 * @module
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { expandPath } from "../paths.ts";
import { checkFile, type PermissionRule, RULES } from "../permissions.ts";
import type { LoadContext, Located } from "../problems.ts";
import { describe } from "../problems.ts";

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
  return context.problems.findings(
    checkFile(path, rule, { origin, identity: context.identity, checkedDirs: context.checkedDirs }),
  );
}

/**
 * The claim certificate and key (checked, parsed, and matched with each
 * other) and the root CA (a missing one means the system trust store).
 * Returns the certificate's PEM and the root CA path when they are usable.
 */
export function checkCredentialFiles(
  claim: { cert?: Located; key?: Located; rootCa?: Located },
  context: LoadContext,
): { certPem?: string; rootCa?: string } {
  const { cert, key } = claim;
  const problems = context.problems;
  let certPem: string | undefined;
  if (cert && checkPermissions(cert.path, RULES.certificate, cert.origin, context)) {
    certPem = readPem(cert.path);
    if (!parseCertificate(certPem)) {
      problems.error(
        `Certificate ${cert.path} (from ${cert.origin}) is not a PEM X.509 certificate.`,
      );
      certPem = undefined;
    }
  }
  let privateKey: KeyObject | undefined;
  if (key && checkPermissions(key.path, RULES.privateKey, key.origin, context)) {
    privateKey = parsePrivateKey(key.path);
    if (!privateKey) {
      problems.error(
        `Private key ${key.path} (from ${key.origin}) is not an unencrypted PEM private key.`,
      );
    }
  }
  if (certPem && privateKey && !keyMatches(certPem, privateKey)) {
    problems.error(
      `Private key ${key!.path} does not belong to certificate ${
        cert!.path
      }; give the key made with that certificate.`,
    );
  }
  return { certPem, rootCa: checkRootCa(claim.rootCa, context) };
}

function keyMatches(certPem: string, privateKey: KeyObject): boolean {
  const certificate = parseCertificate(certPem);
  if (!certificate || typeof certificate.checkPrivateKey !== "function") return true;
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

function parseCertificate(pem: string | undefined): X509Certificate | undefined {
  if (pem === undefined || !pem.includes("-----BEGIN CERTIFICATE-----")) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/** An unencrypted PEM private key from a file, or undefined. */
export function parsePrivateKey(path: string): KeyObject | undefined {
  const pem = readPem(path);
  if (pem === undefined || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) return undefined;
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch {
    return undefined;
  }
}
