// SPDX-License-Identifier: Apache-2.0
/**
 * The provisioning template engine: evaluates an AWS IoT fleet provisioning
 * template against request parameters. Pure: no I/O, no registry access; the
 * caller applies the result.
 *
 * @module
 */

/** What AWS does with a property of a thing that already exists. */
export type OverrideAction = "DO_NOTHING" | "REPLACE" | "FAIL" | "MERGE";

/** The evaluated `AWS::IoT::Thing` resource. */
export interface ThingResource {
  thingName: string;
  /** Present when the template sets `AttributePayload`. */
  attributes?: Record<string, string>;
  thingTypeName?: string;
  thingGroups?: string[];
  billingGroup?: string;
  /** Per property (`AttributePayload`, `ThingTypeName`, `ThingGroups`, `BillingGroup`). */
  overrides: Record<string, OverrideAction>;
}

/** The evaluated `AWS::IoT::Certificate` resource. */
export interface CertificateResource {
  certificateId: string;
  status: "ACTIVE" | "INACTIVE";
}

/** The evaluated `AWS::IoT::Policy` resource: an existing name or an inline document. */
export type PolicyResource = { policyName: string } | { policyDocument: unknown };

/** Everything a template asks for. */
export interface TemplateResult {
  thing?: ThingResource;
  certificate?: CertificateResource;
  policies: PolicyResource[];
  deviceConfiguration: Record<string, string>;
}

/** Input of {@linkcode evaluateTemplate}. */
export interface TemplateInput {
  /** The request's `parameters`. */
  parameters: Record<string, string>;
  /** Pseudo parameters, e.g. `AWS::IoT::Certificate::Id`. They win over request parameters. */
  pseudoParameters: Record<string, string>;
}

/** Why a template failed; `errorCode` is the rejection's error code. */
export class TemplateError extends Error {
  /** `InvalidParameters` (the request's fault) or `ResourceRegistrationFailure` (the template's). */
  readonly errorCode: string;

  /** Creates an error with the rejection code it maps to. */
  constructor(errorCode: string, message: string) {
    super(message);
    this.name = "TemplateError";
    this.errorCode = errorCode;
  }
}

/** Limits AWS IoT applies to provisioning requests. */
export const LIMITS = {
  parameterKeyLength: 2048,
  parameterValueLength: 4096,
  thingNameBytes: 128,
} as const;

const OVERRIDE_ACTIONS = new Set(["DO_NOTHING", "REPLACE", "FAIL", "MERGE"]);
const MERGEABLE = new Set(["AttributePayload", "ThingGroups"]);
const THING_NAME = /^[a-zA-Z0-9:_-]+$/;

type Json = unknown;

/**
 * Checks request parameters: an object of strings within the AWS limits.
 * Throws a {@linkcode TemplateError} with code `InvalidParameters` otherwise.
 */
export function validateParameters(parameters: unknown): Record<string, string> {
  if (parameters === undefined || parameters === null) return {};
  if (typeof parameters !== "object" || Array.isArray(parameters)) {
    throw new TemplateError("InvalidParameters", "parameters must be an object of strings.");
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parameters)) {
    if (key.length > LIMITS.parameterKeyLength) {
      throw new TemplateError(
        "InvalidParameters",
        `Parameter key ${
          key.slice(0, 32)
        }... is ${key.length} characters long; the limit is ${LIMITS.parameterKeyLength}.`,
      );
    }
    if (typeof value !== "string") {
      throw new TemplateError("InvalidParameters", `Parameter ${key} must be a string.`);
    }
    if (value.length > LIMITS.parameterValueLength) {
      throw new TemplateError(
        "InvalidParameters",
        `Parameter ${key} is ${value.length} characters long; the limit is ${LIMITS.parameterValueLength}.`,
      );
    }
    out[key] = value;
  }
  return out;
}

