// SPDX-License-Identifier: Apache-2.0
/**
 * Static validation of a fleet provisioning template: everything AWS IoT
 * refuses at CreateProvisioningTemplate (name, body size, JSON), and what it
 * documents as unsupported (sections, resource types, properties, functions,
 * functions in Mappings, nested DeviceConfiguration, undeclared references),
 * found without evaluating the template. Every problem is returned, not the
 * first: `fleetprov lint`, the emulator's control plane and its start-up use
 * the same function. Pure: no emulator, no registry.
 *
 * @module
 */
import { isObject, type Json } from "./expressions.ts";
import { checkResources } from "./validate_resources.ts";
import { checkValue, type PolicyDocumentCheck, type Scope } from "./validate_values.ts";
import {
  PARAMETER_KEYS,
  pathStep,
  SECTIONS,
  TEMPLATE_LIMITS,
  TEMPLATE_NAME_CHARS,
} from "./vocabulary.ts";

/** One problem: where (a JSON path, or the API field), what AWS says, and how to fix it. */
export interface TemplateFinding {
  /** `$`-rooted JSON path of the key in the body (`$.Resources.thing.Type`), or `templateName` / `templateBody`. */
  path: string;
  /** The reason AWS refuses it (or why the emulator cannot evaluate it faithfully). */
  message: string;
  /** What to change, when there is one obvious fix. */
  fix?: string;
}

/** A template as CreateProvisioningTemplate gets it: its name, and its body as text or as parsed JSON. */
export interface TemplateSource {
  /** The template name; not checked when absent. */
  name?: string;
  /** The template body: the JSON text (its size is checked), or the parsed value. */
  body: string | unknown;
  /**
   * Checks each literal `PolicyDocument` (one without function calls) as
   * AWS IoT checks a policy; without it, only its JSON is checked. The
   * emulator and lint pass the policy evaluator's `policyDocumentError`.
   */
  policyDocument?: PolicyDocumentCheck;
}

/** Every problem of a template, in document order; empty when AWS would accept it. */
export function checkTemplate(source: TemplateSource): TemplateFinding[] {
  const findings: TemplateFinding[] = [];
  const add = (path: string, message: string, fix?: string) =>
    findings.push(fix === undefined ? { path, message } : { path, message, fix });
  if (source.name !== undefined) checkName(source.name, add);
  const template = parseBody(source.body, add);
  if (template === undefined) return findings;
  if (!isObject(template)) {
    add(
      "$",
      "The template body must be a JSON object.",
      'Start from {"Parameters": {}, "Resources": {}}.',
    );
    return findings;
  }
  for (const key of Object.keys(template)) {
    if (!(SECTIONS as readonly string[]).includes(key)) {
      add(
        `$${pathStep(key)}`,
        `${key} is not a section of a fleet provisioning template (${SECTIONS.join(", ")}).`,
        `Remove ${key}.`,
      );
    }
  }
  const scope: Scope = {
    declared: checkParameters(template.Parameters, add),
    mappings: checkMappings(template.Mappings, add),
    add,
    ...(source.policyDocument ? { policyDocument: source.policyDocument } : {}),
  };
  checkResources(template.Resources, scope);
  checkDeviceConfiguration(template.DeviceConfiguration, scope);
  return findings;
}

/** Adds a finding. */
export type AddFinding = (path: string, message: string, fix?: string) => void;

function checkName(name: string, add: AddFinding): void {
  if (name.length < 1 || name.length > TEMPLATE_LIMITS.nameChars) {
    add(
      "templateName",
      `The template name is ${name.length} characters long; AWS accepts 1 to ${TEMPLATE_LIMITS.nameChars}.`,
    );
  }
  if (name.length > 0 && !TEMPLATE_NAME_CHARS.test(name)) {
    add(
      "templateName",
      `The template name ${
        JSON.stringify(name.slice(0, 40))
      } may contain only letters, digits, '_' and '-' (pattern ^[0-9A-Za-z_-]+$).`,
    );
  }
}

