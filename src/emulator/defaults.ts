// SPDX-License-Identifier: Apache-2.0
/**
 * The emulator's defaults: the Device Client's sample template, the device
 * policy (FPCertPolicy: the Device Client's sample, plus what a rotation
 * needs), the claim policy, and the rotation template with its hook.
 *
 * @module
 */
import { topicStatements } from "../policy/mod.ts";
import { DEFAULT_ROTATION_TEMPLATE_NAME, ROTATION_PARAMETERS } from "../protocol/rotation.ts";

export { DEFAULT_ROTATION_TEMPLATE_NAME } from "../protocol/rotation.ts";
export { ROTATION_CHECK_ARN } from "./hooks/rotation_check.ts";

/** Default template name. */
export const DEFAULT_TEMPLATE_NAME = "FleetprovTemplate";

/** Name of the policy attached to the claim certificate. */
export const CLAIM_POLICY_NAME = "FleetprovClaimPolicy";

/** Account and region used in ARNs the emulator prints. */
export const ARN_PREFIX = "arn:aws:iot:us-east-1:123456789012:";

/** The Device Client's "Sample Fleet Provisioning Template", verbatim. */
export function sampleTemplate(): Record<string, unknown> {
  return {
    Parameters: { "AWS::IoT::Certificate::Id": { Type: "String" } },
    Resources: {
      certificate: {
        Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "Active" },
        Type: "AWS::IoT::Certificate",
      },
      policy: { Properties: { PolicyName: "FPCertPolicy" }, Type: "AWS::IoT::Policy" },
      thing: {
        OverrideSettings: {
          AttributePayload: "MERGE",
          ThingGroups: "DO_NOTHING",
          ThingTypeName: "REPLACE",
        },
        Properties: {
          AttributePayload: {},
          ThingGroups: [],
          ThingName: {
            "Fn::Join": ["", ["FPTemplateName-", { Ref: "AWS::IoT::Certificate::Id" }]],
          },
        },
        Type: "AWS::IoT::Thing",
      },
    },
  };
}

/** The Device Client's sample permanent certificate policy, verbatim: its own thing's topics. */
export function deviceClientCertPolicy(): Record<string, unknown> {
  const arn = "arn:aws:iot:us-east-1:1234567890:";
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: `${arn}client/\${iot:Connection.Thing.ThingName}`,
      },
      {
        Effect: "Allow",
        Action: ["iot:Publish", "iot:Receive"],
        Resource: `${arn}topic/$aws/things/\${iot:Connection.Thing.ThingName}/*`,
      },
      {
        Effect: "Allow",
        Action: "iot:Subscribe",
        Resource: `${arn}topicfilter/$aws/things/\${iot:Connection.Thing.ThingName}/*`,
      },
    ],
  };
}

/**
 * The emulator's device policy, FPCertPolicy (the default templates attach
 * it): the Device Client's sample (connect only as the thing the certificate
 * is attached to, `${iot:Connection.Thing.ThingName}`; that thing's topics),
 * plus the topics of a rotation: CreateCertificateFromCsr,
 * CreateKeysAndCertificate and the rotation template's RegisterThing. Which
 * thing a rotation may name is the rotation template's hook's to check.
 */
export function fpCertPolicy(
  rotationTemplateName: string = DEFAULT_ROTATION_TEMPLATE_NAME,
): Record<string, unknown> {
  const arn = "arn:aws:iot:us-east-1:1234567890:";
  const topics = [
    "$aws/certificates/create-from-csr/*",
    "$aws/certificates/create/*",
    `$aws/provisioning-templates/${rotationTemplateName}/provision/*`,
  ];
  const sample = deviceClientCertPolicy() as { Statement: unknown[] };
  return { ...sample, Statement: [...sample.Statement, ...topicStatements(arn, topics)] };
}

/**
 * The rotation template of the emulator's default setup: a new certificate
 * for the thing named by `ThingName`, with FPCertPolicy. Its hook is the
 * emulator's rotation check ({@linkcode ROTATION_CHECK_ARN}): the asking
 * certificate must be `OldCertificateId` and attached to `ThingName`, so the
 * thing exists and is the device's own.
 */
export function rotationTemplate(): Record<string, unknown> {
  return {
    Parameters: {
      [ROTATION_PARAMETERS.thingName]: { Type: "String" },
      [ROTATION_PARAMETERS.oldCertificateId]: { Type: "String" },
      "AWS::IoT::Certificate::Id": { Type: "String" },
    },
    Resources: {
      certificate: {
        Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "Active" },
        Type: "AWS::IoT::Certificate",
      },
      policy: { Properties: { PolicyName: "FPCertPolicy" }, Type: "AWS::IoT::Policy" },
      thing: {
        Properties: { ThingName: { Ref: ROTATION_PARAMETERS.thingName } },
        Type: "AWS::IoT::Thing",
      },
    },
  };
}

/** The claim policy of the spec (section 1) for one template name. */
export function claimPolicy(templateName: string): Record<string, unknown> {
  const topics = [
    "$aws/certificates/create/*",
    "$aws/certificates/create-from-csr/*",
    `$aws/provisioning-templates/${templateName}/provision/*`,
  ];
  return {
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Action: ["iot:Connect"], Resource: "*" },
      ...topicStatements(ARN_PREFIX, topics),
    ],
  };
}
