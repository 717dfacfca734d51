// SPDX-License-Identifier: Apache-2.0
/**
 * `fleetprov check` (also `--dry-run`): load and validate everything, print
 * the effective settings with secrets redacted and what a run would do, and
 * connect nowhere. Exits 0, or with the error and exit code a run would give.
 *
 * @module
 */
import { proofPending } from "../provisioning/journal.ts";
import {
  ignoredNotice,
  loadSettings,
  type LoadSettingsOptions,
  SettingsError,
} from "../config/mod.ts";
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import { writeStderr, writeStdout } from "../output.ts";
import { escapeControls } from "../text.ts";
import { type ClockReading, iso, readClock } from "../clock/mod.ts";

/** Options of {@linkcode runCheckCommand}. */
export interface CheckCommandOptions extends LoadSettingsOptions {
  /** Where the report goes (default: process stdout). */
  stdout?: (text: string) => void;
  /** Where warnings and errors go (default: process stderr). */
  stderr?: (text: string) => void;
}

/** One `fleetprov: ` line of stderr; a newline or control character inside is escaped. */
function line(text: string): string {
  return `fleetprov: ${escapeControls(text)}\n`;
}

/** Shown instead of a secret. */
export const REDACTED = "<redacted>";

/** Runs `check`: returns 0 when a run could start, else the run's exit code. */
export async function runCheckCommand(
  args: string[],
  options: CheckCommandOptions = {},
): Promise<number> {
  const out = options.stdout ?? writeStdout;
  const err = options.stderr ?? writeStderr;
  const { stdout: _o, stderr: _e, ...loadOptions } = options;
  let settings: Settings;
  try {
    settings = await loadSettings(
      args.filter((arg) => arg !== "--dry-run"),
      loadOptions,
    );
  } catch (error) {
    if (!(error instanceof FleetprovError)) throw error;
    if (error instanceof SettingsError) {
      for (const w of error.warnings) err(line(`warning: ${w}`));
      if (error.ignored.length > 0) err(line(ignoredNotice(error.ignored)));
    }
    for (const problem of error.problems) err(line(problem));
    err(
      `fleetprov check: ${error.problems.length} problem(s); a run would exit with code ${error.exitCode}.\n`,
    );
    return error.exitCode;
  }
  for (const w of settings.warnings) err(line(`warning: ${w}`));
  out(describeSettings(settings));
  out(`\nA run would: ${describePlan(settings)}\n`);
  out("Nothing was contacted: check connects nowhere.\n");
  return ExitCode.Ok;
}

/** The effective settings, one per line, secrets redacted, no key material. */
export function describeSettings(settings: Settings): string {
  const fp = settings.fleetProvisioning;
  const se = settings.secureElement;
  const proxy = settings.httpProxy;
  const runtime = settings.runtime;
  const rows: [string, string][] = [
    ["Config file", settings.configFile ?? "none"],
    [
      "Endpoint",
      `${settings.endpoint}:${settings.port}${
        settings.port === 443 ? " (ALPN x-amzn-mqtt-ca)" : ""
      }`,
    ],
    ["Certificate", settings.cert],
    ["Private key", settings.key ?? "none (secure element)"],
    ["Root CA", settings.rootCa ?? "system trust store"],
    ["Thing name", settings.thingName ?? "not set"],
    ["Client id", settings.clientId],
    ["Fleet provisioning", fp.enabled ? "enabled" : "disabled"],
    ["Template name", fp.templateName || "not set"],
    ["Template parameters", JSON.stringify(fp.templateParameters)],
    ["Collect system info", fp.collectSystemInformation ? "yes" : "no"],
    ["CSR file", fp.csrFile ?? "none"],
    ["Device key", fp.deviceKey ?? "none"],
    ["Generate key", fp.generateKey ?? "no"],
    ["Payload format", settings.payloadFormat],
    [
      "Timeouts",
      `step ${seconds(settings.retry.stepTimeoutMs)}, deadline ${
        seconds(settings.retry.deadlineMs)
      }, retry delay ${seconds(settings.retry.baseDelayMs)} to ${
        seconds(settings.retry.maxDelayMs)
      }`,
    ],
    [
      "Secure element",
      se.enabled
        ? `enabled, library ${se.pkcs11Lib ?? "not set"}, PIN ${se.pin ? REDACTED : "not set"}`
        : "disabled",
    ],
    [
      "HTTP proxy",
      proxy === undefined
        ? "none"
        : `${proxy.enabled ? "enabled" : "disabled"} (${proxy.file})${
          proxy.enabled ? `, ${proxy.host}:${proxy.port}, auth ${proxy.authMethod}` : ""
        }${proxy.username ? `, user ${proxy.username}` : ""}${
          proxy.password !== undefined ? `, password ${REDACTED}` : ""
        }`,
    ],
    [
      "Logging",
      `${settings.logging.level} to ${
        settings.logging.type === "FILE" ? settings.logging.file : "stdout/stderr"
      }`,
    ],
    ["Clock", describeClock(readClock())],
    ["Keys directory", settings.keysDir],
    [
      "Runtime config",
      `${settings.runtimeConfigPath} (${
        runtime.status === "absent"
          ? "absent"
          : runtime.status === "provisioned"
          ? `provisioned as ${runtime.thingName}`
          : "not provisioned"
      })`,
    ],
  ];
  if (settings.ignored.length > 0) rows.push(["Ignored", settings.ignored.join(", ")]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return "Effective settings:\n" +
    rows.map(([k, v]) => `  ${(k + ":").padEnd(width)}${escapeControls(v)}\n`).join("");
}

/** What a run with these settings would do, in one sentence. */
export function describePlan(settings: Settings): string {
  const fp = settings.fleetProvisioning;
  if (!fp.enabled) {
    return "nothing: fleet provisioning is disabled (fleet-provisioning.enabled / --enable-fleet-provisioning); exit 0.";
  }
  if (settings.runtime.status === "provisioned" && proofPending(settings)) {
    return `connect with the new certificate as thing ${settings.runtime.thingName} to prove it (the runtime config is written, the journal says the proof is pending); no new certificate.`;
  }
  if (settings.runtime.status === "provisioned") {
    return `nothing: already provisioned as thing ${settings.runtime.thingName} (completed-fp is true in ${settings.runtimeConfigPath}); exit 0.`;
  }
  const connect =
    `connect to ${settings.endpoint}:${settings.port} as client id ${settings.clientId} with the claim certificate`;
  let create: string;
  if (fp.generateKey) {
    create =
      `generate a ${fp.generateKey} key and CSR on the device, CreateCertificateFromCsr (the key never leaves the device)`;
  } else if (fp.csrFile && fp.deviceKey) {
    create =
      `CreateCertificateFromCsr with the CSR ${fp.csrFile} (the key stays at ${fp.deviceKey})`;
  } else {
    create = "CreateKeysAndCertificate (AWS IoT creates the key and certificate)";
  }
  const parameters = Object.keys(fp.templateParameters);
  return `provision: ${connect}, ${create}, RegisterThing with template ${fp.templateName}${
    parameters.length > 0 ? ` and parameters ${parameters.join(", ")}` : ""
  }, write the credentials under ${settings.keysDir} and the runtime config ${settings.runtimeConfigPath}, then connect with the new certificate.`;
}

/** The clock, the floor it must read after, and whether NTP set it (src/clock/mod.ts). */
function describeClock(clock: ClockReading): string {
  return `${iso(clock.now)} (fleetprov built ${iso(clock.built)}; ${
    clock.synchronised ? "synchronised by NTP" : "NTP synchronisation not known"
  })`;
}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}