/** Evaluates `template` with `input`; throws {@linkcode TemplateError} on any problem. */
export function evaluateTemplate(template: unknown, input: TemplateInput): TemplateResult {
  if (!isObject(template)) {
    throw new TemplateError(
      "ResourceRegistrationFailure",
      "The provisioning template must be a JSON object.",
    );
  }
  const values = resolveParameters(template, input);
  const mappings = template.Mappings === undefined ? {} : template.Mappings;
  if (!isObject(mappings)) {
    throw new TemplateError("ResourceRegistrationFailure", "Mappings must be an object.");
  }
  const context: Context = { values, mappings };

  const result: TemplateResult = { policies: [], deviceConfiguration: {} };
  const resources = template.Resources ?? {};
  if (!isObject(resources)) {
    throw new TemplateError("ResourceRegistrationFailure", "Resources must be an object.");
  }
  for (const [logicalId, resource] of Object.entries(resources)) {
    if (!isObject(resource)) {
      throw new TemplateError(
        "ResourceRegistrationFailure",
        `Resource ${logicalId} must be an object.`,
      );
    }
    const properties = evaluate(resource.Properties ?? {}, context, `Resources.${logicalId}`);
    if (!isObject(properties)) {
      throw new TemplateError(
        "ResourceRegistrationFailure",
        `Resources.${logicalId}.Properties must be an object.`,
      );
    }
    switch (resource.Type) {
      case "AWS::IoT::Thing":
        if (result.thing) {
          throw new TemplateError(
            "ResourceRegistrationFailure",
            "A template may declare only one AWS::IoT::Thing.",
          );
        }
        result.thing = thingResource(logicalId, properties, resource.OverrideSettings);
        break;
      case "AWS::IoT::Certificate":
        if (result.certificate) {
          throw new TemplateError(
            "ResourceRegistrationFailure",
            "A template may declare only one AWS::IoT::Certificate.",
          );
        }
        result.certificate = certificateResource(logicalId, properties);
        break;
      case "AWS::IoT::Policy":
        result.policies.push(policyResource(logicalId, properties));
        break;
      default:
        throw new TemplateError(
          "ResourceRegistrationFailure",
          `Resource ${logicalId} has unsupported Type ${JSON.stringify(resource.Type)}.`,
        );
    }
  }

  const configuration = template.DeviceConfiguration ?? {};
  if (!isObject(configuration)) {
    throw new TemplateError(
      "ResourceRegistrationFailure",
      "DeviceConfiguration must be an object.",
    );
  }
  for (const [key, raw] of Object.entries(configuration)) {
    const value = evaluate(raw, context, `DeviceConfiguration.${key}`);
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw new TemplateError(
        "ResourceRegistrationFailure",
        `DeviceConfiguration.${key} must evaluate to a string.`,
      );
    }
    result.deviceConfiguration[key] = String(value);
  }
  return result;
}

interface Context {
  values: Record<string, string>;
  mappings: Record<string, Json>;
}

function resolveParameters(
  template: Record<string, Json>,
  input: TemplateInput,
): Record<string, string> {
  const declared = template.Parameters ?? {};
  if (!isObject(declared)) {
    throw new TemplateError("ResourceRegistrationFailure", "Parameters must be an object.");
  }
  const values: Record<string, string> = {};
  for (const [name, spec] of Object.entries(declared)) {
    if (!isObject(spec)) {
      throw new TemplateError(
        "ResourceRegistrationFailure",
        `Parameters.${name} must be an object.`,
      );
    }
    if (name in input.pseudoParameters) {
      values[name] = input.pseudoParameters[name];
    } else if (Object.hasOwn(input.parameters, name)) {
      values[name] = input.parameters[name];
    } else if (spec.Default !== undefined) {
      values[name] = String(spec.Default);
    } else {
      throw new TemplateError(
        "InvalidParameters",
        `Parameter ${name} is required by the template and has no Default; pass it in parameters.`,
      );
    }
    const allowed = spec.AllowedValues;
    if (Array.isArray(allowed) && !allowed.map(String).includes(values[name])) {
      throw new TemplateError(
        "InvalidParameters",
        `Parameter ${name} must be one of ${allowed.map(String).join(", ")}.`,
      );
    }
  }
  for (const [name, value] of Object.entries(input.pseudoParameters)) values[name] ??= value;
  return values;
}

