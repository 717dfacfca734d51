// SPDX-License-Identifier: Apache-2.0
/**
 * Static checks of a template's Resources: the three resource types, their
 * documented properties (fleet provisioning certificates by CertificateId
 * only), OverrideSettings, one thing and one certificate at most, a policy by
 * name or by document (not both, not neither), and the literal names and
 * attributes the registry would refuse.
 *
 * @module
 */
import { isObject, type Json } from "./expressions.ts";
import { checkValue, hasCall, isCall, type Scope } from "./validate_values.ts";
import {
  ATTRIBUTE_NAME_PATTERN,
  ATTRIBUTE_VALUE_PATTERN,
  CERTIFICATE_STATUSES,
  GROUP_NAME_PATTERN,
  MERGEABLE,
  NOT_FOR_FLEET,
  OVERRIDE_ACTIONS,
  pathStep,
  RESOURCE_KEYS,
  RESOURCE_TYPES,
  TEMPLATE_LIMITS,
  THING_NAME_PATTERN,
} from "./vocabulary.ts";

/** The Resources section. */
export function checkResources(resources: Json, scope: Scope): void {
  if (resources === undefined) {
    scope.add(
      "$.Resources",
      "The template has no Resources: it must declare the certificate (and usually a thing and a policy).",
      'Add "Resources": {"certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}}}.',
    );
    return;
  }
  if (!isObject(resources)) {
    scope.add("$.Resources", "Resources must be an object of resources by logical name.");
    return;
  }
  const seen = new Map<string, string>();
  for (const [logicalId, resource] of Object.entries(resources)) {
    const path = `$.Resources${pathStep(logicalId)}`;
    if (!isObject(resource)) {
      scope.add(path, `Resource ${logicalId} must be an object with Type and Properties.`);
      continue;
    }
    const type = checkResourceShape(resource, path, scope);
    if (type === undefined) continue;
    if (type !== "AWS::IoT::Policy") {
      const first = seen.get(type);
      if (first !== undefined) {
        scope.add(`${path}.Type`, `A template declares one ${type}; ${first} is one already.`);
      }
      seen.set(type, logicalId);
    }
    const properties = isObject(resource.Properties) ? resource.Properties : {};
    checkProperties(type, properties, `${path}.Properties`, scope);
    checkOverrides(type, resource.OverrideSettings, `${path}.OverrideSettings`, scope);
  }
}

/** Keys and Type of one resource; returns its type when it is one AWS knows. */
function checkResourceShape(
  resource: Record<string, Json>,
  path: string,
  scope: Scope,
): string | undefined {
  for (const key of Object.keys(resource)) {
    if (!(RESOURCE_KEYS as readonly string[]).includes(key)) {
      scope.add(
        `${path}${pathStep(key)}`,
        `${key} is not part of a resource (it has ${RESOURCE_KEYS.join(", ")}).`,
        `Remove ${key}.`,
      );
    }
  }
  if (resource.Properties !== undefined && !isObject(resource.Properties)) {
    scope.add(`${path}.Properties`, "Properties must be an object.");
  }
  const type = resource.Type;
  if (typeof type !== "string" || !Object.hasOwn(RESOURCE_TYPES, type)) {
    scope.add(
      `${path}.Type`,
      `${
        type === undefined
          ? "The resource has no Type"
          : `Type ${JSON.stringify(type)} is not supported`
      }; provisioning templates declare ${Object.keys(RESOURCE_TYPES).join(", ")}.`,
      "Use one of those types, or remove the resource.",
    );
    return undefined;
  }
  return type;
}

function checkProperties(
  type: string,
  properties: Record<string, Json>,
  path: string,
  scope: Scope,
): void {
  const spec = RESOURCE_TYPES[type];
  for (const [key, value] of Object.entries(properties)) {
    const where = `${path}${pathStep(key)}`;
    if (!spec.properties.includes(key)) {
      scope.add(
        where,
        `${key} is not a property of ${type} (it has ${spec.properties.join(", ")}).`,
        `Remove ${key}.`,
      );
    } else if (NOT_FOR_FLEET.includes(key)) {
      scope.add(
        where,
        `${key} belongs to JITP and bulk registration templates: a fleet provisioning template names its certificate by CertificateId only.`,
        'Use "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}.',
      );
    } else {
      checkValue(value, where, scope);
    }
  }
  for (const key of spec.required) {
    if (properties[key] === undefined) {
      scope.add(
        `${path}${pathStep(key)}`,
        `${type} needs ${key}.`,
        key === "CertificateId"
          ? 'Add "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}.'
          : `Add ${key}.`,
      );
    }
  }
  if (type === "AWS::IoT::Thing") checkThing(properties, path, scope);
  if (type === "AWS::IoT::Certificate") checkStatus(properties.Status, `${path}.Status`, scope);
  if (type === "AWS::IoT::Policy") checkPolicy(properties, path, scope);
}

