// SPDX-License-Identifier: Apache-2.0
import { assert, assertEquals, assertMatch, assertThrows } from "./support/assert.ts";
import {
  evaluateTemplate,
  LIMITS,
  TemplateError,
  validateParameters,
} from "../src/template/mod.ts";
import { mergeThing } from "../src/template/mod.ts";
import { sampleTemplate } from "../src/emulator/defaults.ts";
import type { ThingRecord } from "../src/emulator/registry/mod.ts";

const CERT = "ab".repeat(32);
const pseudo = { "AWS::IoT::Certificate::Id": CERT };

/** A template whose DeviceConfiguration entry `V` is `expression`. */
function valueOf(expression: unknown, extra: Record<string, unknown> = {}, parameters = {}) {
  const template = {
    Parameters: {
      Serial: { Type: "String" },
      Site: { Type: "String", Default: "plant-7" },
      "AWS::IoT::Certificate::Id": { Type: "String" },
    },
    Resources: {},
    DeviceConfiguration: { V: expression },
    ...extra,
  };
  return evaluateTemplate(template, {
    parameters: { Serial: "SN-1", ...parameters },
    pseudoParameters: pseudo,
  }).deviceConfiguration.V;
}

Deno.test("template: the Device Client sample template gives FPTemplateName-<certificateId>", () => {
  const result = evaluateTemplate(sampleTemplate(), { parameters: {}, pseudoParameters: pseudo });
  assertEquals(result.thing?.thingName, `FPTemplateName-${CERT}`);
  assertEquals(result.thing?.attributes, {});
  assertEquals(result.thing?.thingGroups, []);
  assertEquals(result.thing?.overrides, {
    AttributePayload: "MERGE",
    ThingGroups: "DO_NOTHING",
    ThingTypeName: "REPLACE",
  });
  assertEquals(result.certificate, { certificateId: CERT, status: "ACTIVE" });
  assertEquals(result.policies, [{ policyName: "FPCertPolicy" }]);
  assertEquals(result.deviceConfiguration, {});
});

Deno.test("template: Ref reads parameters, defaults and the certificate id pseudo parameter", () => {
  assertEquals(valueOf({ Ref: "Serial" }), "SN-1");
  assertEquals(valueOf({ Ref: "Site" }), "plant-7");
  assertEquals(valueOf({ Ref: "Site" }, {}, { Site: "plant-9" }), "plant-9");
  assertEquals(valueOf({ Ref: "AWS::IoT::Certificate::Id" }), CERT);
  // A request cannot override a pseudo parameter.
  assertEquals(
    valueOf({ Ref: "AWS::IoT::Certificate::Id" }, {}, { "AWS::IoT::Certificate::Id": "forged" }),
    CERT,
  );
  assertThrows(() => valueOf({ Ref: "Nope" }), TemplateError, /Nope, which is not a declared/);
});

Deno.test("template: a missing parameter without Default is InvalidParameters", () => {
  const error = assertThrows(
    () =>
      evaluateTemplate(
        { Parameters: { Serial: { Type: "String" } }, Resources: {} },
        { parameters: {}, pseudoParameters: pseudo },
      ),
    TemplateError,
    /Parameter Serial is required/,
  );
  assertEquals(error.errorCode, "InvalidParameters");
});

Deno.test("template: Fn::Join, Fn::Sub, Fn::Split, Fn::Select, Fn::FindInMap", () => {
  assertEquals(valueOf({ "Fn::Join": ["-", ["a", { Ref: "Serial" }, "c"]] }), "a-SN-1-c");
  assertEquals(valueOf({ "Fn::Sub": "dev-${Serial}@${Site}" }), "dev-SN-1@plant-7");
  assertEquals(valueOf({ "Fn::Sub": ["${X}/${Serial}", { X: { Ref: "Site" } }] }), "plant-7/SN-1");
  assertEquals(valueOf({ "Fn::Sub": "literal ${!Serial}" }), "literal ${Serial}");
  assertEquals(valueOf({ "Fn::Select": [1, { "Fn::Split": ["-", "x-y-z"] }] }), "y");
  assertEquals(valueOf({ "Fn::Select": ["2", ["a", "b", "c"]] }), "c");
  const mappings = { Mappings: { Sites: { "plant-7": { Region: "eu-west-1" } } } };
  assertEquals(
    valueOf({ "Fn::FindInMap": ["Sites", { Ref: "Site" }, "Region"] }, mappings),
    "eu-west-1",
  );
  assertThrows(() => valueOf({ "Fn::FindInMap": ["Sites", "plant-8", "Region"] }, mappings));
  assertThrows(() => valueOf({ "Fn::Select": [3, ["a"]] }), TemplateError, /out of range/);
  assertThrows(() => valueOf({ "Fn::Sub": "${Unknown}" }), TemplateError, /Unknown/);
  assertThrows(() => valueOf({ "Fn::If": ["c", "a", "b"] }), TemplateError, /unsupported function/);
});