function evaluate(node: Json, context: Context, where: string): Json {
  if (Array.isArray(node)) return node.map((item, i) => evaluate(item, context, `${where}[${i}]`));
  if (!isObject(node)) return node;
  const keys = Object.keys(node);
  if (keys.length === 1 && (keys[0] === "Ref" || keys[0].startsWith("Fn::"))) {
    return evaluateFunction(keys[0], node[keys[0]], context, `${where}.${keys[0]}`);
  }
  const out: Record<string, Json> = {};
  for (const key of keys) out[key] = evaluate(node[key], context, `${where}.${key}`);
  return out;
}

function evaluateFunction(name: string, raw: Json, context: Context, where: string): Json {
  switch (name) {
    case "Ref": {
      if (typeof raw !== "string") fail(where, "takes a parameter name");
      if (!Object.hasOwn(context.values, raw)) {
        throw new TemplateError(
          "ResourceRegistrationFailure",
          `${where} refers to ${raw}, which is not a declared parameter.`,
        );
      }
      return context.values[raw];
    }
    case "Fn::Join": {
      const args = evaluate(raw, context, where);
      if (!Array.isArray(args) || args.length !== 2 || typeof args[0] !== "string") {
        fail(where, "takes [delimiter, [values]]");
      }
      const list = args[1];
      if (!Array.isArray(list)) fail(where, "takes [delimiter, [values]]");
      return list.map((item) => scalar(item, where)).join(args[0]);
    }
    case "Fn::Split": {
      const args = evaluate(raw, context, where);
      if (!Array.isArray(args) || args.length !== 2 || typeof args[0] !== "string") {
        fail(where, "takes [delimiter, string]");
      }
      if (args[0] === "") fail(where, "needs a non-empty delimiter");
      return scalar(args[1], where).split(args[0]);
    }
    case "Fn::Select": {
      const args = evaluate(raw, context, where);
      if (!Array.isArray(args) || args.length !== 2 || !Array.isArray(args[1])) {
        fail(where, "takes [index, [values]]");
      }
      const index = Number(args[0]);
      if (!Number.isInteger(index) || index < 0 || index >= args[1].length) {
        fail(where, `index ${String(args[0])} is out of range 0..${args[1].length - 1}`);
      }
      return args[1][index];
    }
    case "Fn::Sub": {
      let text: Json = raw;
      let variables: Record<string, string> = {};
      if (Array.isArray(raw)) {
        if (raw.length !== 2 || typeof raw[0] !== "string") {
          fail(where, "takes string or [string, {vars}]");
        }
        text = raw[0];
        const vars = evaluate(raw[1], context, where);
        if (!isObject(vars)) fail(where, "takes string or [string, {vars}]");
        variables = Object.fromEntries(
          Object.entries(vars).map(([k, v]) => [k, scalar(v, `${where}.${k}`)]),
        );
      }
      if (typeof text !== "string") fail(where, "takes string or [string, {vars}]");
      return text.replace(/\$\{(!?)([^}]*)\}/g, (_match, bang: string, key: string) => {
        if (bang) return `\${${key}}`;
        if (Object.hasOwn(variables, key)) return variables[key];
        if (Object.hasOwn(context.values, key)) return context.values[key];
        throw new TemplateError(
          "ResourceRegistrationFailure",
          `${where} refers to \${${key}}, which is not a declared parameter.`,
        );
      });
    }
    case "Fn::FindInMap": {
      const args = evaluate(raw, context, where);
      if (!Array.isArray(args) || args.length !== 3) {
        fail(where, "takes [MapName, TopLevelKey, SecondLevelKey]");
      }
      const [mapName, top, second] = args.map((a) => scalar(a, where));
      const map = context.mappings[mapName];
      if (!isObject(map)) fail(where, `Mappings has no map ${mapName}`);
      const level = map[top];
      if (!isObject(level)) fail(where, `Mappings.${mapName} has no key ${top}`);
      if (!Object.hasOwn(level, second)) {
        fail(where, `Mappings.${mapName}.${top} has no key ${second}`);
      }
      return level[second];
    }
    default:
      throw new TemplateError(
        "ResourceRegistrationFailure",
        `${where}: unsupported function ${name}.`,
      );
  }
}

