// SPDX-License-Identifier: Apache-2.0
/**
 * `fleetprov lint`: before the factory flashes a fleet, checks the config a
 * board will run with (the same file and flags, loaded by the same code)
 * against the claim policy (`--claim-policy FILE`), the provisioning
 * template (`--template FILE`) and the rotation template
 * (`--rotation-template FILE`) it will meet on AWS IoT. Prints what the
 * device will do, then one line per finding naming the statement or key and
 * the fix; with `--output json`, one JSON object. Exit 0 when nothing would
 * fail (warnings aside), 78 otherwise.
 *
 * @module
 */
import { loadSettings, type LoadSettingsOptions, SettingsError } from "../config/mod.ts";
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import {
  type DevicePlan,
  type Finding,
  findingLine,
  lintDevice,
  type PolicyNames,
  type RotationView,
  sortFindings,
} from "../lint/mod.ts";
import { isAccountId } from "../policy/mod.ts";
import { writeStdout } from "../output.ts";
import { VERSION } from "../version.ts";

/** Lint's own flags given once; every other argument is the board's. */
const LINT_FLAGS = [
  "--claim-policy",
  "--template",
  "--rotation-template",
  "--account",
  "--region",
] as const;
type LintFlag = (typeof LINT_FLAGS)[number];
/** Lint's own flags given once per file. */
const REPEATED_FLAGS = ["--policy", "--inventory"] as const;
type RepeatedFlag = (typeof REPEATED_FLAGS)[number];

/** Every flag of lint's own (the board's are a run's). */
export const LINT_OWN_FLAGS: readonly string[] = [...LINT_FLAGS, ...REPEATED_FLAGS];

/** Lint's flags as given. */
interface LintFlags {
  once: Partial<Record<LintFlag, string>>;
  repeated: Record<RepeatedFlag, string[]>;
}

/** Options of {@linkcode runLintCommand}. */
export interface LintCommandOptions extends LoadSettingsOptions {
  /** `--output json`: one JSON object instead of lines. */
  json?: boolean;
  /** Where the report goes (default: stdout). */
  stdout?: (text: string) => void;
}

/** Runs `lint` with `args` (after the word `lint`); returns 0 or 78. */
export async function runLintCommand(
  args: string[],
  options: LintCommandOptions = {},
): Promise<number> {
  const out = options.stdout ?? writeStdout;
  const { json, stdout: _, ...loadOptions } = options;
  const findings: Finding[] = [];
  let plan: DevicePlan | undefined;
  try {
    const { flags, rest } = takeLintFlags(args);
    const settings = await loadBoardSettings(rest, loadOptions);
    const report = lintDevice({
      settings,
      claimPolicy: flags.once["--claim-policy"],
      template: flags.once["--template"],
      rotationTemplate: flags.once["--rotation-template"],
      account: flags.once["--account"],
      region: flags.once["--region"],
      policies: flags.repeated["--policy"],
      inventories: flags.repeated["--inventory"],
    });
    plan = report.plan;
    findings.push(...report.findings);
  } catch (error) {
    if (!(error instanceof FleetprovError)) throw error;
    const lines = error instanceof SettingsError ? error.problems : error.message.split("\n");
    findings.push(
      ...lines.map((message): Finding => ({ severity: "error", source: "config", message })),
    );
  }
  const sorted = sortFindings(findings);
  const code = sorted.some((f) => f.severity === "error") ? ExitCode.Config : ExitCode.Ok;
  if (json) out(`${JSON.stringify(jsonReport(plan, sorted, code))}\n`);
  else out(textReport(plan, sorted, code));
  return code;
}

/**
 * Takes lint's flags (`--flag VALUE` or `--flag=VALUE`; `--policy` and
 * `--inventory` once per file, the others once) out of `args`.
 */
