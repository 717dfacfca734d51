// SPDX-License-Identifier: Apache-2.0
/**
 * `fleetprov lint` without its command line: a device's settings, a claim
 * policy, a provisioning template and what is known of the account in; the
 * device's plan (what its claim connection will do, from the provisioning
 * code's own plan, and the thing RegisterThing makes) and every finding out:
 * the claim policy against the claim connection, the template as AWS and
 * RegisterThing judge it, the new certificate's policies against the proof;
 * and, when the board rotates (`rotation-template-name`, or
 * `--rotation-template`), the rotation's connection against the device
 * certificate's policies and the rotation template the same way
 * (rotation_check.ts).
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import type { SYSTEM_PARAMETER_NAMES } from "../config/system_info.ts";
import {
  type ArnScope,
  type CertificateFacts,
  type ParsedPolicy,
  parsePolicy,
  scopeOfEndpoint,
} from "../policy/mod.ts";
import { certificateFacts } from "../policy/certificate.ts";
import { type ClaimPlan, claimPlan } from "../provisioning/plan.ts";
import { type Finding, findingLine } from "./findings.ts";
import { readInput } from "./inputs.ts";
import { checkPolicy } from "./policy_check.ts";
import { fixScopeOf, scopeWarnings } from "./scope.ts";
import { certificatePolicies, checkProof, policyFindings } from "./proof_check.ts";
import { lintTemplate, SAMPLE_CERTIFICATE_ID } from "./template_check.ts";
import { type AccountView, readAccount } from "./account.ts";
import { lintRotation, type ProvisionedDevice, type RotationView } from "./rotation_check.ts";

export { type Finding, findingLine, sortFindings } from "./findings.ts";
export { type PolicyNames, type RotationView, SAMPLE_THING_NAME } from "./rotation_check.ts";
export { MAX_INPUT_BYTES } from "./inputs.ts";

/** The client id lint checks for a board that derives its own from its machine id. */
export const SAMPLE_CLIENT_ID = "fleetprov-0000000000000000";

/** Example values of the parameters a board collects itself (documentation addresses). */
const SYSTEM_PARAMETER_EXAMPLES: Record<(typeof SYSTEM_PARAMETER_NAMES)[number], string> = {
  DeviceIPAddress: "192.0.2.1",
  DeviceMACAddress: "02:00:00:00:00:01",
  ProvisioningCertSerialNumber: "01",
};

/** What to lint. */
export interface LintInput {
  settings: Settings;
  /** Path of the claim policy (`--claim-policy`). */
  claimPolicy?: string;
  /** Path of the provisioning template (`--template`). */
  template?: string;
  /** Path of the rotation template (`--rotation-template`). */
  rotationTemplate?: string;
  /** `--account`: 12 digits. */
  account?: string;
  /** `--region`, for an endpoint whose name does not say. */
  region?: string;
  /** `--policy`: the policies the template names, with their documents (`FILE` or `NAME=FILE`). */
  policies?: readonly string[];
  /** `--inventory`: the AWS CLI's listings of what exists in the account. */
  inventories?: readonly string[];
}

/** The device as lint saw it. */
export interface DevicePlan extends ClaimPlan {
  clientIdDerived: boolean;
  mqttVersion: "3.1.1" | "5";
  payloadFormat: "json" | "cbor";
  templateName: string;
  /** The parameters RegisterThing carries. */
  parameters: string[];
  scope: ArnScope;
  /** The thing RegisterThing registers for these parameters, when the template says. */
  thingName?: string;
  /** The rotation, when the board rotates (the config names a rotation template, or `--rotation-template`). */
  rotation?: RotationView;
  /** Whether the rotation is checked at all. */
  rotationChecked: boolean;
}

/** What lint found. */
export interface LintReport {
  plan: DevicePlan;
  findings: Finding[];
}

