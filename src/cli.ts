// SPDX-License-Identifier: Apache-2.0
/**
 * Command dispatch: `fleetprov [flags]` provisions, `fleetprov rotate`
 * replaces the board's certificate when it is due, `fleetprov status` says who
 * the board is (read-only), `fleetprov check` (or `--dry-run`) validates,
 * `fleetprov lint` checks a board's config against its claim policy and
 * template, `fleetprov emulator` runs the local AWS IoT fleet-provisioning
 * emulator. Expected failures print one line each and exit with their
 * documented code; nothing prints a stack trace. With `--output json` a
 * provisioning or rotate run ends with one JSON object on stdout
 * (src/result_line.ts) and logs only to stderr; `status` and `lint` print
 * their report as one JSON object.
 *
 * @module
 */
import process from "node:process";
import { ExitCode, FleetprovError, osFailure } from "./errors.ts";
import { writeStderr, writeStdout } from "./output.ts";
import { newRunReport, resultLine, type RunReport } from "./result_line.ts";
import { escapeControls } from "./text.ts";
import { versionLine } from "./version.ts";

/** `--output`'s values. */
type OutputFormat = "text" | "json";

/**
 * Takes `--output FORMAT` (or `--output=FORMAT`) out of `args`. A missing or
 * unknown value, or the flag twice, is a configuration error.
 */
function takeOutputFlag(args: string[]): { format: OutputFormat; rest: string[] } {
  const rest: string[] = [];
  const values: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--output") values.push(args[++i] ?? "");
    else if (arg.startsWith("--output=")) values.push(arg.slice("--output=".length));
    else rest.push(arg);
  }
  if (values.length > 1) {
    throw new FleetprovError("--output is given more than once; give it once.", ExitCode.Config);
  }
  const value = values[0] ?? "text";
  if (value !== "text" && value !== "json") {
    throw new FleetprovError(
      `--output is ${JSON.stringify(value)}; use --output json (one JSON result line on stdout) ` +
        "or --output text (the default).",
      ExitCode.Config,
    );
  }
  return { format: value, rest };
}

/** Refuses `--output json` on a command that prints no JSON (not a run, status or lint). */
function textOnly(json: boolean, what: string): void {
  if (!json) return;
  throw new FleetprovError(
    `--output json is for provisioning, rotate, status and lint runs; ${what} prints text only: drop --output json.`,
    ExitCode.Config,
  );
}

async function dispatch(args: string[], options: { json: boolean; report: RunReport }) {
  const { json, report } = options;
  if (args.includes("--version")) {
    textOnly(json, "--version");
    writeStdout(`${versionLine()}\n`);
    return ExitCode.Ok;
  }
  if (args[0] === "emulator") {
    const { runEmulatorCommand } = await import("./commands/emulator.ts");
    return await runEmulatorCommand(args.slice(1));
  }
  if (args.includes("--help") || args.includes("-h")) {
    textOnly(json, "--help");
    const { helpText } = await import("./commands/help.ts");
    writeStdout(helpText());
    return ExitCode.Ok;
  }
  if (args[0] === "status") {
    // Its report is its output, in text or as one JSON object; it prints its own failures.
    const { runStatusCommand } = await import("./commands/status.ts");
    return await runStatusCommand(args.slice(1), { json });
  }
  if (args.includes("--third-party-notices")) {
    textOnly(json, "--third-party-notices");
    const { embeddedNotices, FROM_SOURCE_NOTICE } = await import("./notices.ts");
    writeStdout(embeddedNotices() ?? FROM_SOURCE_NOTICE);
    return ExitCode.Ok;
  }
  const exportIndex = args.indexOf("--export-default-settings");
  if (exportIndex >= 0) {
    textOnly(json, "--export-default-settings");
    const path = args[exportIndex + 1];
    if (!path || path.startsWith("--")) {
      throw new FleetprovError(
        "--export-default-settings needs a file path, e.g. --export-default-settings ./fleetprov.conf.",
        ExitCode.Config,
      );
    }
    const { exportDefaultSettings } = await import("./commands/help.ts");
    exportDefaultSettings(path);
    writeStdout(`Wrote the default settings to ${path}.\n`);
    return ExitCode.Ok;
  }
  if (args[0] === "lint") {
    const { runLintCommand } = await import("./commands/lint.ts");
    return await runLintCommand(args.slice(1), { json });
  }
  if (args[0] === "check" || args.includes("--dry-run")) {
    textOnly(json, "check (--dry-run)");
    const { runCheckCommand } = await import("./commands/check.ts");
    return await runCheckCommand(
      args.filter((arg, i) => arg !== "--dry-run" && !(i === 0 && arg === "check")),
    );
  }
  // The report feeds the result line only: without --output json nothing is gathered for it.
  const reporting = {
    report: json ? report : undefined,
    logToStderr: json,
    // SIGTERM ends the process from its handler: the result line goes out first.
    onStop: json
      ? (error: FleetprovError) => writeResultLine(report, error.exitCode, error)
      : undefined,
  };
  if (args[0] === "rotate") {
    const { runRotateCommand } = await import("./commands/rotate.ts");
    return await runRotateCommand(args.slice(1), reporting);
  }
  const { runProvisionCommand } = await import("./commands/provision.ts");
  return await runProvisionCommand(args, reporting);
}

/** Writes the `--output json` line of a run that ended with `code`. */
function writeResultLine(report: RunReport, code: number, error: unknown): void {
  const line = resultLine(report, code, { error, totalMs: performance.now() });
  writeStdout(`${JSON.stringify(line)}\n`);
}

/**
 * Prints a failure (one line per problem, control characters escaped, so a
 * newline inside a path cannot start a line of its own) and returns its exit
 * code. An OS condition (full disk, read-only file system, EACCES, EIO) is
 * never exit 70.
 */
function reportFailure(caught: unknown): number {
  const error = osFailure(caught) ?? caught;
  if (error instanceof FleetprovError) {
    for (const problem of error.problems) {
      writeStderr(`fleetprov: ${escapeControls(problem)}\n`);
    }
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  writeStderr(`fleetprov: internal error (please report it): ${escapeControls(message)}\n`);
  if (process.env.FLEETPROV_DEBUG) writeStderr(`${(error as Error).stack}\n`);
  return ExitCode.Software;
}

/** Runs fleetprov with `args` (argv without the program) and returns the exit code. */
export async function runCli(args: string[]): Promise<number> {
  let format: OutputFormat = "text";
  const report = newRunReport();
  let failure: unknown;
  let code: number;
  let rest = args;
  try {
    // The emulator has flags of its own and never prints a result line.
    if (args[0] !== "emulator") ({ format, rest } = takeOutputFlag(args));
    code = await dispatch(rest, { json: format === "json", report });
  } catch (error) {
    failure = error;
    code = reportFailure(error);
  }
  // lint and status print their own JSON object (findings, the board's status), never a
  // provisioning result line; status never throws, so a failure is dispatch's own.
  const ownOutput = rest[0] === "lint" || (rest[0] === "status" && failure === undefined);
  if (format === "json" && !ownOutput) writeResultLine(report, code, failure);
  return code;
}
