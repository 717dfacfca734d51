// SPDX-License-Identifier: Apache-2.0
/**
 * A policy against a device's plan: every MQTT action the device will
 * perform, evaluated with the one evaluator (src/policy/) the emulator also
 * uses; each denied one a finding naming the packet, the step, the statement
 * that denies it (or the one that nearly allows it, or that none does) and
 * the statement to add. The fleet-provisioning mistakes are named as such:
 * the JSON topics for a device that sends CBOR, CreateKeysAndCertificate's
 * topics for a device that uses CreateCertificateFromCsr, another template's
 * topics.
 *
 * @module
 */
import {
  type Alternative,
  arnOf,
  type ArnScope,
  evaluate,
  type EvaluationContext,
  explainDenial,
  type ParsedPolicy,
  type PolicyProblem,
} from "../policy/mod.ts";
import type { PlannedAction } from "../provisioning/plan.ts";
import type { Finding, FindingSource } from "./findings.ts";

/** A policy a connection's certificate has, and where lint read it. */
export interface Attached {
  policy: ParsedPolicy;
  source: FindingSource;
  file: string;
}

/** What the policies are checked for: a connection's plan, its MQTT version and settings. */
export interface PolicyCheck {
  /** The policies of the connection's certificate (the claim policy; the device certificate's). */
  policies: readonly Attached[];
  /**
   * Policies of the certificate lint was not given (named, without `--policy`):
   * they could allow what the others do not, so then only a Deny is a finding.
   */
  unknown?: readonly string[];
  /** Where a denial no statement explains is reported: the claim policy, the template that attaches the policies. */
  owner: { source: FindingSource; file: string };
  actions: readonly PlannedAction[];
  context: EvaluationContext;
  /** Region, account and partition the fix statements name. */
  fixScope: ArnScope;
  mqttVersion: "3.1.1" | "5";
  /** The device's payload format, create operation and template, for naming the usual mistakes. */
  device?: {
    format: "json" | "cbor";
    createOperation: string;
    templateName: string;
    /** A rotation's (rotation-template-name, rotation-key-source), not provisioning's. */
    rotation?: boolean;
  };
  /** Whose connection (default the claim's). */
  connection?: Connection;
}

/**
 * A connection lint checks: the claim's; the proof of provisioning's new
 * certificate; a rotation's with the device certificate, and its proof; the
 * next rotation's, with the certificate the rotation template gave.
 */
export type Connection = "claim" | "proof" | "rotation" | "rotation-proof" | "next-rotation";

/** Every finding of a claim policy: its own problems, then each planned action it denies. */
export function checkPolicy(check: PolicyCheck): Finding[] {
  return [
    ...check.policies.flatMap((a) => a.policy.problems.map((p) => problemFinding(p, a))),
    ...checkActions(check),
  ];
}

/**
 * Each planned action the policies deny, once per action and name: the
 * statement that denies it, or that nearly allows it, or that none does, and
 * the statement to add.
 */