/** Lints a device's settings against its claim policy and template. */
export function lintDevice(input: LintInput): LintReport {
  const { settings } = input;
  if (settings.fleetProvisioning.templateName === "") {
    // Only a config with fleet provisioning disabled loads without one: it has no topics to check.
    throw new FleetprovError(
      "lint needs the board's template name: set fleet-provisioning.template-name (--fleet-provisioning-template-name) and fleet-provisioning.enabled true (--enable-fleet-provisioning true)",
      ExitCode.Config,
    );
  }
  const derived = settings.clientIdDerived === true;
  const clientId = derived ? SAMPLE_CLIENT_ID : settings.clientId;
  const scope: ArnScope = {
    ...scopeOfEndpoint(settings.endpoint),
    ...(input.region === undefined ? {} : { region: input.region }),
    ...(input.account === undefined ? {} : { account: input.account }),
  };
  const sent = sentParameters(settings);
  const plan: DevicePlan = {
    ...claimPlan(settings, clientId),
    clientIdDerived: derived,
    mqttVersion: settings.mqttVersion,
    payloadFormat: settings.payloadFormat,
    templateName: settings.fleetProvisioning.templateName,
    parameters: Object.keys(sent),
    scope,
    rotationChecked: false,
  };
  const findings: Finding[] = [];
  if (!settings.fleetProvisioning.enabled) {
    findings.push({
      severity: "error",
      source: "config",
      ...(settings.configFile ? { file: settings.configFile } : {}),
      message: "fleet provisioning is disabled: a board with this config never provisions",
      fix: "set fleet-provisioning.enabled to true (--enable-fleet-provisioning true)",
    });
  }
  if (input.claimPolicy !== undefined) {
    findings.push(...lintClaimPolicy(input.claimPolicy, { settings, plan, scope }));
  }
  const account = readAccount({
    policies: input.policies ?? [],
    inventories: input.inventories ?? [],
  });
  findings.push(...account.findings);
  let device: ProvisionedDevice | undefined;
  if (input.template !== undefined) {
    const linted = lintTemplateFile(input.template, { account: account.view, plan, sent });
    findings.push(...linted.findings);
    device = linted.device;
  }
  if (
    settings.fleetProvisioning.rotationTemplateName !== undefined ||
    input.rotationTemplate !== undefined
  ) {
    const rotation = lintRotation({
      settings,
      ...(input.rotationTemplate === undefined ? {} : { file: input.rotationTemplate }),
      account: account.view,
      scope,
      ...(device ? { device } : {}),
    });
    plan.rotationChecked = true;
    if (rotation.view) plan.rotation = rotation.view;
    findings.push(...rotation.findings);
  }
  return { plan, findings: once(findings) };
}

/** Each finding once: a policy both templates attach has its warnings found twice. */
function once(findings: readonly Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const line = findingLine(f);
    if (seen.has(line)) return false;
    seen.add(line);
    return true;
  });
}

/**
 * The template, then the new certificate's policies for the proof (and
 * RegisterThing's thing in the plan); the board as provisioning leaves it,
 * when the template gets that far.
 */
function lintTemplateFile(
  file: string,
  device: { account: AccountView; plan: DevicePlan; sent: Record<string, string> },
): { findings: Finding[]; device?: ProvisionedDevice } {
  const { account, plan, sent } = device;
  const read = readInput(file, "template");
  if (!read.ok) return { findings: [read.finding] };
  const outcome = lintTemplate({
    read: read.read,
    file,
    templateName: plan.templateName,
    sent,
    account,
  });
  const findings = [...outcome.findings];
  const thing = outcome.result?.thing;
  if (!outcome.result || !thing) return { findings };
  plan.thingName = thing.thingName;
  const policies = certificatePolicies(outcome.result, {
    account,
    owner: { source: "template", file },
  });
  findings.push(...policyFindings(policies, plan.scope));
  findings.push(...checkProof({
    thingName: thing.thingName,
    policies,
    scope: plan.scope,
    mqttVersion: plan.mqttVersion,
    certificateId: SAMPLE_CERTIFICATE_ID,
  }));
  return {
    findings,
    device: { thingName: thing.thingName, policies, resources: outcome.result.policies },
  };
}

function lintClaimPolicy(
  file: string,
  device: { settings: Settings; plan: DevicePlan; scope: ArnScope },
): Finding[] {
  const read = readInput(file, "claim-policy");
  if (!read.ok) return [read.finding];
  const policy = parsePolicy(read.read.document, file);
  const { settings, plan, scope } = device;
  const certificate = policyUsesCertificate(policy) ? claimFacts(settings) : undefined;
  const findings = checkPolicy({
    policies: [{ policy, source: "claim-policy", file }],
    owner: { source: "claim-policy", file },
    actions: plan.actions,
    context: {
      variables: {
        clientId: plan.clientId,
        ...(certificate?.facts ? { certificate: certificate.facts } : {}),
      },
      scope,
    },
    fixScope: fixScopeOf(policy, scope),
    mqttVersion: settings.mqttVersion,
    device: {
      format: settings.payloadFormat,
      createOperation: plan.createOperation,
      templateName: plan.templateName,
    },
  });
  if (certificate?.problem) {
    findings.push({
      severity: "warning",
      source: "claim-policy",
      file,
      message: certificate.problem,
    });
  }
  return [...findings, ...scopeWarnings(policy, scope)];
}

/** The parameters RegisterThing carries: the config's, and what the board collects itself. */
function sentParameters(settings: Settings): Record<string, string> {
  const fp = settings.fleetProvisioning;
  const system = fp.collectSystemInformation ? SYSTEM_PARAMETER_EXAMPLES : {};
  return { ...system, ...fp.templateParameters };
}

function policyUsesCertificate(policy: ParsedPolicy): boolean {
  return policy.statements.some((s) => s.resources.some((r) => /\$\{iot:Certificate/.test(r)));
}

/** The claim certificate's policy variables, when its file is on this machine. */
function claimFacts(settings: Settings): { facts?: CertificateFacts; problem?: string } {
  const why = (reason: string) => ({
    problem:
      `the policy uses certificate variables (\${iot:Certificate...}), and the claim certificate ${settings.cert} ${reason}: they were counted as matching nothing`,
  });
  if (!existsSync(settings.cert)) return why("is not on this machine");
  try {
    return { facts: certificateFacts(readFileSync(settings.cert, "utf8")) };
  } catch {
    return why("cannot be read as a PEM certificate");
  }
}