/** Literal thing name, attributes, type, groups and billing group, as the registry checks them. */
export function checkThing(
  properties: Record<string, Json>,
  path: string,
  scope: Pick<Scope, "add">,
): void {
  const name = properties.ThingName;
  if (typeof name === "string") checkThingName(name, `${path}.ThingName`, scope);
  const attributes = properties.AttributePayload;
  if (attributes !== undefined && !isCall(attributes)) {
    if (!isObject(attributes)) {
      scope.add(
        `${path}.AttributePayload`,
        "AttributePayload must be an object of name-value pairs.",
      );
    } else {
      checkAttributes(
        attributes,
        properties.ThingTypeName !== undefined,
        `${path}.AttributePayload`,
        scope,
      );
    }
  }
  for (const key of ["ThingTypeName", "BillingGroup"]) {
    const value = properties[key];
    if (value !== undefined && !isCall(value)) checkGroupName(value, `${path}.${key}`, scope);
  }
  const groups = properties.ThingGroups;
  if (groups !== undefined && !isCall(groups)) {
    if (!Array.isArray(groups)) {
      scope.add(`${path}.ThingGroups`, "ThingGroups must be a list of group names.");
    } else {
      groups.forEach((group, i) => {
        if (!isCall(group)) checkGroupName(group, `${path}.ThingGroups[${i}]`, scope);
      });
    }
  }
}

/** A thing name as AWS accepts it: 1-128 bytes of letters, digits, ':', '_', '-'. */
export function checkThingName(name: string, path: string, scope: Pick<Scope, "add">): void {
  if (name === "" || !THING_NAME_PATTERN.test(name)) {
    scope.add(
      path,
      `Thing name ${
        JSON.stringify(name.slice(0, 40))
      } may contain only letters, digits, ':', '_' and '-' (1 or more).`,
      "Join its parts with '-', '_' or ':'.",
    );
  } else if (new TextEncoder().encode(name).length > TEMPLATE_LIMITS.thingNameBytes) {
    scope.add(
      path,
      `Thing name ${name.slice(0, 32)}… is longer than ${TEMPLATE_LIMITS.thingNameBytes} bytes.`,
      "Shorten its fixed parts.",
    );
  }
}

function checkAttributes(
  attributes: Record<string, Json>,
  typed: boolean,
  path: string,
  scope: Pick<Scope, "add">,
): void {
  const names = Object.keys(attributes);
  const max = typed ? TEMPLATE_LIMITS.attributesWithType : TEMPLATE_LIMITS.attributesWithoutType;
  if (names.length > max) {
    scope.add(
      path,
      `The thing has ${names.length} attributes; AWS allows ${max} ${
        typed ? "with" : "without"
      } a thing type.`,
      typed
        ? undefined
        : "Give the thing a ThingTypeName (up to 50 attributes) or drop attributes.",
    );
  }
  for (const [name, value] of Object.entries(attributes)) {
    const where = `${path}${pathStep(name)}`;
    if (!ATTRIBUTE_NAME_PATTERN.test(name) || name.length > TEMPLATE_LIMITS.attributeNameChars) {
      scope.add(
        where,
        `Attribute name ${
          JSON.stringify(name.slice(0, 40))
        } must be 1-128 characters of letters, digits and _.,@/:#-.`,
      );
    }
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      const text = String(value);
      if (
        !ATTRIBUTE_VALUE_PATTERN.test(text) || text.length > TEMPLATE_LIMITS.attributeValueChars
      ) {
        scope.add(
          where,
          `Attribute value ${
            JSON.stringify(text.slice(0, 40))
          } must be up to 800 characters of letters, digits and _.,@/:#-.`,
        );
      }
    } else if (!isCall(value)) {
      scope.add(where, "An attribute value is a string.");
    }
  }
}

