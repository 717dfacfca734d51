// SPDX-License-Identifier: Apache-2.0
/**
 * What AWS IoT documents for fleet provisioning templates, as data: the
 * sections, resource types and their properties, override settings, the
 * intrinsic functions, the pseudo parameter, and the limits of the
 * CreateProvisioningTemplate API and of the registry. The validator
 * (`validate.ts`) and the evaluator (`mod.ts`) read the same lists.
 *
 * Sources: AWS IoT developer guide "Provisioning templates" (sections,
 * resources, OverrideSettings, Mappings without functions, DeviceConfiguration
 * without nested objects), API reference CreateProvisioningTemplate (name,
 * body and description limits), "Thing types" (attribute counts), the
 * ThingName, AttributeName and AttributeValue shapes of the IoT API.
 *
 * @module
 */
import { MAX_THING_NAME_BYTES, THING_NAME_PATTERN } from "../protocol/mod.ts";

/** Limits AWS applies to a template and to what it registers. */
export const TEMPLATE_LIMITS = {
  /** CreateProvisioningTemplate: templateBody is at most 10240 characters. */
  bodyChars: 10_240,
  /** templateName: 1 to 36 characters. */
  nameChars: 36,
  /** description: at most 500 characters. */
  descriptionChars: 500,
  /** Thing name (and client id), in bytes. */
  thingNameBytes: MAX_THING_NAME_BYTES,
  /** An attribute name, in characters. */
  attributeNameChars: 128,
  /** An attribute value, in characters. */
  attributeValueChars: 800,
  /** Attributes of a thing with a thing type. */
  attributesWithType: 50,
  /** Attributes of a thing without a thing type. */
  attributesWithoutType: 3,
  /** Thing group, thing type and billing group names, in characters. */
  groupNameChars: 128,
} as const;

/** The characters of a template name (its length is checked apart). */
export const TEMPLATE_NAME_CHARS = /^[0-9A-Za-z_-]+$/;

export { THING_NAME_PATTERN };

/** Attribute names (AWS's AttributeName shape). */
export const ATTRIBUTE_NAME_PATTERN = /^[a-zA-Z0-9_.,@/:#-]+$/;
/** Attribute values (AWS's AttributeValue shape). */
export const ATTRIBUTE_VALUE_PATTERN = /^[a-zA-Z0-9_.,@/:#-]*$/;
/** Thing group, thing type and billing group names. */
export const GROUP_NAME_PATTERN = /^[a-zA-Z0-9:_-]+$/;

/** The sections of a fleet provisioning template. */
export const SECTIONS = ["Parameters", "Mappings", "Resources", "DeviceConfiguration"] as const;

/** The keys of a parameter declaration. */
export const PARAMETER_KEYS = ["Type", "Default"] as const;

/** The pseudo parameter a fleet provisioning template may use without declaring it. */
export const CERTIFICATE_ID_PARAMETER = "AWS::IoT::Certificate::Id";

/**
 * Every parameter AWS IoT fills itself in RegisterThing, so a template may use
 * it without the device sending it (and without declaring it): the id of the
 * certificate being registered ("Provisioning templates", fleet provisioning).
 * The engine fills exactly these ({@linkcode pseudoParameterValues} in
 * `mod.ts`); the emulator and `fleetprov lint` read this list.
 */
export const PSEUDO_PARAMETERS: readonly string[] = [CERTIFICATE_ID_PARAMETER];

/** The intrinsic functions AWS documents for fleet provisioning templates. */
export const FUNCTION_NAMES = [
  "Ref",
  "Fn::Join",
  "Fn::Select",
  "Fn::Split",
  "Fn::Sub",
  "Fn::FindInMap",
] as const;

/** The keys of a resource. */
export const RESOURCE_KEYS = ["Type", "Properties", "OverrideSettings"] as const;

/** The resource types, their properties, required ones, and OverrideSettings keys. */
export const RESOURCE_TYPES: Record<
  string,
  { properties: readonly string[]; required: readonly string[]; overrides: readonly string[] }
> = {
  "AWS::IoT::Thing": {
    properties: ["ThingName", "AttributePayload", "ThingTypeName", "ThingGroups", "BillingGroup"],
    required: ["ThingName"],
    overrides: ["AttributePayload", "ThingTypeName", "ThingGroups"],
  },
  "AWS::IoT::Certificate": {
    properties: [
      "CertificateId",
      "Status",
      "CertificateSigningRequest",
      "CertificatePem",
      "CACertificatePem",
    ],
    required: ["CertificateId"],
    overrides: ["Status"],
  },
  "AWS::IoT::Policy": { properties: ["PolicyName", "PolicyDocument"], required: [], overrides: [] },
};

/** Certificate properties of JITP and bulk registration templates, not of fleet provisioning. */
export const NOT_FOR_FLEET = ["CertificateSigningRequest", "CertificatePem", "CACertificatePem"];

/** What OverrideSettings may say. */
export const OVERRIDE_ACTIONS = ["DO_NOTHING", "REPLACE", "FAIL", "MERGE"] as const;

/** The only properties MERGE applies to. */
export const MERGEABLE = ["AttributePayload", "ThingGroups"] as const;

/** A certificate's Status in a template (case-insensitive). */
export const CERTIFICATE_STATUSES = ["ACTIVE", "INACTIVE"] as const;

/** A key as a step of a JSON path: `.Name`, or `['AWS::IoT::Certificate::Id']`. */
export function pathStep(key: string | number): string {
  if (typeof key === "number") return `[${key}]`;
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}
