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

/** What the policy is checked for: the device's plan, its MQTT version and settings. */
export interface PolicyCheck {
  policy: ParsedPolicy;
  /** Which of lint's inputs it is, and its file. */
  source: FindingSource;
  file: string;
  actions: readonly PlannedAction[];
  context: EvaluationContext;
  /** Region, account and partition the fix statements name. */
  fixScope: ArnScope;
  mqttVersion: "3.1.1" | "5";
  /** The device's payload format, create operation and template, for naming the usual mistakes. */
  device: { format: "json" | "cbor"; createOperation: string; templateName: string };
}

/** Every finding of a policy: its own problems, then each planned action it denies. */
export function checkPolicy(check: PolicyCheck): Finding[] {
  const findings = check.policy.problems.map((p) => problemFinding(p, check));
  const seen = new Set<string>();
  for (const planned of check.actions) {
    const key = `${planned.action} ${planned.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const request = { action: planned.action, name: planned.name };
    const decision = evaluate([check.policy], request, check.context);
    if (decision.allowed) continue;
    const explanation = explainDenial([check.policy], request, {
      context: check.context,
      alternatives: alternativesOf(planned.name, check),
      fixScope: check.fixScope,
    });
    findings.push({
      severity: planned.required ? "error" : "warning",
      source: check.source,
      file: check.file,
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
      message: `${what(planned)} needs ${planned.action}, but ${explanation.because}. ${
        consequence(planned, check.mqttVersion)
      }`,
      fix: explanation.fix,
      ...(explanation.add ? { add: explanation.add } : {}),
    });
  }
  return findings;
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

/** "SUBSCRIBE to X at step subscribe". */
function what(planned: PlannedAction): string {
  switch (planned.packet) {
    case "CONNECT":
      return `CONNECT as client id ${planned.name}`;
    case "SUBSCRIBE":
      return `the SUBSCRIBE at CONNACK to ${planned.name}`;
    case "PUBLISH":
      return `the ${planned.step} request (PUBLISH to ${planned.name})`;
    case "delivery":
      return `the ${planned.step} answer on ${planned.name}`;
  }
}

/** What the board sees when AWS IoT denies it, for its MQTT version. */
function consequence(planned: PlannedAction, version: "3.1.1" | "5"): string {
  const v5 = version === "5";
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
    out.push({
      name: to + name.slice(from.length),
      why: csr
        ? "those are CreateKeysAndCertificate's topics, but the device uses CreateCertificateFromCsr (its key is made on the board, or given with csr-file and device-key)"
        : "those are CreateCertificateFromCsr's topics, but the device uses CreateKeysAndCertificate (no generate-key, and no csr-file with device-key)",
    });
  }
  const prefix = `$aws/provisioning-templates/${templateName}/`;
  if (name.startsWith(prefix)) {
    for (const named of templatesNamedIn(check.policy)) {
      if (named === templateName) continue;
      out.push({
        name: `$aws/provisioning-templates/${named}/${name.slice(prefix.length)}`,
        why:
          `template ${named}'s topics, but the device asks for template ${templateName} (fleet-provisioning.template-name)`,
      });
    }
  }
  return out;
}

/** Template names the policy's resources spell out. */
function templatesNamedIn(policy: ParsedPolicy): string[] {
  const names = new Set<string>();
  for (const statement of policy.statements) {
    for (const resource of statement.resources) {
      const m = /provisioning-templates\/([^/*?$]+)\//.exec(resource);
      if (m) names.add(m[1]);
    }
  }
  return [...names];
}
