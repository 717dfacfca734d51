// SPDX-License-Identifier: Apache-2.0
/**
 * `fleetprov lint` without its command line: a device's settings, a claim
 * policy, a provisioning template and what is known of the account in; the
 * device's plan (what its claim connection will do, from the provisioning
 * code's own plan, and the thing RegisterThing makes) and every finding out:
 * the claim policy against the claim connection, the template as AWS and
 * RegisterThing judge it, the new certificate's policies against the proof.
 * The rotation template fits the same shape: another plan for
 * {@linkcode lintTemplate}, and the rotation's actions beside the proof's in
 * {@linkcode checkProof}.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import type { Settings } from "../config/settings.ts";
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
import type { Finding } from "./findings.ts";
import { readInput } from "./inputs.ts";
import { checkPolicy } from "./policy_check.ts";
import { fixScopeOf, scopeWarnings } from "./scope.ts";
import { checkProof } from "./proof_check.ts";
import { lintTemplate } from "./template_check.ts";
import { readAccount } from "./account.ts";

export { type Finding, findingLine, sortFindings } from "./findings.ts";
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
}

/** What lint found. */
export interface LintReport {
  plan: DevicePlan;
  findings: Finding[];
}

/** Lints a device's settings against its claim policy and template. */
export function lintDevice(input: LintInput): LintReport {
  const { settings } = input;
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
  if (input.template !== undefined) {
    findings.push(...lintTemplateFile(input.template, { input, plan, sent }));
  }
  return { plan, findings };
}

/** The template, then the new certificate's policies for the proof (and RegisterThing's thing in the plan). */
function lintTemplateFile(
  file: string,
  device: { input: LintInput; plan: DevicePlan; sent: Record<string, string> },
): Finding[] {
  const { input, plan, sent } = device;
  const account = readAccount({
    policies: input.policies ?? [],
    inventories: input.inventories ?? [],
  });
  const read = readInput(file, "template");
  if (!read.ok) return [...account.findings, read.finding];
  const outcome = lintTemplate({
    read: read.read,
    file,
    templateName: plan.templateName,
    sent,
    account: account.view,
  });
  const findings = [...account.findings, ...outcome.findings];
  const thing = outcome.result?.thing;
  if (outcome.result && thing) {
    plan.thingName = thing.thingName;
    findings.push(...checkProof({
      result: { ...outcome.result, thing },
      account: account.view,
      templateFile: file,
      scope: plan.scope,
      mqttVersion: plan.mqttVersion,
    }));
  }
  return findings;
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
    policy,
    source: "claim-policy",
    file,
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
