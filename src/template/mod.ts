// SPDX-License-Identifier: Apache-2.0
/**
 * The provisioning template engine: evaluates an AWS IoT fleet provisioning
 * template against request parameters. Pure: no I/O, no registry access; the
 * caller applies the result.
 *
 * @module
 */
import { MAX_PARAMETER_KEY_LENGTH, MAX_PARAMETER_VALUE_LENGTH } from "../protocol/mod.ts";
import {
  type Context,
  evaluate,
  fail,
  isObject,
  type Json,
  scalar,
  TemplateError,
} from "./expressions.ts";

import { checkThing } from "./validate_resources.ts";
import {
  CERTIFICATE_ID_PARAMETER,
  MERGEABLE,
  OVERRIDE_ACTIONS,
  RESOURCE_TYPES,
  TEMPLATE_LIMITS,
} from "./vocabulary.ts";

export { TemplateError } from "./expressions.ts";
export { checkTemplate, type TemplateFinding, type TemplateSource } from "./validate.ts";
export { type ExistingThing, mergeThing } from "./overrides.ts";
export {
  CERTIFICATE_ID_PARAMETER,
  pathStep,
  PSEUDO_PARAMETERS,
  TEMPLATE_LIMITS,
} from "./vocabulary.ts";
export {
  checkRegistration,
  createCommand,
  disabledTemplateError,
  missingResourceError,
  type RequiredResource,
  requiredResources,
  type ResourceKind,
  resourceLabel,
} from "./registration.ts";
export type { PolicyDocumentCheck } from "./validate_values.ts";

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
  /** Per property (`AttributePayload`, `ThingTypeName`, `ThingGroups`). */
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

/**
 * The values AWS IoT gives the pseudo parameters ({@linkcode PSEUDO_PARAMETERS})
 * when RegisterThing registers `certificateId`.
 */
export function pseudoParameterValues(certificateId: string): Record<string, string> {
  return { [CERTIFICATE_ID_PARAMETER]: certificateId };
}

/** Limits AWS IoT applies to provisioning requests. */
export const LIMITS = {
  parameterKeyLength: MAX_PARAMETER_KEY_LENGTH,
  parameterValueLength: MAX_PARAMETER_VALUE_LENGTH,
  thingNameBytes: TEMPLATE_LIMITS.thingNameBytes,
} as const;

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
  evaluateResources(template.Resources ?? {}, context, result);
  result.deviceConfiguration = deviceConfiguration(template.DeviceConfiguration ?? {}, context);
  return result;
}

/** The `Resources` section: one thing, one certificate, any number of policies. */
function evaluateResources(resources: Json, context: Context, result: TemplateResult): void {
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
        if (result.thing) onlyOne("AWS::IoT::Thing");
        result.thing = thingResource(logicalId, properties, resource.OverrideSettings);
        break;
      case "AWS::IoT::Certificate":
        if (result.certificate) onlyOne("AWS::IoT::Certificate");
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
}

function onlyOne(type: string): never {
  throw new TemplateError(
    "ResourceRegistrationFailure",
    `A template may declare only one ${type}.`,
  );
}

/** The `DeviceConfiguration` section: a flat map of strings. */
function deviceConfiguration(configuration: Json, context: Context): Record<string, string> {
  if (!isObject(configuration)) {
    throw new TemplateError(
      "ResourceRegistrationFailure",
      "DeviceConfiguration must be an object.",
    );
  }
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(configuration)) {
    const value = evaluate(raw, context, `DeviceConfiguration.${key}`);
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw new TemplateError(
        "ResourceRegistrationFailure",
        `DeviceConfiguration.${key} must evaluate to a string.`,
      );
    }
    out[key] = String(value);
  }
  return out;
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
  }
  for (const [name, value] of Object.entries(input.pseudoParameters)) values[name] ??= value;
  return values;
}

function thingResource(
  logicalId: string,
  properties: Record<string, Json>,
  overrideSettings: Json,
): ThingResource {
  const where = `Resources.${logicalId}.Properties`;
  const thingName = properties.ThingName;
  if (typeof thingName !== "string" || thingName === "") {
    fail(`${where}.ThingName`, "must evaluate to a non-empty string");
  }
  // What the registry refuses (names, attribute rules and counts), on the evaluated values.
  checkThing(properties, `$.${where}`, {
    add: (path, message) => {
      throw new TemplateError(
        "ResourceRegistrationFailure",
        `${message.replace(/\.$/, "")}, at ${path.slice(2)}.`,
      );
    },
  });
  const thing: ThingResource = { thingName, overrides: overridesOf(logicalId, overrideSettings) };
  if (properties.AttributePayload !== undefined) {
    const attributes = properties.AttributePayload as Record<string, Json>;
    thing.attributes = Object.fromEntries(
      Object.entries(attributes).map(([k, v]) => [k, scalar(v, `${where}.AttributePayload.${k}`)]),
    );
  }
  if (properties.ThingTypeName !== undefined) {
    thing.thingTypeName = scalar(properties.ThingTypeName, `${where}.ThingTypeName`);
  }
  if (properties.ThingGroups !== undefined) {
    thing.thingGroups = (properties.ThingGroups as Json[]).map((g) =>
      scalar(g, `${where}.ThingGroups`)
    );
  }
  if (properties.BillingGroup !== undefined) {
    thing.billingGroup = scalar(properties.BillingGroup, `${where}.BillingGroup`);
  }
  return thing;
}

/** A thing's OverrideSettings, upper-cased (AWS accepts either case). */
function overridesOf(logicalId: string, settings: Json): Record<string, OverrideAction> {
  const overrides: Record<string, OverrideAction> = {};
  if (settings === undefined) return overrides;
  const where = `Resources.${logicalId}.OverrideSettings`;
  if (!isObject(settings)) fail(where, "must be an object");
  const allowed = RESOURCE_TYPES["AWS::IoT::Thing"].overrides;
  for (const [property, action] of Object.entries(settings)) {
    const upper = typeof action === "string" ? action.toUpperCase() : "";
    if (!allowed.includes(property)) {
      fail(`${where}.${property}`, `is not one of ${allowed.join(", ")}`);
    }
    if (!(OVERRIDE_ACTIONS as readonly string[]).includes(upper)) {
      fail(`${where}.${property}`, "must be DO_NOTHING, REPLACE, FAIL or MERGE");
    }
    if (upper === "MERGE" && !(MERGEABLE as readonly string[]).includes(property)) {
      fail(`${where}.${property}`, "MERGE applies only to AttributePayload and ThingGroups");
    }
    overrides[property] = upper as OverrideAction;
  }
  return overrides;
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
