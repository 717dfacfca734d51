// SPDX-License-Identifier: Apache-2.0
/**
 * `--help` text and `--export-default-settings FILE`.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { defaultSettingsJson } from "../config/default_settings.ts";
import { allFlags, type FlagSpec } from "../config/flags.ts";
import { ExitCode, FleetprovError, NO_RESTART_EXIT_CODES } from "../errors.ts";
import { writeFileAtomic } from "../secure_files/mod.ts";
import { DEFAULT_IF_EXPIRES_WITHIN_DAYS, DEFAULT_IF_OLDER_THAN_DAYS } from "../rotation/due.ts";
import { VERSION } from "../version.ts";
import { STATUS_NOT_PROVISIONED } from "./status.ts";

/** Exit codes, as `--help`, the README and the systemd unit document them. */
export const EXIT_CODES: readonly [number, string][] = [
  [ExitCode.Ok, "provisioned, already provisioned, or nothing to do"],
  [ExitCode.Rejected, "rejected by AWS IoT with a final error: fix the template, policy or claim"],
  [ExitCode.Software, "internal error (a bug in fleetprov: please report it); restarted"],
  [ExitCode.CantCreate, "cannot write: read-only file system or path not writable"],
  [ExitCode.IoError, "I/O error on the storage (EIO)"],
  [
    ExitCode.TempFail,
    "temporary: network, timeout, throttling or 5xx past the deadline, clock not yet set, disk full, lock held, stopped by SIGTERM; retry later",
  ],
  [ExitCode.NoPermission, "a file or directory has the wrong mode or owner (or EACCES)"],
  [ExitCode.Config, "configuration, flags or input files are wrong"],
];

const HELP_WIDTH = 100;

/** The `--help` text: usage, subcommands, every flag with its default, exit codes. */
export function helpText(): string {
  const lines: string[] = [
    `fleetprov ${VERSION}: AWS IoT Fleet Provisioning client, a drop-in for the Fleet`,
    "Provisioning feature of the AWS IoT Device Client (same config file, flags and runtime config).",
    "",
    "Usage:",
    "  fleetprov [flags]              provision this device (or do nothing if already provisioned)",
    "  fleetprov rotate [flags] [--if-older-than DAYS] [--if-expires-within DAYS] [--force]",
    "                                 replace the device certificate when it is older than DAYS",
    `                                 (default ${DEFAULT_IF_OLDER_THAN_DAYS}) or expires within DAYS (default ${DEFAULT_IF_EXPIRES_WITHIN_DAYS}); --force: now.`,
    "                                 New key on the board, RegisterThing with",
    "                                 --rotation-template-name, proven by a connection before",
    "                                 the switch; a pending rotation is finished first",
    "  fleetprov status [flags]       who the board is: thing, certificate, key, validity, age,",
    "                                 last rotation, what is pending; read-only. Exit 0",
    `                                 provisioned, ${STATUS_NOT_PROVISIONED} not provisioned, 74/77/78 needs a person`,
    "  fleetprov check [flags]        validate config, files and permissions; print the effective",
    "                                 settings and what a run would do; connect nowhere",
    "  fleetprov lint [flags] [--claim-policy FILE] [--template FILE] [--rotation-template FILE]",
    "                                 (at least one) before flashing: check a board's config (its",
    "                                 flags and file) against its claim policy, template and new",
    "                                 certificate's policies, and its rotation (the rotation",
    "                                 template; its topics against the device certificate's",
    "                                 policies); one line per finding with the fix; exit 0 clean,",
    "                                 78 otherwise. Lint's own:",
    "                                 --claim-policy FILE   AWS IoT policy JSON, or aws iot get-policy",
    "                                 --template FILE       template JSON, or aws iot",
    "                                                       describe-provisioning-template",
    "                                 --rotation-template FILE  the rotation template, the same ways",
    "                                 --policy FILE         a policy a template names: aws iot",
    "                                                       get-policy, or NAME=FILE (repeatable)",
    "                                 --inventory FILE      what exists: aws iot list-policies,",
    "                                                       list-thing-groups, list-thing-types,",
    "                                                       list-billing-groups (repeatable)",
    "                                 --account ID, --region REGION  for the ARNs (the region is",
    "                                                       read from the endpoint's name)",
    "                                 --output json         the findings as one JSON object",
    "  fleetprov emulator [options]   run a local AWS IoT fleet-provisioning endpoint",
    "                                 (fleetprov emulator --help for its options)",
    "  fleetprov --version            version, target, and the Node.js and OpenSSL inside",
    "  fleetprov --third-party-notices",
    "                                 licences of the npm packages and Node.js in this binary",
    "",
    "With --output json [+], a provisioning or rotate run ends with one JSON object on stdout",
    "(outcome, exit code, thing name, certificate id, files, retries, timings, error; rotate: the",
    "old and new certificate ids) and logs to stderr; status prints its report as one object.",
    "",
    "Flags override the config file. A flag may be given once. Flags of other Device Client",
    "features (jobs, tunneling, device defender, pub/sub, shadows, SDK logging) are accepted and",
    "ignored. Paths expand ~ and $VAR. [+] marks fleetprov extensions.",
    "",
  ];
  const shown = allFlags().filter((f) => !f.foreign);
  const left = (f: FlagSpec) =>
    `  ${f.flag}${f.value ? ` ${f.value}` : ""}${f.extension ? " [+]" : ""}`;
  const width = 38;
  lines.push("Flags:");
  for (const f of shown) {
    const text = f.help + (f.default ? ` Default: ${f.default}.` : "");
    const wrapped = wrap(text, HELP_WIDTH - width);
    if (left(f).length + 2 > width) lines.push(left(f));
    else lines.push(left(f).padEnd(width) + wrapped.shift());
    for (const more of wrapped) lines.push(" ".repeat(width) + more);
  }
  lines.push(
    "",
    "Exit codes:",
    ...EXIT_CODES.flatMap(([code, text]) =>
      wrap(text, HELP_WIDTH - 6).map((line, i) =>
        `  ${i === 0 ? String(code).padEnd(4) : "    "}${line}`
      )
    ),
    "",
    `Use RestartPreventExitStatus=${
      NO_RESTART_EXIT_CODES.join(" ")
    } in a systemd unit: those need a person, not a retry.`,
    "",
  );
  return lines.join("\n");
}

/**
 * Writes {@linkcode defaultSettingsJson} to `path` atomically with mode
 * 0640 (the config file mode the permission rules want).
 */
export function exportDefaultSettings(path: string): void {
  const target = resolve(path);
  const dir = dirname(target);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new FleetprovError(
      `--export-default-settings ${path}: directory ${dir} does not exist; create it first.`,
      ExitCode.Config,
    );
  }
  try {
    writeFileAtomic(target, defaultSettingsJson(), { mode: 0o640 });
  } catch (error) {
    throw new FleetprovError(
      `--export-default-settings ${path}: cannot write the file (${
        (error as NodeJS.ErrnoException).code ?? (error as Error).message
      }).`,
      ExitCode.Config,
    );
  }
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  out.push(line);
  return out;
}
