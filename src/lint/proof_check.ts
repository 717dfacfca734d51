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
 * same policies are the device certificate's from then on: a rotation's
 * connection is checked against them (rotation_check.ts).
 *
 * @module
 */
import {
  type ArnScope,
  type CertificateFacts,
  type ParsedPolicy,
  parsePolicy,
} from "../policy/mod.ts";
import { proofPlan } from "../provisioning/plan.ts";
import type { TemplateResult } from "../template/mod.ts";
import type { AccountView } from "./account.ts";
import type { Finding, FindingSource } from "./findings.ts";
import { type Attached, checkActions, problemFinding } from "./policy_check.ts";
import { fixScopeOf, scopeWarnings } from "./scope.ts";

/**
 * The certificate variables of a certificate AWS IoT issues (subject
 * CN=AWS IoT Certificate, as the emulator issues them); its issuer is not
 * modelled.
 */
export function issuedCertificate(id: string): CertificateFacts {
  return { id, subject: { CommonName: "AWS IoT Certificate" }, issuer: {} };
}

/** The policies RegisterThing attaches to a new certificate, as far as lint can read them. */
export interface CertificatePolicies {
  attached: Attached[];
  /** Named policies lint was not given with `--policy`. */
  unknown: string[];
  /** The template that attaches them (a denial no statement explains is reported there). */
  owner: { source: FindingSource; file: string };
}

/** The policies `result` attaches: its inline documents, and the named ones lint was given. */
export function certificatePolicies(
  result: TemplateResult,
  where: { account: AccountView; owner: CertificatePolicies["owner"] },
): CertificatePolicies {
  const { account, owner } = where;
  const attached: Attached[] = [];
  const unknown: string[] = [];
  const whose = owner.source === "rotation-template" ? "the rotation template's" : "the template's";
  result.policies.forEach((resource, i) => {
    if ("policyDocument" in resource) {
      const policy = parsePolicy(resource.policyDocument, `${whose} PolicyDocument #${i + 1}`);
      attached.push({ policy, ...owner });
      return;
    }
    const given = account.policies.get(resource.policyName);
    if (!given) return void unknown.push(resource.policyName);
    const policy = parsePolicy(given.document, resource.policyName);
    attached.push({ policy, source: "policy", file: given.file });
  });
  return { attached, unknown, owner };
}

/** The policies' own problems and the regions or accounts lint cannot check (an inline document's errors are RegisterThing's, found already). */
export function policyFindings(policies: CertificatePolicies, scope: ArnScope): Finding[] {
  return policies.attached.flatMap(({ policy, source, file }) => [
    ...policy.problems.filter((p) => source === "policy" || p.severity === "warning")
      .map((p) => problemFinding(p, { source, file })),
    ...scopeWarnings(policy, scope, { source, file }),
  ]);
}

/** What the proof is checked against. */
export interface ProofCheck {
  /** RegisterThing's thing for this device. */
  thingName: string;
  /** The policies the template attaches to the new certificate. */
  policies: CertificatePolicies;
  scope: ArnScope;
  mqttVersion: "3.1.1" | "5";
  /** The new certificate's id (its `${iot:CertificateId}`). */
  certificateId: string;
  /** The proof of a rotation's certificate, not of provisioning's. */
  rotation?: boolean;
}

/** Every finding of the new certificate's policies for the proof connection. */
export function checkProof(check: ProofCheck): Finding[] {
  const { thingName, policies } = check;
  if (policies.attached.length === 0 && policies.unknown.length === 0) {
    return [noPolicy(thingName, check)];
  }
  return checkActions({
    policies: policies.attached,
    unknown: policies.unknown,
    owner: policies.owner,
    actions: proofPlan(thingName),
    context: {
      variables: {
        clientId: thingName,
        thingName,
        certificate: issuedCertificate(check.certificateId),
      },
      scope: check.scope,
    },
    fixScope: fixScopeOf(merged(policies.attached), check.scope),
    mqttVersion: check.mqttVersion,
    connection: check.rotation ? "rotation-proof" : "proof",
  });
}

/** The attached policies as one, for the region and account their ARNs agree on. */
export function merged(attached: readonly Attached[]): ParsedPolicy {
  return {
    name: "the new certificate's policies",
    statements: attached.flatMap((a) => a.policy.statements),
    problems: [],
  };
}

/** A template that attaches no policy: the new certificate may do nothing. */
function noPolicy(thingName: string, check: ProofCheck): Finding {
  const { source, file } = check.policies.owner;
  return {
    severity: "error",
    source,
    file,
    path: "$.Resources",
    step: "proof",
    packet: "CONNECT",
    action: "iot:Connect",
    name: thingName,
    message:
      `attaches no AWS::IoT::Policy to the new certificate, and a certificate without a policy may do nothing: AWS IoT refuses the proof CONNECT as ${thingName}, and ${
        check.rotation
          ? "fleetprov rotate retries the proof until its deadline and exits 75, the old certificate still active"
          : "the board retries the proof until its deadline and exits 75"
      }`,
    fix:
      'add a policy resource, e.g. "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "DevicePolicy"}} with iot:Connect on client/${iot:Connection.Thing.ThingName}',
  };
}
