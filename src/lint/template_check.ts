// SPDX-License-Identifier: Apache-2.0
/**
 * A provisioning template against what the device sends with RegisterThing
 * (phase 1 of the template half of lint): a template that is not JSON or not
 * an object; the AWS CLI's facts about it (another name than the device asks
 * for, disabled, not a fleet provisioning template); a declared parameter
 * without a `Default` the device does not send; a reference (`Ref`,
 * `Fn::Sub`'s `${Name}`) to a parameter that is neither declared nor sent;
 * and, last, what the template engine (src/template/, the emulator's) makes
 * of the device's parameters. A pre-provisioning hook may supply parameters
 * (`parameterOverrides`): then a missing one is a warning.
 *
 * @module
 */
import { evaluateTemplate, TemplateError } from "../template/mod.ts";
import type { Finding } from "./findings.ts";
import type { ReadDocument } from "./inputs.ts";

/**
 * The parameters AWS IoT fills in RegisterThing itself (the certificate being
 * registered, as the fleet provisioning template example in "Provisioning
 * templates" uses it); the emulator fills the same.
 */
export const AWS_FILLED_PARAMETERS: readonly string[] = ["AWS::IoT::Certificate::Id"];

/** What the template is checked for. */
export interface TemplateCheck {
  read: ReadDocument;
  file: string;
  /** The template the device asks for (fleet-provisioning.template-name). */
  templateName: string;
  /** The parameters the device sends, with their values (placeholders where the board collects them). */
  sent: Record<string, string>;
}

/** Every finding of the template. */
export function checkTemplate(check: TemplateCheck): Finding[] {
  const { read, file } = check;
  const finding = (f: Omit<Finding, "source" | "file">): Finding => ({
    source: "template",
    file,
    ...f,
  });
  const findings = describedFacts(check).map(finding);
  const template = read.document;
  if (!isObject(template)) {
    findings.push(finding({
      severity: "error",
      message:
        "is not a provisioning template: a JSON object with Parameters and Resources is expected",
    }));
    return findings;
  }
  const parameterFindings = missingParameters(template, check).map(finding);
  findings.push(...parameterFindings);
  if (parameterFindings.length === 0) {
    const refusal = engineRefusal(template, check.sent);
    if (refusal) findings.push(finding(refusal));
  }
  return findings;
}

/** What `aws iot describe-provisioning-template` said: name, enabled, type. */
function describedFacts(check: TemplateCheck): Omit<Finding, "source" | "file">[] {
  const facts = check.read.template;
  if (!facts) return [];
  const out: Omit<Finding, "source" | "file">[] = [];
  if (facts.name !== undefined && facts.name !== check.templateName) {
    out.push({
      severity: "error",
      path: "templateName",
      message: `is template ${
        JSON.stringify(facts.name)
      }, but the device asks for ${check.templateName}: RegisterThing fails with 404 ResourceNotFound unless that template exists too`,
      fix:
        `set fleet-provisioning.template-name to ${facts.name}, or lint the template named ${check.templateName}`,
    });
  }
  if (facts.enabled === false) {
    out.push({
      severity: "error",
      path: "enabled",
      message: "is disabled (enabled: false): a disabled template provisions nothing",
      fix: `aws iot update-provisioning-template --template-name ${
        facts.name ?? check.templateName
      } --enabled`,
    });
  }
  if (facts.type !== undefined && facts.type !== "FLEET_PROVISIONING") {
    out.push({
      severity: "error",
      path: "type",
      message:
        `is a ${facts.type} template, not FLEET_PROVISIONING: RegisterThing over MQTT needs a fleet provisioning template`,
      fix: "create the template with --type FLEET_PROVISIONING (the default)",
    });
  }
  return out;
}

