// SPDX-License-Identifier: Apache-2.0
/**
 * The new certificate's policies against the proof connection: after
 * RegisterThing the board connects with its new certificate as the thing
 * (client id = thing name, the thing attached, so `${iot:Connection.Thing.*}`
 * resolves), and AWS IoT checks iot:Connect against every policy the template
 * attached: its inline `PolicyDocument`s and the policies it names (their
 * documents from `--policy`). Evaluated with the one evaluator (src/policy/)
 * the emulator uses at that CONNECT. A policy lint was not given cannot be
 * judged: then only an explicit Deny of a known one is a finding (the
 * template's findings already say which policy lint could not see). The
 * rotation's actions (issue "rotation") are planned beside the proof.
 *
 * @module
 */
import {
  arnOf,
  type ArnScope,
  type CertificateFacts,
  evaluate,
  type EvaluationContext,
  explainDenial,
  type ParsedPolicy,
  parsePolicy,
} from "../policy/mod.ts";
import { type PlannedAction, proofPlan } from "../provisioning/plan.ts";
import type { TemplateResult } from "../template/mod.ts";
import type { AccountView } from "./account.ts";
import type { Finding, FindingSource } from "./findings.ts";
import { problemFinding } from "./policy_check.ts";
import { fixScopeOf, scopeWarnings } from "./scope.ts";
import { SAMPLE_CERTIFICATE_ID } from "./template_check.ts";

/**
 * The certificate variables of a certificate AWS IoT issues (CreateKeysAndCertificate:
 * subject CN=AWS IoT Certificate, as the emulator issues them); its issuer is not modelled.
 */
const ISSUED_CERTIFICATE: CertificateFacts = {
  id: SAMPLE_CERTIFICATE_ID,
  subject: { CommonName: "AWS IoT Certificate" },
  issuer: {},
};

/** What the proof is checked against. */
export interface ProofCheck {
  /** RegisterThing's result for this device (with its thing). */
  result: TemplateResult & { thing: NonNullable<TemplateResult["thing"]> };
  account: AccountView;
  /** The template's file, for inline documents and for what none of the policies allows. */
  templateFile: string;
  scope: ArnScope;
  mqttVersion: "3.1.1" | "5";
}

/** A policy the new certificate gets, where lint read it. */
interface Attached {
  policy: ParsedPolicy;
  source: FindingSource;
  file: string;
}

/** Every finding of the new certificate's policies for the proof connection. */
export function checkProof(check: ProofCheck): Finding[] {
  const { result, templateFile } = check;
  const thingName = result.thing.thingName;
  if (result.policies.length === 0) return [noPolicy(thingName, templateFile)];
  const attached: Attached[] = [];
  const unknown: string[] = [];
  result.policies.forEach((resource, i) => {
    if ("policyDocument" in resource) {
      const name = `the template's PolicyDocument #${i + 1}`;
      const policy = parsePolicy(resource.policyDocument, name);
      attached.push({ policy, source: "template", file: templateFile });
      return;
    }
    const given = check.account.policies.get(resource.policyName);
    if (!given) return void unknown.push(resource.policyName);
    const policy = parsePolicy(given.document, resource.policyName);
    attached.push({ policy, source: "policy", file: given.file });
  });
  const findings = attached.flatMap(({ policy, source, file }) => [
    // An inline document's errors are RegisterThing's, found already.
    ...policy.problems.filter((p) => source === "policy" || p.severity === "warning")
      .map((p) => problemFinding(p, { source, file })),
    ...scopeWarnings(policy, check.scope, { source, file }),
  ]);
  for (const planned of proofPlan(thingName)) {
    const denied = deniedAction(planned, { ...check, attached, unknown });
    if (denied) findings.push(denied);
  }
  return findings;
}

/** The finding of one planned action the attached policies deny, if they do. */
function deniedAction(
  planned: PlannedAction,
  check: ProofCheck & { attached: Attached[]; unknown: string[] },
): Finding | undefined {
  const policies = check.attached.map((a) => a.policy);
  const request = { action: planned.action, name: planned.name };
  const context: EvaluationContext = {
    variables: { clientId: planned.name, thingName: planned.name, certificate: ISSUED_CERTIFICATE },
    scope: check.scope,
  };
  const decision = evaluate(policies, request, context);
  if (decision.allowed || (check.unknown.length > 0 && !decision.deniedBy)) return undefined;
  const merged: ParsedPolicy = {
    name: "the new certificate's policies",
    statements: policies.flatMap((p) => p.statements),
    problems: [],
  };
  const fixScope = fixScopeOf(merged, check.scope);
  const explanation = explainDenial(policies, request, { context, fixScope });
  const owner = check.attached.find((a) => a.policy.name === explanation.statement?.policy);
  return {
    severity: "error",
    source: owner?.source ?? "template",
    file: owner?.file ?? check.templateFile,
    ...(explanation.statement
      ? {
        statement: {
          index: explanation.statement.index,
          ...(explanation.statement.sid ? { sid: explanation.statement.sid } : {}),
        },
      }
      : {}),
    step: planned.step,
    packet: planned.packet,
    action: planned.action,
    name: planned.name,
    resource: arnOf(decision.resource, fixScope),
    message:
      `the proof CONNECT as ${planned.name} with the new certificate needs ${planned.action}, but ${
        explanation.because.replace(/\.$/, "")
      }${owner ? "" : ` (the policies the template attaches: ${policyNames(check)})`}. ${
        refusedProof(check.mqttVersion)
      }`,
    fix: explanation.fix,
    ...(explanation.add ? { add: explanation.add } : {}),
  };
}

function policyNames(check: ProofCheck & { attached: Attached[] }): string {
  return check.attached.map((a) => a.policy.name).join(", ");
}

/** What the board sees when AWS IoT refuses the proof, and how the run ends. */
function refusedProof(version: "3.1.1" | "5"): string {
  return `${
    version === "5"
      ? "The board gets CONNACK 0x87 Not authorized"
      : "AWS IoT hangs up right after CONNECT, without CONNACK"
  }; the board has written its runtime config, retries the proof until its deadline and exits 75`;
}

/** A template that attaches no policy: the new certificate may do nothing. */
function noPolicy(thingName: string, file: string): Finding {
  return {
    severity: "error",
    source: "template",
    file,
    path: "$.Resources",
    step: "proof",
    packet: "CONNECT",
    action: "iot:Connect",
    name: thingName,
    message:
      `attaches no AWS::IoT::Policy to the new certificate, and a certificate without a policy may do nothing: AWS IoT refuses the proof CONNECT as ${thingName}, and the board retries the proof until its deadline and exits 75`,
    fix:
      'add a policy resource, e.g. "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "DevicePolicy"}} with iot:Connect on client/${iot:Connection.Thing.ThingName}',
  };
}