export function checkActions(check: PolicyCheck): Finding[] {
  const findings: Finding[] = [];
  const policies = check.policies.map((a) => a.policy);
  const seen = new Set<string>();
  for (const planned of check.actions) {
    const key = `${planned.action} ${planned.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const request = { action: planned.action, name: planned.name };
    const decision = evaluate(policies, request, check.context);
    if (decision.allowed || ((check.unknown?.length ?? 0) > 0 && !decision.deniedBy)) continue;
    const explanation = explainDenial(policies, request, {
      context: check.context,
      alternatives: alternativesOf(planned.name, check),
      fixScope: check.fixScope,
    });
    const connection = check.connection ?? "claim";
    const owner = ownerOf(check, explanation.statement?.policy);
    const names = owner || connection === "claim" ? "" : ` (${policyNames(check)})`;
    findings.push({
      severity: planned.required ? "error" : "warning",
      source: owner?.source ?? check.owner.source,
      file: owner?.file ?? check.owner.file,
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
      resource: arnOf(decision.resource, check.fixScope),
      message: `${what(planned, connection)} needs ${planned.action}, but ${
        explanation.because.replace(/\.$/, "")
      }${names}. ${consequence(planned, { version: check.mqttVersion, connection })}`,
      fix: explanation.fix,
      ...(explanation.add ? { add: explanation.add } : {}),
    });
  }
  return findings;
}

/**
 * The policy a finding is about: the one of the statement explained, else
 * the one named policy lint was given when it is all there is (its file gets
 * the fix); undefined: the template that attaches them.
 */
function ownerOf(check: PolicyCheck, policy: string | undefined): Attached | undefined {
  const named = check.policies.find((a) => a.policy.name === policy);
  if (named) return named;
  const [only, ...others] = check.policies;
  const alone = only && others.length === 0 && (check.unknown ?? []).length === 0;
  return alone && only.source === "policy" ? only : undefined;
}

/** "the policies the template attaches: A, B", and those lint was not given. */
function policyNames(check: PolicyCheck): string {
  const known = check.policies.map((a) => a.policy.name);
  const unknown = (check.unknown ?? []).map((name) => `${name} (not given with --policy)`);
  const template = check.owner.source === "rotation-template" ? "rotation template" : "template";
  return `the policies the ${template} attaches: ${[...known, ...unknown].join(", ")}`;
}

/** A problem of a policy document as a finding of its input. */
export function problemFinding(
  problem: PolicyProblem,
  where: { source: FindingSource; file: string },
): Finding {
  return {
    severity: problem.severity,
    source: where.source,
    file: where.file,
    ...(problem.statement === undefined ? {} : {
      statement: { index: problem.statement, ...(problem.sid ? { sid: problem.sid } : {}) },
    }),
    message: problem.statement === undefined
      ? `the document ${problem.message.replace(/\.$/, "")}`
      : `statement ${problem.statement}${
        problem.sid ? ` (Sid ${JSON.stringify(problem.sid)})` : ""
      } ${problem.message.replace(/\.$/, "")}`,
  };
}

/** Whose packets, in words. */
const WHOSE: Record<Connection, string> = {
  "claim": "the",
  "proof": "the proof",
  "rotation": "the rotation's",
  "rotation-proof": "the rotation's proof",
  "next-rotation":
    "the next rotation's (its certificate has the policies the rotation template attaches)",
};

/** "the SUBSCRIBE at CONNACK to X", "the rotation's CreateCertificateFromCsr request (PUBLISH to X)". */
function what(planned: PlannedAction, connection: Connection): string {
  const whose = WHOSE[connection];
  switch (planned.packet) {
    case "CONNECT":
      if (connection === "claim") return `CONNECT as client id ${planned.name}`;
      return connection === "proof" || connection === "rotation-proof"
        ? `${whose} CONNECT as ${planned.name} with the new certificate`
        : `${whose} CONNECT as thing ${planned.name}`;
    case "SUBSCRIBE":
      return `${whose} SUBSCRIBE at CONNACK to ${planned.name}`;
    case "PUBLISH":
      return `${whose} ${planned.step} request (PUBLISH to ${planned.name})`;
    case "delivery":
      return `${whose} ${planned.step} answer on ${planned.name}`;
  }
}

/** What the board sees when AWS IoT denies it, for its MQTT version, and how a rotation ends. */
function consequence(
  planned: PlannedAction,
  how: { version: "3.1.1" | "5"; connection: Connection },
): string {
  const seen = sees(planned, how.version === "5");
  switch (how.connection) {
    case "claim":
      return seen;
    case "proof":
      return `${seen}; the board has written its runtime config, retries the proof until its deadline and exits 75`;
    case "rotation-proof":
      return `${seen}; fleetprov rotate retries the proof until its deadline and exits 75, the old certificate still active (the next run proves the same new certificate)`;
    default:
      return planned.required ? `${seen}. The old certificate stays active` : seen;
  }
}

/** What the board sees when AWS IoT denies the action. */
function sees(planned: PlannedAction, v5: boolean): string {
  switch (planned.packet) {
    case "CONNECT":
      return v5
        ? "The board gets CONNACK 0x87 Not authorized"
        : "AWS IoT hangs up right after CONNECT, without CONNACK";
    case "SUBSCRIBE":
      return v5
        ? "The board gets SUBACK 0x87 Not authorized"
        : "AWS IoT closes the connection right after it";
    case "PUBLISH":
      return v5
        ? "The board gets PUBACK 0x87 Not authorized"
        : "AWS IoT closes the connection right after it";
    case "delivery":
      return planned.required
        ? "AWS IoT drops the answer without a word and the board times out"
        : "AWS IoT drops a rejection without a word, so the board sees a timeout instead of the reason";
  }
}

/** Names the device might have been confused with: the other format, create operation, template. */
function alternativesOf(name: string, check: PolicyCheck): Alternative[] {
  if (!check.device) return [];
  const { format, createOperation, templateName } = check.device;
  const out: Alternative[] = [];
  const other = format === "json" ? "cbor" : "json";
  const formatSegment = new RegExp(`/${format}(?=/|$)`);
  if (formatSegment.test(name)) {
    out.push({
      name: name.replace(formatSegment, `/${other}`),
      why:
        `the ${other.toUpperCase()} topics, but the device sends ${format.toUpperCase()} (fleet-provisioning.payload-format)`,
    });
  }
  const csr = createOperation === "CreateCertificateFromCsr";
  const from = csr ? "$aws/certificates/create-from-csr/" : "$aws/certificates/create/";
  const to = csr ? "$aws/certificates/create/" : "$aws/certificates/create-from-csr/";
  if (name.startsWith(from)) {
    out.push({ name: to + name.slice(from.length), why: createWhy(csr, check.device.rotation) });
  }
  const prefix = `$aws/provisioning-templates/${templateName}/`;
  if (name.startsWith(prefix)) {
    const setting = check.device.rotation ? "rotation-template-name" : "template-name";
    for (const named of templatesNamedIn(check.policies.map((a) => a.policy))) {
      if (named === templateName) continue;
      out.push({
        name: `$aws/provisioning-templates/${named}/${name.slice(prefix.length)}`,
        why:
          `template ${named}'s topics, but the device asks for template ${templateName} (fleet-provisioning.${setting})`,
      });
    }
  }
  return out;
}

/** Why the other create operation's topics are not the device's. */
function createWhy(csr: boolean, rotation = false): string {
  if (rotation) {
    return csr
      ? "those are CreateKeysAndCertificate's topics, but the rotation uses CreateCertificateFromCsr (fleet-provisioning.rotation-key-source board: a new key made on the board, or the secure element's CSR)"
      : "those are CreateCertificateFromCsr's topics, but the rotation uses CreateKeysAndCertificate (fleet-provisioning.rotation-key-source aws)";
  }
  return csr
    ? "those are CreateKeysAndCertificate's topics, but the device uses CreateCertificateFromCsr (its key is made on the board, or given with csr-file and device-key)"
    : "those are CreateCertificateFromCsr's topics, but the device uses CreateKeysAndCertificate (no generate-key, and no csr-file with device-key)";
}

/** Template names the policies' resources spell out. */
function templatesNamedIn(policies: readonly ParsedPolicy[]): string[] {
  const names = new Set<string>();
  for (const statement of policies.flatMap((p) => p.statements)) {
    for (const resource of statement.resources) {
      const m = /provisioning-templates\/([^/*?$]+)\//.exec(resource);
      if (m) names.add(m[1]);
    }
  }
  return [...names];
}