/** Declared parameters without a Default, and references to undeclared ones, the device does not send. */
function missingParameters(
  template: Record<string, unknown>,
  check: TemplateCheck,
): Omit<Finding, "source" | "file">[] {
  const hook = check.read.template?.hook === true;
  const provided = (name: string) =>
    Object.hasOwn(check.sent, name) || AWS_FILLED_PARAMETERS.includes(name);
  const sentList = Object.keys(check.sent).join(", ") || "none";
  const severity = hook ? "warning" as const : "error" as const;
  const unlessHook = hook
    ? " unless the pre-provisioning hook's parameterOverrides supplies it"
    : "";
  const out: Omit<Finding, "source" | "file">[] = [];
  const declared = isObject(template.Parameters) ? template.Parameters : {};
  for (const [name, spec] of Object.entries(declared)) {
    if (provided(name) || (isObject(spec) && spec.Default !== undefined)) continue;
    out.push({
      severity,
      path: `Parameters.${name}`,
      message:
        `declares ${name} without a "Default" and the device does not send it (it sends: ${sentList}): RegisterThing is rejected with InvalidParameters${unlessHook}`,
      fix: sendFix(name),
    });
  }
  for (const { name, path } of references(template)) {
    if (provided(name) || Object.hasOwn(declared, name)) continue;
    out.push({
      severity,
      path,
      message:
        `refers to ${name}, which Parameters does not declare and the device does not send (it sends: ${sentList})${unlessHook}`,
      fix: `${sendFix(name)}, and declare it in Parameters`,
    });
  }
  return out;
}

function sendFix(name: string): string {
  return `send it: add ${
    JSON.stringify(name)
  } to fleet-provisioning.template-parameters (--fleet-provisioning-template-parameters), or give Parameters.${name} a "Default"`;
}

/** Every parameter name the template uses (`Ref`, `Fn::Sub` `${Name}`), with where. */
function references(template: Record<string, unknown>): { name: string; path: string }[] {
  const out: { name: string; path: string }[] = [];
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) return node.forEach((item, i) => walk(item, `${path}[${i}]`));
    if (!isObject(node)) return;
    const keys = Object.keys(node);
    if (keys.length === 1 && keys[0] === "Ref" && typeof node.Ref === "string") {
      out.push({ name: node.Ref, path: `${path}.Ref` });
      return;
    }
    if (keys.length === 1 && keys[0] === "Fn::Sub") {
      const sub = node["Fn::Sub"];
      const text = Array.isArray(sub) ? sub[0] : sub;
      const local = Array.isArray(sub) && isObject(sub[1]) ? Object.keys(sub[1]) : [];
      if (typeof text === "string") {
        for (const m of text.matchAll(/\$\{(?!!)([^}]*)\}/g)) {
          if (!local.includes(m[1])) out.push({ name: m[1], path: `${path}.Fn::Sub` });
        }
      }
      if (Array.isArray(sub)) walk(sub[1], `${path}.Fn::Sub[1]`);
      return;
    }
    for (const key of keys) walk(node[key], path === "" ? key : `${path}.${key}`);
  };
  for (const [section, value] of Object.entries(template)) {
    if (section !== "Parameters" && section !== "Mappings") walk(value, section);
  }
  return out;
}

/** What the template engine says when it evaluates the template with the device's parameters. */
function engineRefusal(
  template: Record<string, unknown>,
  sent: Record<string, string>,
): Omit<Finding, "source" | "file"> | undefined {
  try {
    evaluateTemplate(template, {
      parameters: sent,
      pseudoParameters: { "AWS::IoT::Certificate::Id": "0".repeat(64) },
    });
    return undefined;
  } catch (error) {
    const message = (error as Error)?.message?.replace(/\.$/, "") ?? String(error);
    return {
      severity: "error",
      message: error instanceof TemplateError
        ? `the template engine refuses RegisterThing with this device's parameters (${error.errorCode}): ${message}`
        : `the template engine cannot evaluate it (a fleetprov bug, please report it): ${message}`,
      fix: "correct the template, or the parameters the device sends",
    };
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