function takeLintFlags(args: string[]): { flags: LintFlags; rest: string[] } {
  const flags: LintFlags = { once: {}, repeated: { "--policy": [], "--inventory": [] } };
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const flag = [...LINT_FLAGS, ...REPEATED_FLAGS].find((f) =>
      arg === f || arg.startsWith(`${f}=`)
    );
    if (!flag) {
      rest.push(arg);
      continue;
    }
    const value = arg === flag ? args[++i] : arg.slice(flag.length + 1);
    if (value === undefined || value === "" || (arg === flag && value.startsWith("--"))) {
      throw new FleetprovError(`${flag} needs a value, e.g. ${example(flag)}.`, ExitCode.Config);
    }
    if (flag === "--policy" || flag === "--inventory") {
      flags.repeated[flag].push(value);
      continue;
    }
    if (flags.once[flag] !== undefined) {
      throw new FleetprovError(`${flag} is given more than once; give it once.`, ExitCode.Config);
    }
    flags.once[flag] = value;
  }
  checkLintFlags(flags);
  return { flags, rest };
}

/** The values of lint's flags, and what needs what. */
function checkLintFlags({ once: flags, repeated }: LintFlags): void {
  if (flags["--account"] !== undefined && !isAccountId(flags["--account"])) {
    throw new FleetprovError(
      `--account ${
        JSON.stringify(flags["--account"].slice(0, 40))
      } is not an AWS account id; give its 12 digits.`,
      ExitCode.Config,
    );
  }
  if (flags["--region"] !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(flags["--region"])) {
    throw new FleetprovError(
      `--region ${
        JSON.stringify(flags["--region"].slice(0, 40))
      } is not an AWS region, e.g. eu-west-1.`,
      ExitCode.Config,
    );
  }
  const templates = flags["--template"] ?? flags["--rotation-template"];
  if (flags["--claim-policy"] === undefined && templates === undefined) {
    throw new FleetprovError(
      "lint needs something to check: give --claim-policy FILE, --template FILE, --rotation-template FILE, or several",
      ExitCode.Config,
    );
  }
  for (const flag of REPEATED_FLAGS) {
    if (repeated[flag].length > 0 && templates === undefined) {
      throw new FleetprovError(
        `${flag} tells lint about what the templates name: give --template FILE (or --rotation-template FILE) with it.`,
        ExitCode.Config,
      );
    }
  }
}

function example(flag: LintFlag | RepeatedFlag): string {
  return {
    "--claim-policy": "--claim-policy claim-policy.json",
    "--template": "--template template.json",
    "--rotation-template": "--rotation-template rotation-template.json",
    "--account": "--account 123456789012",
    "--region": "--region eu-west-1",
    "--policy": "--policy device-policy.json (aws iot get-policy output) or --policy NAME=FILE",
    "--inventory": "--inventory thing-groups.json (aws iot list-thing-groups output)",
  }[flag];
}

/** The board's settings, as the board would load them, without the files only the board has. */
function loadBoardSettings(args: string[], options: LoadSettingsOptions): Promise<Settings> {
  return loadSettings(args, { ...options, forLint: true });
}

/** One line about the device, the findings, and a summary. */
function textReport(plan: DevicePlan | undefined, findings: Finding[], code: number): string {
  const lines: string[] = [];
  if (plan) {
    lines.push(`fleetprov lint: ${describeDevice(plan)}`);
    lines.push(`fleetprov lint: ${describeRotation(plan)}`);
  }
  lines.push(...findings.map(findingLine));
  const errors = findings.filter((f) => f.severity === "error").length;
  const warnings = findings.length - errors;
  const count = `${errors} error${errors === 1 ? "" : "s"}, ${warnings} warning${
    warnings === 1 ? "" : "s"
  }`;
  lines.push(
    code === ExitCode.Ok
      ? `fleetprov lint: ${count}: nothing would stop a board with this config from provisioning${
        plan?.rotation ? " or rotating" : ""
      }.`
      : `fleetprov lint: ${count}${whereItFails(findings)} (exit ${code}).`,
  );
  return lines.map((line) => `${line}\n`).join("");
}

/**
 * ": AWS refuses the template at …", ": a board with this config fails at
 * step X", ": … provisions, but fleetprov rotate fails at step X", or "".
 */
function whereItFails(findings: Finding[]): string {
  const errors = findings.filter((f) => f.severity === "error" && f.step !== undefined);
  const provisioning = errors.filter((f) => f.phase !== "rotation");
  const refused = errors.find((f) => f.step === "CreateProvisioningTemplate");
  if (refused) {
    return `: AWS refuses the ${
      refused.phase === "rotation" ? "rotation template" : "template"
    } at CreateProvisioningTemplate`;
  }
  if (provisioning.length > 0) {
    return `: a board with this config fails at step ${provisioning[0].step}`;
  }
  return errors.length > 0
    ? `: a board with this config provisions, but fleetprov rotate fails at step ${errors[0].step}`
    : "";
}