function checkGroupName(value: Json, path: string, scope: Pick<Scope, "add">): void {
  if (
    typeof value !== "string" || !GROUP_NAME_PATTERN.test(value) ||
    value.length > TEMPLATE_LIMITS.groupNameChars
  ) {
    scope.add(
      path,
      `${JSON.stringify(value)} is not a valid name: 1-128 letters, digits, ':', '_' or '-'.`,
    );
  }
}

function checkStatus(status: Json, path: string, scope: Scope): void {
  if (status === undefined || isCall(status)) return;
  if (
    typeof status !== "string" ||
    !(CERTIFICATE_STATUSES as readonly string[]).includes(status.toUpperCase())
  ) {
    scope.add(path, `Status ${JSON.stringify(status)} must be ACTIVE or INACTIVE.`);
  }
}

function checkPolicy(properties: Record<string, Json>, path: string, scope: Scope): void {
  const name = properties.PolicyName;
  const document = properties.PolicyDocument;
  if (name === undefined && document === undefined) {
    // AWS's words for a JITP template (UpdateCACertificate): "Invalid registration template.
    // Neither policyName nor policyDocument is present in the Template."
    scope.add(
      path,
      "Neither PolicyName nor PolicyDocument is present in the policy resource.",
      "Name an existing policy with PolicyName, or give its PolicyDocument.",
    );
    return;
  }
  if (name !== undefined && document !== undefined) {
    scope.add(
      path,
      "A policy resource has PolicyName or PolicyDocument, not both.",
      "Keep one of them.",
    );
  }
  if (typeof name === "string" && (!/^[\w+=,.@-]+$/.test(name) || name.length > 128)) {
    scope.add(
      `${path}.PolicyName`,
      `Policy name ${
        JSON.stringify(name.slice(0, 40))
      } must be 1-128 characters of letters, digits and _+=,.@-.`,
    );
  }
  let parsed: unknown = document;
  if (typeof document === "string") {
    try {
      parsed = JSON.parse(document);
    } catch (error) {
      scope.add(
        `${path}.PolicyDocument`,
        `The policy document is not valid JSON: ${(error as Error).message}.`,
      );
      return;
    }
    if (!isObject(parsed)) {
      scope.add(`${path}.PolicyDocument`, "The policy document must be a JSON object.");
    }
  } else if (document !== undefined && !isObject(document)) {
    scope.add(
      `${path}.PolicyDocument`,
      "PolicyDocument is a policy (an object, or one escaped as a string).",
    );
  }
  // A document with calls in it is known only at RegisterThing, and checked there.
  if (isObject(parsed) && !hasCall(parsed) && scope.policyDocument) {
    const refused = scope.policyDocument(parsed);
    if (refused !== undefined) {
      scope.add(
        `${path}.PolicyDocument`,
        refused,
        "Correct the statement, or name an existing policy with PolicyName.",
      );
    }
  }
}

function checkOverrides(type: string, overrides: Json, path: string, scope: Scope): void {
  if (overrides === undefined) return;
  const allowed = RESOURCE_TYPES[type].overrides;
  if (!isObject(overrides) || allowed.length === 0) {
    scope.add(
      path,
      allowed.length === 0
        ? `OverrideSettings are not available for ${type}.`
        : "OverrideSettings must be an object of property: action.",
    );
    return;
  }
  for (const [property, action] of Object.entries(overrides)) {
    const where = `${path}${pathStep(property)}`;
    const upper = typeof action === "string" ? action.toUpperCase() : "";
    if (!allowed.includes(property)) {
      scope.add(where, `${type} has OverrideSettings for ${allowed.join(", ")} only.`);
    } else if (!(OVERRIDE_ACTIONS as readonly string[]).includes(upper)) {
      scope.add(where, `${JSON.stringify(action)} must be ${OVERRIDE_ACTIONS.join(", ")}.`);
    } else if (upper === "MERGE" && !(MERGEABLE as readonly string[]).includes(property)) {
      scope.add(where, `MERGE is valid only for ${MERGEABLE.join(" and ")}.`);
    }
  }
}
