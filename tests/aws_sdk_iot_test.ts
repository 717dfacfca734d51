// SPDX-License-Identifier: Apache-2.0
/**
 * AWS's SDK for JavaScript v3 (`@aws-sdk/client-iot`, an IoTClient with
 * `endpoint` set, any credentials) drives every control-plane operation the
 * emulator implements: outputs in the SDK's types, errors as the SDK's named
 * exceptions with AWS's HTTP statuses.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  awsSdkMissing,
  claimCredentials,
  connect,
  iotSdk,
  type IotSdkStep,
  request,
  runIotSdk,
  SERIAL_TEMPLATE,
  skipWhenMissing,
  TEMPLATE_NAME,
  type TestEmulator,
  withEmulator,
} from "./support/mod.ts";

const ARN = "arn:aws:iot:us-east-1:123456789012";

/** Provisions board-<serial> over MQTT; returns its certificate id. */
async function provision(emulator: TestEmulator, serial: string): Promise<string> {
  const claim = await connect(emulator, claimCredentials(emulator));
  const created = await request(claim, "CreateKeysAndCertificate", {});
  const registered = await request(claim, "RegisterThing", {
    certificateOwnershipToken: created.body.certificateOwnershipToken,
    parameters: { SerialNumber: serial },
  }, { templateName: TEMPLATE_NAME });
  assert(registered.accepted, JSON.stringify(registered.body));
  await claim.endAsync();
  return created.body.certificateId as string;
}

/** The steps' outcomes by operation (asserting each op ran once). */
function byOp(steps: IotSdkStep[]): Record<string, IotSdkStep> {
  return Object.fromEntries(steps.map((s) => [s.op, s]));
}

const BOARD_EMULATOR = {
  templateName: TEMPLATE_NAME,
  template: SERIAL_TEMPLATE,
  controlPort: 0,
  keyType: "ec-p256" as const,
  keyPoolSize: 0,
};

/** Skipped loudly without npm or the pinned Node.js; under FLEETPROV_REQUIRE_TOOLS=1 (CI) a failure. */
const noSdk = skipWhenMissing(awsSdkMissing(), {
  require: "FLEETPROV_REQUIRE_TOOLS",
  what: "the @aws-sdk/client-iot conformance tests",
});

