// SPDX-License-Identifier: Apache-2.0
/**
 * The example templates AWS publishes (tests/fixtures/aws_templates/, each with
 * its source URL and what its page says it produces), checked as
 * CreateProvisioningTemplate would check them and evaluated as RegisterThing
 * would: the things, attributes, groups, policies and device configuration
 * are compared with what the docs say.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals } from "./support/assert.ts";
import { checkTemplate, evaluateTemplate } from "../src/template/mod.ts";
import { sampleTemplate } from "../src/emulator/defaults.ts";
import { ROOT } from "./support/mod.ts";

const CERT = "c0ffee".padEnd(64, "0");

/** A fixture: where it comes from, what its page says, and the template. */
interface Fixture {
  source: string;
  says: string;
  template: Record<string, unknown>;
}

function fixture(name: string): Fixture {
  const path = join(ROOT, "tests", "fixtures", "aws_templates", `${name}.json`);
  const fixture = JSON.parse(Deno.readTextFileSync(path)) as Fixture;
  assert(fixture.source.startsWith("https://"), `${name} names its source`);
  return fixture;
}

function evaluate(template: unknown, parameters: Record<string, string>) {
  return evaluateTemplate(template, {
    parameters,
    pseudoParameters: { "AWS::IoT::Certificate::Id": CERT },
  });
}

Deno.test("published templates: the Device Client's sample (its README): FPTemplateName-<certificate id>, FPCertPolicy", () => {
  const { template } = fixture("device_client_sample");
  assertEquals(template, sampleTemplate(), "the emulator's default is the README's template");
  assertEquals(checkTemplate({ name: "FleetprovTemplate", body: template }), []);
  const result = evaluate(template, {});
  assertEquals(result.thing, {
    thingName: `FPTemplateName-${CERT}`,
    attributes: {},
    thingGroups: [],
    overrides: { AttributePayload: "MERGE", ThingGroups: "DO_NOTHING", ThingTypeName: "REPLACE" },
  });
  assertEquals(result.certificate, { certificateId: CERT, status: "ACTIVE" });
  assertEquals(result.policies, [{ policyName: "FPCertPolicy" }]);
});

Deno.test("published templates: the developer guide's fleet provisioning example evaluates as its page describes", () => {
  const { template } = fixture("developer_guide_fleet_example");
  assertEquals(checkTemplate({ name: "FleetTemplate", body: template }), []);
  const result = evaluate(template, {
    ThingName: "MyLightBulb",
    SerialNumber: "12345",
    DeviceLocation: "Seattle",
  });
  assertEquals(result.thing, {
    thingName: "MyLightBulb",
    attributes: { version: "v1", serialNumber: "serialNumber" },
    thingTypeName: "ThingPrefix_12345",
    thingGroups: ["v1-lightbulbs", "WA"],
    billingGroup: "LightBulbBillingGroup",
    overrides: { AttributePayload: "MERGE", ThingTypeName: "REPLACE", ThingGroups: "DO_NOTHING" },
  });
  assertEquals(result.certificate, { certificateId: CERT, status: "ACTIVE" });
  assertEquals(result.policies, [{
    policyDocument: {
      Version: "2012-10-17",
      Statement: [{
        Effect: "Allow",
        Action: ["iot:Publish"],
        Resource: ["arn:aws:iot:us-east-1:123456789012:topic/foo/bar"],
      }],
    },
  }]);
  assertEquals(result.deviceConfiguration, {
    FallbackUrl: "https://www.example.com/test-site",
    LocationUrl: "https://example.aws",
  });
});

Deno.test("published templates: Greengrass's fleet provisioning template: ThingName, ThingGroupName, GreengrassV2IoTThingPolicy", () => {
  const { template } = fixture("greengrass_fleet_provisioning");
  assertEquals(checkTemplate({ name: "GreengrassFleetProvisioningTemplate", body: template }), []);
  const result = evaluate(template, {
    ThingName: "MyGreengrassCore",
    ThingGroupName: "MyGreengrassCoreGroup",
  });
  assertEquals(result.thing?.thingName, "MyGreengrassCore");
  assertEquals(result.thing?.thingGroups, ["MyGreengrassCoreGroup"]);
  assertEquals(result.thing?.attributes, {});
  assertEquals(result.thing?.overrides, {
    AttributePayload: "REPLACE",
    ThingGroups: "REPLACE",
    ThingTypeName: "REPLACE",
  });
  assertEquals(result.policies, [{ policyName: "GreengrassV2IoTThingPolicy" }]);
  assertEquals(result.certificate, { certificateId: CERT, status: "ACTIVE" });
});

Deno.test("published templates: the hook example's undeclared SerialNumber and the bulk example's CSR are named", () => {
  // The developer guide's hook example Refs SerialNumber, which its Parameters do not
  // declare; the emulator refuses that at CreateProvisioningTemplate, naming the fix.
  const hook = fixture("developer_guide_hook_example").template;
  const findings = checkTemplate({ name: "myTemplate", body: hook });
  assertEquals(findings.map((f) => f.path), [
    '$.Resources.thing.Properties.ThingName["Fn::Join"][1][1].Ref',
    '$.Resources.thing.Properties.ThingTypeName["Fn::Join"][1][1].Ref',
  ]);
  assert(findings.every((f) => /"SerialNumber" is not declared in Parameters/.test(f.message)));
  const declared = structuredClone(hook) as { Parameters: Record<string, unknown> };
  declared.Parameters.SerialNumber = { Type: "String" };
  assertEquals(checkTemplate({ name: "myTemplate", body: declared }), []);
  const result = evaluate(declared, { SerialNumber: "7", DeviceLocation: "Seattle" });
  assertEquals(result.thing?.thingName, "ThingPrefix_7");
  assertEquals(result.deviceConfiguration.LocationUrl, "https://example.aws");

  // A bulk registration template names its certificate by CSR: not a fleet provisioning template.
  const bulk = checkTemplate({ body: fixture("developer_guide_bulk_example").template });
  assertEquals(bulk.map((f) => f.path), [
    "$.Resources.certificate.Properties.CertificateSigningRequest",
    "$.Resources.certificate.Properties.CertificateId",
  ]);
});
