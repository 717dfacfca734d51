// SPDX-License-Identifier: Apache-2.0
/**
 * `--output json`: the one JSON object a run prints on stdout when it ends,
 * for provisioning stations and fleet scripts. Logs then go to stderr.
 *
 * The error's `cause` is derived from the thrown error alone (its `kind` when
 * it has one, else the name of its exit code in {@linkcode ExitCode}), so it
 * follows any change of error kinds or exit code numbers.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { ExitCode, FleetprovError } from "./errors.ts";
import { escapeControls, untrusted } from "./text.ts";
import { VERSION } from "./version.ts";

/** How a run ended (`rotated`, `not-due`, `not-provisioned`: `fleetprov rotate`). */
export type Outcome =
  | "provisioned"
  | "already-provisioned"
  | "disabled"
  | "rotated"
  | "not-due"
  | "not-provisioned"
  | "failed";

/** A rotation a run made or finished: the certificate replaced and its successor. */
export interface RotationReport {
  oldCertificateId: string;
  newCertificateId: string;
}

/** The result line's fields (README "Result line for factory stations"). */
export interface ResultLine {
  /** fleetprov's version. */
  fleetprov: string;
  outcome: Outcome;
  /** The process exit code. */
  exitCode: number;
  /** The device's thing name, when known. */
  thingName: string | null;
  /** The device certificate's id (hex SHA-256 of its DER), when known. */
  certificateId: string | null;
  files: {
    certificate: string | null;
    /** `""` when the key lives in a secure element, as in the runtime config. */
    privateKey: string | null;
    runtimeConfig: string | null;
  };
  /** Attempts that failed transiently and were retried. */
  retries: number;
  /** Milliseconds since process start. */
  timings: {
    runtimeConfigWrittenMs: number | null;
    verifiedMs: number | null;
    totalMs: number;
  };
  /**
   * Why the run failed; null on success. `problems` holds each problem (a
   * load of the settings can find several), escaped, one per element;
   * `message` is the same lines joined by newlines, as printed on stderr.
   */
  error: { cause: string; message: string; problems: string[] } | null;
  /**
   * `fleetprov rotate` (and a run that finished a pending rotation): the old
   * and the new certificate ids (the new one null when none replaced the old
   * in this run). Absent from other runs' lines.
   */
  rotation?: { oldCertificateId: string | null; newCertificateId: string | null };
}

/** What a run found out about the device, filled in as it goes. */
export interface RunReport {
  outcome?: Exclude<Outcome, "failed">;
  thingName?: string;
  certificateId?: string;
  certificatePath?: string;
  privateKeyPath?: string;
  runtimeConfigPath?: string;
  retries: number;
  runtimeConfigWrittenMs?: number;
  verifiedMs?: number;
  /** Set by `fleetprov rotate`: the certificate it started from, and the one that replaced it. */
  rotation?: Partial<RotationReport>;
}

/** Longest error message carried, in characters. */
const MAX_MESSAGE = 4000;

/** A fresh, empty report. */
export function newRunReport(): RunReport {
  return { retries: 0 };
}

/**
 * The AWS IoT certificate id (hex SHA-256 of the DER) of the PEM certificate
 * at `path`, or undefined when it cannot be read.
 */
export async function certificateIdOfFile(path: string): Promise<string | undefined> {
  // node:crypto is loaded here, for --output json only: the already-provisioned boot needs none.
  const { createHash, X509Certificate } = await import("node:crypto");
  try {
    const der = new X509Certificate(readFileSync(path)).raw;
    return createHash("sha256").update(der).digest("hex");
  } catch {
    return undefined;
  }
}

/** The problems a failure reports, one line each. */
function problemsOf(error: unknown, exitCode: number): string[] {
  if (error instanceof FleetprovError) return [...error.problems];
  if (error instanceof Error) return [error.message];
  return [error === undefined ? `exit code ${exitCode}` : String(error)];
}

/** The problems, cut to {@linkcode MAX_MESSAGE} characters in all (an ellipsis marks the cut). */
function capped(problems: string[]): string[] {
  const out: string[] = [];
  let left = MAX_MESSAGE;
  for (const problem of problems) {
    if (problem.length > left) {
      out.push(`${problem.slice(0, Math.max(left, 0))}…`);
      break;
    }
    out.push(problem);
    left -= problem.length + 1;
  }
  return out;
}

/** Lower-case, dash-separated: `TempFail` → `temp-fail`. */
function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

/** The cause of a failure: its `kind`, else the name of its exit code. */
export function causeOf(error: unknown, exitCode: number): string {
  const kind = error instanceof FleetprovError ? error.kind : undefined;
  if (typeof kind === "string" && kind !== "") return kind;
  const name = Object.entries(ExitCode).find(([, code]) => code === exitCode)?.[0];
  return name ? kebab(name) : `exit-${exitCode}`;
}

/** The result line of a run that ended with `exitCode` (and `error` when it failed). */
export function resultLine(
  report: RunReport,
  exitCode: number,
  options: { error?: unknown; totalMs: number },
): ResultLine {
  const failed = options.error !== undefined || exitCode !== ExitCode.Ok;
  let error: ResultLine["error"] = null;
  if (failed) {
    const problems = capped(problemsOf(options.error, exitCode).map(escapeControls));
    error = {
      cause: causeOf(options.error, exitCode),
      message: problems.join("\n"),
      problems,
    };
  }
  const round = (ms: number | undefined) => ms === undefined ? null : Math.round(ms);
  return {
    fleetprov: VERSION,
    outcome: failed ? "failed" : report.outcome ?? "provisioned",
    exitCode,
    // Validated by the API checks already; escaped all the same, as all server text.
    thingName: report.thingName === undefined ? null : untrusted(report.thingName),
    certificateId: report.certificateId === undefined ? null : untrusted(report.certificateId),
    files: {
      certificate: report.certificatePath ?? null,
      privateKey: report.privateKeyPath ?? null,
      runtimeConfig: report.runtimeConfigPath ?? null,
    },
    retries: report.retries,
    timings: {
      runtimeConfigWrittenMs: round(report.runtimeConfigWrittenMs),
      verifiedMs: round(report.verifiedMs),
      totalMs: Math.round(options.totalMs),
    },
    error,
    ...(report.rotation === undefined ? {} : {
      rotation: {
        oldCertificateId: report.rotation.oldCertificateId ?? null,
        newCertificateId: report.rotation.newCertificateId ?? null,
      },
    }),
  };
}
