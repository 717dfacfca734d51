// SPDX-License-Identifier: Apache-2.0
/**
 * File and directory permission rules of the Device Client (spec §3): modes
 * are compared exactly where a mismatch is fatal, a stricter mode passes where
 * it only warns, and the owner must be the user running fleetprov unless that
 * user is root. Each finding is one line naming the file, the
 * mode found, the mode wanted and the command that fixes it.
 *
 * @module
 */
import { type Stats, statSync } from "node:fs";
import { dirname } from "node:path";
import { userInfo } from "node:os";
import process from "node:process";
import { shellQuote } from "./paths.ts";

/** How a rule violation is treated. */
export type Severity = "fatal" | "warning";

/** The mode (and parent directory mode) a kind of file must have. */
export interface PermissionRule {
  /** What the file is, for messages ("private key"). */
  what: string;
  /** Exact mode of the file, e.g. 0o600. */
  mode: number;
  /** Exact mode of the directory holding it, if the rule has one. */
  dirMode?: number;
  /** Fatal rules stop the run (exit 77); warnings are printed. */
  severity: Severity;
}

/** The rules of spec §3. */
export const RULES = {
  privateKey: { what: "private key", mode: 0o600, dirMode: 0o700, severity: "fatal" },
  certificate: { what: "certificate", mode: 0o644, dirMode: 0o700, severity: "fatal" },
  rootCa: { what: "root CA", mode: 0o644, dirMode: 0o700, severity: "fatal" },
  csr: { what: "CSR", mode: 0o600, dirMode: 0o700, severity: "fatal" },
  pkcs11Lib: { what: "PKCS#11 library", mode: 0o640, dirMode: 0o700, severity: "fatal" },
  configFile: { what: "config file", mode: 0o640, dirMode: 0o745, severity: "warning" },
  runtimeConfig: { what: "runtime config", mode: 0o640, dirMode: 0o745, severity: "warning" },
  proxyConfig: { what: "HTTP proxy config", mode: 0o600, severity: "warning" },
} as const satisfies Record<string, PermissionRule>;

/** One problem found on a file. */
export interface Finding {
  /** "permission": mode or owner (exit 77 when fatal); "config": missing file or wrong type (exit 78). */
  kind: "permission" | "config";
  severity: Severity;
  message: string;
}

/** The identity the rules are checked against. */
export interface Identity {
  uid: number;
  /** Name for the `chown` hint. */
  user: string;
}

/**
 * The identity of this process. The user name (a passwd lookup, through NSS)
 * is looked up only when a message needs it.
 */
export function currentIdentity(): Identity {
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  let user: string | undefined;
  return {
    uid,
    get user(): string {
      if (user === undefined) {
        try {
          user = userInfo().username;
        } catch {
          user = String(uid); // no passwd entry: the uid will do
        }
      }
      return user;
    },
  };
}

/** Formats a mode as octal, three digits (four when special bits are set). */
export function formatMode(mode: number): string {
  const bits = mode & 0o7777;
  return bits > 0o777 ? bits.toString(8).padStart(4, "0") : bits.toString(8).padStart(3, "0");
}

/**
 * Whether `mode` passes `wanted`: exactly its mode where the rule is fatal
 * (the Device Client reads the same files and refuses anything else), and any
 * mode granting no bit beyond it where the rule only warns (0700 for 0745,
 * 0600 for 0640): a stricter mode is not worth a warning.
 */
export function modeSatisfies(mode: number, wanted: { mode: number; severity: Severity }): boolean {
  const bits = mode & 0o7777;
  if (wanted.severity === "warning") return (bits & ~wanted.mode) === 0;
  return bits === wanted.mode;
}

/**
 * The pure rule: does a file or directory with `stats` satisfy `wantedMode`
 * for `identity`? Returns the findings (empty when it does).
 */
export function checkStats(
  path: string,
  stats: Pick<Stats, "mode" | "uid">,
  wanted: { what: string; mode: number; severity: Severity },
  identity: Identity,
): Finding[] {
  const findings: Finding[] = [];
  const Label = wanted.what[0].toUpperCase() + wanted.what.slice(1);
  const found = stats.mode & 0o7777;
  if (!modeSatisfies(found, wanted)) {
    findings.push({
      kind: "permission",
      severity: wanted.severity,
      message: `${Label} ${path} has mode ${formatMode(found)}; it must be ${
        formatMode(wanted.mode)
      }. Fix: chmod ${formatMode(wanted.mode)} ${shellQuote(path)}`,
    });
  }
  if (identity.uid !== 0 && stats.uid !== identity.uid) {
    findings.push({
      kind: "permission",
      severity: wanted.severity,
      message:
        `${Label} ${path} is owned by uid ${stats.uid}, not by uid ${identity.uid} running fleetprov; it must be owned by that user (or fleetprov run as root). Fix: chown ${
          shellQuote(identity.user)
        } ${shellQuote(path)}`,
    });
  }
  return findings;
}

/** Options of {@linkcode checkFile}. */
export interface CheckFileOptions {
  /** Where the path came from, for messages: `--key`, `"key" in /etc/x.conf`. */
  origin: string;
  /** Identity to check ownership against (default: this process). */
  identity?: Identity;
  /** Directories already checked, so each is reported once. */
  checkedDirs?: Set<string>;
}

/**
 * Checks a file against a rule: it must exist and be a regular file, then
 * its mode and owner, and its parent directory's mode and owner. A missing
 * file or a directory is a "config" finding.
 */
export function checkFile(
  path: string,
  rule: PermissionRule,
  options: CheckFileOptions,
): Finding[] {
  const identity = options.identity ?? currentIdentity();
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return [{
      kind: "config",
      severity: "fatal",
      message: code === "ENOENT"
        ? `${capital(rule.what)} ${path} (from ${options.origin}) does not exist.`
        : `${capital(rule.what)} ${path} (from ${options.origin}) cannot be read (${code}).`,
    }];
  }
  if (!stats.isFile()) {
    return [{
      kind: "config",
      severity: "fatal",
      message: `${capital(rule.what)} ${path} (from ${options.origin}) is ${
        stats.isDirectory() ? "a directory" : "not a regular file"
      }; expected a file.`,
    }];
  }
  const findings = checkStats(path, stats, rule, identity);
  if (rule.dirMode !== undefined) {
    findings.push(
      ...checkDirectory(dirname(path), {
        what: `directory of the ${rule.what}`,
        mode: rule.dirMode,
        severity: rule.severity,
      }, { identity, checkedDirs: options.checkedDirs }),
    );
  }
  return findings;
}

/** Checks a directory's mode and owner (once per directory when `checkedDirs` is given). */
export function checkDirectory(
  path: string,
  wanted: { what: string; mode: number; severity: Severity },
  options: { identity?: Identity; checkedDirs?: Set<string> } = {},
): Finding[] {
  const key = `${path}\0${wanted.mode}\0${wanted.severity}`;
  if (options.checkedDirs?.has(key)) return [];
  options.checkedDirs?.add(key);
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (error) {
    return [{
      kind: "config",
      severity: wanted.severity,
      message: `${capital(wanted.what)} ${path} cannot be read (${
        (error as NodeJS.ErrnoException).code
      }).`,
    }];
  }
  return checkStats(path, stats, wanted, options.identity ?? currentIdentity());
}

function capital(text: string): string {
  return text[0].toUpperCase() + text.slice(1);
}