Deno.test("@aws-sdk/client-iot: things, principals and certificates as the SDK types them", {
  ignore: noSdk,
}, async () => {
  const sdk = await iotSdk();
  await withEmulator(BOARD_EMULATOR, async (emulator) => {
    const id = await provision(emulator, "SN-1");
    await provision(emulator, "SN-2");
    const certArn = `${ARN}:cert/${id}`;
    const steps = byOp(
      await runIotSdk(sdk, emulator.control!.url, [
        { op: "ListThings", input: { attributeName: "serial", attributeValue: "SN-1" } },
        { op: "DescribeThing", input: { thingName: "board-SN-1" } },
        { op: "ListThingPrincipals", input: { thingName: "board-SN-1" } },
        { op: "ListCertificates", input: { pageSize: 10 } },
        { op: "DescribeCertificate", input: { certificateId: id } },
        { op: "UpdateCertificate", input: { certificateId: id, newStatus: "INACTIVE" } },
        { op: "DetachThingPrincipal", input: { thingName: "board-SN-1", principal: certArn } },
        { op: "DetachPolicy", input: { policyName: "FPCertPolicy", target: certArn } },
        { op: "DeleteCertificate", input: { certificateId: id } },
        { op: "AttachThingPrincipal", input: { thingName: "board-SN-1", principal: certArn } },
      ]),
    );
    assertEquals(steps.ListThings.output.things, [{
      thingName: "board-SN-1",
      thingArn: `${ARN}:thing/board-SN-1`,
      attributes: { serial: "SN-1", location: "factory-1" },
      version: 1,
    }]);
    const thing = steps.DescribeThing.output;
    assertEquals([thing.thingName, thing.defaultClientId, thing.version], [
      "board-SN-1",
      "board-SN-1",
      1,
    ]);
    assertMatch(thing.thingId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assertEquals(steps.ListThingPrincipals.output.principals, [certArn]);
    assertEquals(steps.ListCertificates.output.certificates.length, 3);
    const description = steps.DescribeCertificate.output.certificateDescription;
    assertEquals([description.certificateId, description.status, description.ownedBy], [
      id,
      "ACTIVE",
      "123456789012",
    ]);
    // Timestamps arrive as the SDK's Dates (JSON: ISO strings here).
    assert(!Number.isNaN(Date.parse(description.creationDate)), description.creationDate);
    assert(Date.parse(description.validity.notAfter) > Date.now());
    for (
      const op of ["UpdateCertificate", "DetachThingPrincipal", "DetachPolicy", "DeleteCertificate"]
    ) {
      assert(steps[op].ok, `${op}: ${steps[op].message}`);
    }
    assertEquals(emulator.registry.certificate(id), undefined);
    assertEquals(
      [steps.AttachThingPrincipal.name, steps.AttachThingPrincipal.status],
      ["ResourceNotFoundException", 404],
    );
  });
});

Deno.test(
  "@aws-sdk/client-iot: provisioning templates and policies, errors as the SDK's exceptions",
  { ignore: noSdk },
  async () => {
    const sdk = await iotSdk();
    await withEmulator(BOARD_EMULATOR, async (emulator) => {
      const claimArn = `${ARN}:cert/${emulator.claim.certificateId}`;
      const body = JSON.stringify(SERIAL_TEMPLATE);
      const steps = await runIotSdk(sdk, emulator.control!.url, [
        {
          op: "CreateProvisioningTemplate",
          input: {
            templateName: "SdkTemplate",
            templateBody: body,
            provisioningRoleArn: `arn:aws:iam::123456789012:role/Provisioning`,
            description: "created by the SDK",
            preProvisioningHook: { targetArn: "http://127.0.0.1:9/hook" },
          },
        },
        { op: "DescribeProvisioningTemplate", input: { templateName: "SdkTemplate" } },
        {
          op: "UpdateProvisioningTemplate",
          input: { templateName: "SdkTemplate", enabled: true, removePreProvisioningHook: true },
        },
        { op: "DescribeProvisioningTemplate", input: { templateName: "SdkTemplate" } },
        { op: "ListProvisioningTemplates", input: {} },
        {
          op: "CreateProvisioningTemplate",
          input: {
            templateName: "SdkTemplate",
            templateBody: body,
            provisioningRoleArn: `arn:aws:iam::123456789012:role/Provisioning`,
          },
        },
        {
          op: "CreateProvisioningTemplate",
          input: {
            templateName: "Bad",
            templateBody: '{"Resources": {"x": {"Type": "AWS::S3::Bucket"}}}',
            provisioningRoleArn: `arn:aws:iam::123456789012:role/Provisioning`,
          },
        },
        { op: "DeleteProvisioningTemplate", input: { templateName: "SdkTemplate" } },
        { op: "DescribeProvisioningTemplate", input: { templateName: "SdkTemplate" } },
        {
          op: "CreatePolicy",
          input: {
            policyName: "SdkPolicy",
            policyDocument:
              '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}',
          },
        },
        { op: "GetPolicy", input: { policyName: "SdkPolicy" } },
        { op: "AttachPolicy", input: { policyName: "SdkPolicy", target: claimArn } },
        { op: "ListAttachedPolicies", input: { target: claimArn } },
        { op: "ListPolicies", input: {} },
        {
          op: "CreatePolicy",
          input: { policyName: "Broken", policyDocument: '{"Statement": [{"Effect": "Maybe"}]}' },
        },
        { op: "CreatePolicy", input: { policyName: "SdkPolicy", policyDocument: "{}" } },
        { op: "AttachPolicy", input: { policyName: "Nope", target: claimArn } },
        { op: "CreateThingGroup", input: { thingGroupName: "plant-7" } },
        { op: "CreateThingType", input: { thingTypeName: "Gateway" } },
        { op: "CreateBillingGroup", input: { billingGroupName: "lab" } },
        { op: "ListThingGroups", input: {} },
        { op: "ListThingTypes", input: {} },
        { op: "ListBillingGroups", input: { namePrefixFilter: "la" } },
        { op: "DescribeEndpoint", input: { endpointType: "iot:Data-ATS" } },
      ]);
      const [created, described, updated, redescribed, listed, duplicate, invalid, deleted, gone] =
        steps;
      assertEquals(created.output, {
        templateArn: `${ARN}:provisioningtemplate/SdkTemplate`,
        templateName: "SdkTemplate",
        defaultVersionId: 1,
      });
      // AWS: a template is disabled unless created with enabled true.
      assertEquals([described.output.enabled, described.output.preProvisioningHook], [false, {
        targetArn: "http://127.0.0.1:9/hook",
      }]);
      assertEquals([described.output.description, described.output.templateBody], [
        "created by the SDK",
        body,
      ]);
      assert(updated.ok, updated.message);
      assertEquals([redescribed.output.enabled, redescribed.output.preProvisioningHook], [
        true,
        undefined,
      ]);
      assertEquals(listed.output.templates.map((t: { templateName: string }) => t.templateName), [
        TEMPLATE_NAME,
        "FleetprovRotationTemplate",
        "SdkTemplate",
      ]);
      assertEquals([duplicate.name, duplicate.status], ["ResourceAlreadyExistsException", 409]);
      assertEquals([invalid.name, invalid.status], ["InvalidRequestException", 400]);
      assertMatch(
        invalid.message!,
        /^The template body is invalid: \$\.Resources\.x\.Type: Type "AWS::S3::Bucket" is not supported/,
      );
      assert(deleted.ok);
      assertEquals([gone.name, gone.status], ["ResourceNotFoundException", 404]);
      const rest = Object.fromEntries(steps.slice(9).map((s, i) => [`${i}:${s.op}`, s]));
      assertEquals(rest["0:CreatePolicy"].output.policyArn, `${ARN}:policy/SdkPolicy`);
      assertEquals(rest["1:GetPolicy"].output.policyDocument, steps[9].output.policyDocument);
      assertEquals(
        rest["3:ListAttachedPolicies"].output.policies.map((p: { policyName: string }) =>
          p.policyName
        ),
        ["FleetprovClaimPolicy", "SdkPolicy"],
      );
      assertEquals(rest["4:ListPolicies"].output.policies.length, 3);
      assertEquals([rest["5:CreatePolicy"].name, rest["5:CreatePolicy"].status], [
        "MalformedPolicyException",
        400,
      ]);
      assertEquals(rest["6:CreatePolicy"].name, "ResourceAlreadyExistsException");
      assertEquals([rest["7:AttachPolicy"].name, rest["7:AttachPolicy"].status], [
        "ResourceNotFoundException",
        404,
      ]);
      assertEquals(rest["8:CreateThingGroup"].output.thingGroupArn, `${ARN}:thinggroup/plant-7`);
      assertEquals(rest["9:CreateThingType"].output.thingTypeArn, `${ARN}:thingtype/Gateway`);
      assertEquals(rest["10:CreateBillingGroup"].output.billingGroupArn, `${ARN}:billinggroup/lab`);
      assertEquals(rest["11:ListThingGroups"].output.thingGroups, [{
        groupName: "plant-7",
        groupArn: `${ARN}:thinggroup/plant-7`,
      }]);
      assertEquals(
        rest["12:ListThingTypes"].output.thingTypes.map((t: { thingTypeName: string }) =>
          t.thingTypeName
        ),
        ["Gateway"],
      );
      assertEquals(rest["13:ListBillingGroups"].output.billingGroups, [{
        groupName: "lab",
        groupArn: `${ARN}:billinggroup/lab`,
      }]);
      assertEquals(rest["14:DescribeEndpoint"].output, { endpointAddress: "localhost" });
    });
  },
);