function thingResource(
  logicalId: string,
  properties: Record<string, Json>,
  overrideSettings: Json,
): ThingResource {
  const where = `Resources.${logicalId}.Properties`;
  const thingName = properties.ThingName;
  if (typeof thingName !== "string" || thingName === "") {
    throw new TemplateError(
      "ResourceRegistrationFailure",
      `${where}.ThingName must evaluate to a non-empty string.`,
    );
  }
  if (new TextEncoder().encode(thingName).length > LIMITS.thingNameBytes) {
    throw new TemplateError(
      "ResourceRegistrationFailure",
      `Thing name ${thingName.slice(0, 32)}... is longer than ${LIMITS.thingNameBytes} bytes.`,
    );
  }
  if (!THING_NAME.test(thingName)) {
    throw new TemplateError(
      "ResourceRegistrationFailure",
      `Thing name ${JSON.stringify(thingName)} may contain only letters, digits, ':', '_' and '-'.`,
    );
  }
  const thing: ThingResource = { thingName, overrides: {} };
  if (properties.AttributePayload !== undefined) {
    const attributes = properties.AttributePayload;
    if (!isObject(attributes)) fail(`${where}.AttributePayload`, "must be an object");
    thing.attributes = Object.fromEntries(
      Object.entries(attributes).map(([k, v]) => [k, scalar(v, `${where}.AttributePayload.${k}`)]),
    );
  }
  if (properties.ThingTypeName !== undefined) {
    thing.thingTypeName = scalar(properties.ThingTypeName, `${where}.ThingTypeName`);
  }
  if (properties.ThingGroups !== undefined) {
    if (!Array.isArray(properties.ThingGroups)) fail(`${where}.ThingGroups`, "must be a list");
    thing.thingGroups = properties.ThingGroups.map((g) => scalar(g, `${where}.ThingGroups`));
  }
  if (properties.BillingGroup !== undefined) {
    thing.billingGroup = scalar(properties.BillingGroup, `${where}.BillingGroup`);
  }
  if (overrideSettings !== undefined) {
    if (!isObject(overrideSettings)) {
      fail(`Resources.${logicalId}.OverrideSettings`, "must be an object");
    }
    for (const [property, action] of Object.entries(overrideSettings)) {
      const upper = typeof action === "string" ? action.toUpperCase() : "";
      if (!OVERRIDE_ACTIONS.has(upper)) {
        fail(
          `Resources.${logicalId}.OverrideSettings.${property}`,
          "must be DO_NOTHING, REPLACE, FAIL or MERGE",
        );
      }
      if (upper === "MERGE" && !MERGEABLE.has(property)) {
        fail(
          `Resources.${logicalId}.OverrideSettings.${property}`,
          "MERGE applies only to AttributePayload and ThingGroups",
        );
      }
      thing.overrides[property] = upper as OverrideAction;
    }
  }
  return thing;
}

function certificateResource(
  logicalId: string,
  properties: Record<string, Json>,
): CertificateResource {
  const where = `Resources.${logicalId}.Properties`;
  const certificateId = properties.CertificateId;
  if (typeof certificateId !== "string" || certificateId === "") {
    fail(`${where}.CertificateId`, "must evaluate to a certificate id");
  }
  const status = properties.Status === undefined
    ? "ACTIVE"
    : scalar(properties.Status, `${where}.Status`).toUpperCase();
  if (status !== "ACTIVE" && status !== "INACTIVE") {
    fail(`${where}.Status`, "must be ACTIVE or INACTIVE");
  }
  return { certificateId, status };
}

function policyResource(logicalId: string, properties: Record<string, Json>): PolicyResource {
  const where = `Resources.${logicalId}.Properties`;
  if (typeof properties.PolicyName === "string" && properties.PolicyName !== "") {
    return { policyName: properties.PolicyName };
  }
  if (properties.PolicyDocument !== undefined) {
    let document = properties.PolicyDocument;
    if (typeof document === "string") {
      try {
        document = JSON.parse(document);
      } catch {
        fail(`${where}.PolicyDocument`, "is not valid JSON");
      }
    }
    if (!isObject(document)) fail(`${where}.PolicyDocument`, "must be a policy document object");
    return { policyDocument: document };
  }
  fail(where, "needs PolicyName or PolicyDocument");
}

function scalar(value: Json, where: string): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  fail(where, "must evaluate to a string");
}

function fail(where: string, message: string): never {
  throw new TemplateError("ResourceRegistrationFailure", `${where} ${message}.`);
}

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
