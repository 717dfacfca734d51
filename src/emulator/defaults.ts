// SPDX-License-Identifier: Apache-2.0
/**
 * The emulator's defaults: the Device Client's sample template, its sample
 * permanent-certificate policy (FPCertPolicy) and the claim policy.
 *
 * @module
 */

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

/** The Device Client's sample permanent certificate policy (FPCertPolicy). */
export function fpCertPolicy(): Record<string, unknown> {
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
      {
        Effect: "Allow",
        Action: ["iot:Publish", "iot:Receive"],
        Resource: topics.map((t) => `${ARN_PREFIX}topic/${t}`),
      },
      {
        Effect: "Allow",
        Action: "iot:Subscribe",
        Resource: topics.map((t) => `${ARN_PREFIX}topicfilter/${t}`),
      },
    ],
  };
}