/** "client id X, MQTT 3.1.1, JSON, CreateKeysAndCertificate then RegisterThing with template T (…)". */
function describeDevice(plan: DevicePlan): string {
  const client = plan.clientIdDerived
    ? `client id from each board's machine id (checked as ${plan.clientId})`
    : `client id ${plan.clientId}`;
  const where = [
    plan.scope.region ? `region ${plan.scope.region}` : "region unknown (--region)",
    plan.scope.account ? `account ${plan.scope.account}` : "account unknown (--account)",
  ].join(", ");
  return `the device connects as ${client} over MQTT ${plan.mqttVersion} and sends ${plan.payloadFormat.toUpperCase()}: ${plan.createOperation}, then RegisterThing with template ${plan.templateName} and parameters ${
    plan.parameters.join(", ") || "(none)"
  }${
    plan.thingName ? `, which registers thing ${plan.thingName} and connects as it` : ""
  }; ${where}.`;
}

/**
 * "the device rotates as thing T with its certificate: …, checked against
 * …", or why the rotation is not checked.
 */
function describeRotation(plan: DevicePlan): string {
  const rotation = plan.rotation;
  if (!plan.rotationChecked) {
    return "rotation not checked: the config names no rotation template (fleet-provisioning.rotation-template-name) and no --rotation-template is given.";
  }
  if (!rotation) return "the rotation is not checked further (see the errors).";
  const thing = rotation.thingKnown
    ? `thing ${rotation.thingName}`
    : `its thing (checked as ${rotation.thingName}: --template says which)`;
  return `the device rotates as ${thing} with its certificate: ${rotation.createOperation}, then RegisterThing with template ${rotation.templateName} and parameters ${
    rotation.parameters.join(", ")
  }${
    rotation.registersThing
      ? `, which registers thing ${rotation.registersThing} and connects as it`
      : ""
  }; ${rotationChecks(rotation)}.`;
}

/** What the rotation was checked against, and what lint was not given. */
function rotationChecks(rotation: RotationView): string {
  const names = (policies: PolicyNames) =>
    [
      ...policies.checked,
      ...policies.unknown.map((name) => `${name}, not given with --policy`),
    ].join("; ") || "none";
  const device = rotation.devicePolicies;
  const against = !device
    ? "the device certificate's policies are not known (--template: the policies it attaches)"
    : `checked against the device certificate's policies (${names(device)})`;
  const fresh = rotation.newCertificatePolicies;
  return `${against}${
    fresh
      ? `, the new certificate's (${names(fresh)}) against its proof${
        device ? " and the next rotation" : ""
      }`
      : ""
  }${
    rotation.templateChecked
      ? ""
      : "; the rotation template itself is not checked (--rotation-template)"
  }`;
}

function jsonReport(plan: DevicePlan | undefined, findings: Finding[], code: number) {
  return {
    fleetprov: VERSION,
    ok: code === ExitCode.Ok,
    exitCode: code,
    device: plan
      ? {
        clientId: plan.clientId,
        clientIdDerived: plan.clientIdDerived,
        mqttVersion: plan.mqttVersion,
        payloadFormat: plan.payloadFormat,
        createOperation: plan.createOperation,
        templateName: plan.templateName,
        parameters: plan.parameters,
        thingName: plan.thingName ?? null,
        region: plan.scope.region ?? null,
        account: plan.scope.account ?? null,
        actions: plan.actions,
        rotation: plan.rotation ? jsonRotation(plan.rotation) : null,
      }
      : null,
    findings,
  };
}

/** The rotation in the JSON report: what the board does with its certificate, and what was checked. */
function jsonRotation(rotation: RotationView) {
  return {
    thingName: rotation.thingName,
    thingKnown: rotation.thingKnown,
    createOperation: rotation.createOperation,
    templateName: rotation.templateName,
    parameters: rotation.parameters,
    registersThing: rotation.registersThing ?? null,
    templateChecked: rotation.templateChecked,
    devicePolicies: rotation.devicePolicies ?? null,
    newCertificatePolicies: rotation.newCertificatePolicies ?? null,
    actions: rotation.actions,
  };
}