/** The parsed body, or undefined (with a finding) when it is too long or not JSON. */
function parseBody(body: unknown, add: AddFinding): Json | undefined {
  const text = typeof body === "string" ? body : JSON.stringify(body) ?? "";
  const chars = [...text].length;
  if (chars > TEMPLATE_LIMITS.bodyChars) {
    add(
      "templateBody",
      `The template body is ${chars} characters long; AWS accepts at most ${TEMPLATE_LIMITS.bodyChars}.`,
      "Shorten it: move policy documents into named policies (PolicyName) and drop whitespace.",
    );
  }
  if (typeof body !== "string") return body;
  try {
    return JSON.parse(body);
  } catch (error) {
    add("templateBody", `The template body is not valid JSON: ${(error as Error).message}.`);
    return undefined;
  }
}

/** The Parameters section; returns the declared names. */
function checkParameters(parameters: Json, add: AddFinding): Set<string> {
  const declared = new Set<string>();
  if (parameters === undefined) return declared;
  if (!isObject(parameters)) {
    add("$.Parameters", "Parameters must be an object of parameter declarations.");
    return declared;
  }
  for (const [name, spec] of Object.entries(parameters)) {
    declared.add(name);
    const path = `$.Parameters${pathStep(name)}`;
    if (!isObject(spec)) {
      add(path, `Parameter ${name} must be an object such as {"Type": "String"}.`);
      continue;
    }
    for (const key of Object.keys(spec)) {
      if (!(PARAMETER_KEYS as readonly string[]).includes(key)) {
        add(
          `${path}${pathStep(key)}`,
          `${key} is not part of a provisioning template parameter (it has Type and Default).`,
          `Remove ${key}.`,
        );
      }
    }
    if (spec.Type !== "String") {
      add(
        `${path}.Type`,
        `Parameter ${name} must have "Type": "String" (the only type of template parameters).`,
      );
    }
    if (spec.Default !== undefined && typeof spec.Default !== "string") {
      add(`${path}.Default`, `The Default of parameter ${name} must be a string.`);
    }
  }
  return declared;
}

/** The Mappings section: map -> key -> key -> value; no functions (AWS: not in Mappings). */
function checkMappings(mappings: Json, add: AddFinding): Record<string, Json> {
  if (mappings === undefined) return {};
  if (!isObject(mappings)) {
    add("$.Mappings", "Mappings must be an object of maps.");
    return {};
  }
  const walk = (node: Json, path: string, depth: number): void => {
    if (isObject(node)) {
      if (Object.keys(node).some((k) => k === "Ref" || k.startsWith("Fn:"))) {
        add(
          path,
          "Mappings cannot use parameters, pseudo parameters or intrinsic functions.",
          "Use literal values in Mappings; look them up with Fn::FindInMap.",
        );
        return;
      }
      if (depth >= 3) {
        add(path, "A Mappings value must be a string or a list of strings, not an object.");
        return;
      }
      for (const [key, value] of Object.entries(node)) {
        walk(value, `${path}${pathStep(key)}`, depth + 1);
      }
    } else if (depth < 3) {
      add(path, "Mappings are two levels of keys under each map name: {Map: {Key: {Key: value}}}.");
    } else if (
      Array.isArray(node) ? !node.every((v) => typeof v === "string") : typeof node !== "string"
    ) {
      add(path, "A Mappings value must be a string or a list of strings.");
    }
  };
  walk(mappings, "$.Mappings", 0);
  return mappings;
}

/** DeviceConfiguration: a flat map of strings (AWS: no nested JSON objects). */
function checkDeviceConfiguration(configuration: Json, scope: Scope): void {
  if (configuration === undefined) return;
  if (!isObject(configuration)) {
    scope.add("$.DeviceConfiguration", "DeviceConfiguration must be an object of strings.");
    return;
  }
  for (const [key, value] of Object.entries(configuration)) {
    const path = `$.DeviceConfiguration${pathStep(key)}`;
    const call = isObject(value) && Object.keys(value).length === 1 &&
      Object.keys(value).some((k) => k === "Ref" || k.startsWith("Fn:"));
    if ((isObject(value) && !call) || Array.isArray(value) || value === null) {
      scope.add(
        path,
        "DeviceConfiguration does not support nested JSON objects or lists: each value is a string.",
        "Flatten it, or put JSON in a string.",
      );
      continue;
    }
    checkValue(value, path, scope);
  }
}
