// SPDX-License-Identifier: Apache-2.0
/**
 * `fleetprov status`: who the board is (thing, certificate, key, validity,
 * age, when provisioned, the last rotation, what is pending, the claim
 * certificate's expiry), in text or as one JSON object (`--output json`).
 * Read-only: it loads the settings as a run does, then reads files; it never
 * connects, never takes a lock and never writes, not even a log file.
 *
 * Exit codes: 0 provisioned; {@linkcode STATUS_NOT_PROVISIONED} not (yet)
 * provisioned; what needs a person exits as a run would (78 a config or a
 * runtime config naming a missing file, 77 a file's mode or owner, 74 EIO).
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { CONFIG_DIR_NAME, loadSettings, RUNTIME_CONFIG_FILE_NAME } from "../config/mod.ts";
import { iso, readClock } from "../clock/mod.ts";
import { ExitCode, FleetprovError, osFailure } from "../errors.ts";
import { writeStderr, writeStdout } from "../output.ts";
import { days } from "../rotation/due.ts";
import { readRuntimeConfig } from "../runtime_config/mod.ts";
import { type BoardStatus, boardStatus } from "../status/mod.ts";
import { escapeControls } from "../text.ts";
import { VERSION } from "../version.ts";

/** Exit code of `status` on a board that is not provisioned (as `systemctl status` for "not running"). */
export const STATUS_NOT_PROVISIONED = 3;

/** Options of {@linkcode runStatusCommand}. */
export interface StatusCommandOptions {
  json: boolean;
  env?: Record<string, string | undefined>;
  home?: string;
}

/** What `status --output json` prints: the status, the exit code, the problems found. */
export type StatusReport = BoardStatus & {
  fleetprov: string;
  exitCode: number;
  /** What needs a person, one sentence each (empty when nothing does). */
  problems: string[];
};

/** Runs `fleetprov status`; prints the report and returns the exit code. Never throws. */
export async function runStatusCommand(
  args: string[],
  options: StatusCommandOptions,
): Promise<number> {
  const env = options.env ?? process.env;
  const home = options.home ?? env.HOME ?? "";
  let report: StatusReport;
  try {
    const settings = await loadSettings(args, { env, home: options.home });
    const status = boardStatus(settings, { now: new Date() });
    report = {
      fleetprov: VERSION,
      exitCode: status.provisioned ? ExitCode.Ok : STATUS_NOT_PROVISIONED,
      problems: [],
      ...status,
    };
  } catch (caught) {
    report = failedReport(caught, join(home, CONFIG_DIR_NAME, RUNTIME_CONFIG_FILE_NAME));
  }
  if (options.json) writeStdout(`${JSON.stringify(report)}\n`);
  else writeStdout(statusText(report));
  for (const problem of report.problems) writeStderr(`fleetprov: ${escapeControls(problem)}\n`);
  return report.exitCode;
}

/** The report of a board whose settings or files need a person: what the runtime config says, and why. */
function failedReport(caught: unknown, runtimeConfigPath: string): StatusReport {
  const error = osFailure(caught) ?? caught;
  const problems = error instanceof FleetprovError
    ? [...error.problems]
    : [error instanceof Error ? error.message : String(error)];
  const exitCode = error instanceof FleetprovError ? error.exitCode : ExitCode.Software;
  let runtime: ReturnType<typeof readRuntimeConfig> | undefined;
  try {
    runtime = readRuntimeConfig(runtimeConfigPath, { keyInSecureElement: true });
  } catch {
    runtime = undefined;
  }
  const named = runtime?.status === "provisioned" ? runtime : undefined;
  return {
    fleetprov: VERSION,
    exitCode,
    problems,
    provisioned: false,
    reason: "the settings or the files they name need a person (see problems).",
    thingName: named?.thingName ?? null,
    certificate: null,
    privateKey: null,
    provisionedAt: null,
    lastRotation: null,
    pending: null,
    claimCertificate: null,
    runtimeConfig: runtimeConfigPath,
    clock: clockOnly(),
  };
}

/** The clock, when the settings could not be read: its reading, not judged against any file. */
function clockOnly(): StatusReport["clock"] {
  const reading = readClock();
  return { now: iso(reading.now), synchronised: reading.synchronised, problem: null };
}

/** The report as text, one `Label: value` line each. */
export function statusText(report: StatusReport): string {
  const cert = report.certificate;
  const key = report.privateKey;
  const claim = report.claimCertificate;
  const rows: [string, string][] = [
    [
      "Provisioned",
      report.provisioned ? "yes" : `no (${report.reason ?? "unknown"})`,
    ],
    ["Thing name", report.thingName ?? "none"],
  ];
  if (cert) {
    rows.push(
      ["Certificate id", cert.id],
      ["Certificate", cert.path],
      [
        "Valid",
        `${second(cert.notBefore)} to ${second(cert.notAfter)}${
          cert.expiresInDays === null ? "" : ` (expires in ${days(cert.expiresInDays)})`
        }`,
      ],
      [
        "Age",
        cert.ageDays === null
          ? "unknown until the clock is set (see Clock)"
          : `${days(cert.ageDays)} (rotation ${
            cert.rotationDue ? "due" : "not due"
          } by the defaults: 365 days old or 30 days before expiry)`,
      ],
    );
  }
  if (report.clock.problem) rows.push(["Clock", report.clock.problem]);
  if (key) {
    rows.push([
      "Private key",
      key.location === "file"
        ? `${key.path} (file)`
        : `PKCS#11 token ${key.token ?? `slot ${key.slot ?? "?"}`}, key label ${
          key.label ?? "(none)"
        }`,
    ]);
  }
  if (report.provisioned) {
    rows.push(
      ["Provisioned at", report.provisionedAt ? second(report.provisionedAt) : "unknown"],
      [
        "Last rotation",
        report.lastRotation
          ? `${
            second(report.lastRotation.at)
          } (replaced certificate ${report.lastRotation.oldCertificateId})`
          : "none recorded",
      ],
    );
  }
  rows.push(
    [
      "Pending",
      report.pending
        ? `${report.pending.kind} at step ${report.pending.step} (certificate ${report.pending.certificateId}); the next fleetprov run finishes it`
        : "nothing",
    ],
    [
      "Claim certificate",
      claim
        ? `${claim.path}${
          claim.notAfter
            ? `, expires ${second(claim.notAfter)}${
              claim.expiresInDays === null ? "" : ` (in ${days(claim.expiresInDays)})`
            }`
            : ""
        }`
        : "not set",
    ],
    ["Runtime config", report.runtimeConfig],
  );
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  return rows.map(([label, value]) => `${`${label}:`.padEnd(width)}${escapeControls(value)}\n`)
    .join("");
}

/** An ISO time to the second. */
function second(iso: string): string {
  return iso.replace(/\.\d{3}Z$/, "Z");
}