Deno.test("template: resources evaluate attributes, type, groups, billing group, status, policies", () => {
  const result = evaluateTemplate(
    {
      Parameters: { Serial: { Type: "String" } },
      Resources: {
        thing: {
          Type: "AWS::IoT::Thing",
          Properties: {
            ThingName: { "Fn::Sub": "board-${Serial}" },
            AttributePayload: { serial: { Ref: "Serial" }, version: 2 },
            ThingTypeName: "Board",
            ThingGroups: ["fleet", { Ref: "Serial" }],
            BillingGroup: "lab",
          },
          OverrideSettings: { AttributePayload: "merge", ThingGroups: "REPLACE" },
        },
        cert: {
          Type: "AWS::IoT::Certificate",
          Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "inactive" },
        },
        inline: {
          Type: "AWS::IoT::Policy",
          Properties: { PolicyDocument: '{"Version":"2012-10-17","Statement":[]}' },
        },
      },
      DeviceConfiguration: { Endpoint: "x", Count: 3 },
    },
    { parameters: { Serial: "7" }, pseudoParameters: pseudo },
  );
  assertEquals(result.thing, {
    thingName: "board-7",
    attributes: { serial: "7", version: "2" },
    thingTypeName: "Board",
    thingGroups: ["fleet", "7"],
    billingGroup: "lab",
    overrides: { AttributePayload: "MERGE", ThingGroups: "REPLACE" },
  });
  assertEquals(result.certificate?.status, "INACTIVE");
  assertEquals(result.policies, [{ policyDocument: { Version: "2012-10-17", Statement: [] } }]);
  assertEquals(result.deviceConfiguration, { Endpoint: "x", Count: "3" });
});

Deno.test("template: bad templates and names are ResourceRegistrationFailure with the culprit named", () => {
  const thing = (name: unknown, overrides?: unknown) => ({
    Resources: {
      t: { Type: "AWS::IoT::Thing", Properties: { ThingName: name }, OverrideSettings: overrides },
    },
  });
  const run = (template: unknown) =>
    evaluateTemplate(template, { parameters: {}, pseudoParameters: pseudo });
  const cases: [unknown, RegExp][] = [
    [thing("x".repeat(LIMITS.thingNameBytes + 1)), /longer than 128 bytes/],
    [thing("a b"), /may contain only/],
    [thing(""), /ThingName must evaluate/],
    [thing("ok", { ThingTypeName: "MERGE" }), /MERGE applies only/],
    [thing("ok", { AttributePayload: "SOMETIMES" }), /DO_NOTHING, REPLACE, FAIL or MERGE/],
    [{
      Resources: {
        c: { Type: "AWS::IoT::Certificate", Properties: { CertificateId: "x", Status: "ON" } },
      },
    }, /Status must be ACTIVE or INACTIVE/],
    [
      { Resources: { p: { Type: "AWS::IoT::Policy", Properties: {} } } },
      /PolicyName or PolicyDocument/,
    ],
    [{ Resources: { r: { Type: "AWS::S3::Bucket" } } }, /unsupported Type/],
    ["nope", /must be a JSON object/],
  ];
  for (const [template, pattern] of cases) {
    const error = assertThrows(() => run(template), TemplateError, pattern);
    assertEquals(error.errorCode, "ResourceRegistrationFailure");
  }
  // 128 bytes exactly is fine.
  assertEquals(run(thing("x".repeat(128))).thing?.thingName.length, 128);
});

Deno.test("template: request parameters must be strings within the AWS limits", () => {
  assertEquals(validateParameters(undefined), {});
  assertEquals(validateParameters({ a: "b" }), { a: "b" });
  assertEquals(validateParameters({ ["k".repeat(2048)]: "v".repeat(4096) }).constructor, Object);
  for (
    const [parameters, pattern] of [
      [{ ["k".repeat(2049)]: "v" }, /limit is 2048/],
      [{ k: "v".repeat(4097) }, /limit is 4096/],
      [{ k: 1 }, /must be a string/],
      [["a"], /object of strings/],
    ] as const
  ) {
    const error = assertThrows(() => validateParameters(parameters), TemplateError, pattern);
    assertEquals(error.errorCode, "InvalidParameters");
  }
});

Deno.test("template: OverrideSettings on an existing thing", () => {
  const existing: ThingRecord = {
    thingName: "t",
    attributes: { a: "1", b: "2" },
    thingTypeName: "Old",
    thingGroups: ["g1"],
    billingGroup: "bill-1",
    principals: ["c1"],
    createdAt: "2024-01-01T00:00:00.000Z",
    version: 3,
  };
  const wanted = {
    thingName: "t",
    attributes: { b: "20", c: "30" },
    thingTypeName: "New",
    thingGroups: ["g2"],
    billingGroup: "bill-2",
  };
  // Default (no OverrideSettings) is DO_NOTHING.
  const unchanged = mergeThing(existing, { ...wanted, overrides: {} });
  assertEquals(unchanged, existing);
  const replaced = mergeThing(existing, {
    ...wanted,
    overrides: { AttributePayload: "REPLACE", ThingTypeName: "REPLACE", ThingGroups: "REPLACE" },
  });
  assertEquals(replaced.attributes, { b: "20", c: "30" });
  assertEquals(replaced.thingTypeName, "New");
  assertEquals(replaced.thingGroups, ["g2"]);
  // AWS documents no OverrideSettings for BillingGroup: an existing thing keeps its own.
  assertEquals(replaced.billingGroup, "bill-1");
  assertEquals(replaced.version, 4);
  const merged = mergeThing(existing, {
    ...wanted,
    overrides: { AttributePayload: "MERGE", ThingGroups: "MERGE" },
  });
  assertEquals(merged.attributes, { a: "1", b: "20", c: "30" });
  assertEquals(merged.thingGroups, ["g1", "g2"]);
  assertEquals(merged.thingTypeName, "Old");
  const error = assertThrows(
    () => mergeThing(existing, { ...wanted, overrides: { ThingTypeName: "FAIL" } }),
    TemplateError,
    /ThingTypeName differs/,
  );
  // AWS: FAIL "causes the request to fail with a ResourceConflictsException".
  assertEquals([error.errorCode, error.statusCode], ["ResourceConflictsException", 409]);
  // FAIL passes when nothing would change.
  const same = mergeThing(existing, {
    thingName: "t",
    thingTypeName: "Old",
    overrides: { ThingTypeName: "FAIL" },
  });
  assert(same.version === 3);
  assertMatch(JSON.stringify(same), /"Old"/);
});
