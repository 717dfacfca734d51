// SPDX-License-Identifier: Apache-2.0
import { assert, assertEquals } from "./support/assert.ts";
import { checkTemplate, TEMPLATE_LIMITS, type TemplateFinding } from "../src/template/mod.ts";
import { sampleTemplate } from "../src/emulator/defaults.ts";

const CERT = {
  Type: "AWS::IoT::Certificate",
  Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "Active" },
};

/** A template with the certificate resource and `extra` merged in. */
function template(extra: Record<string, unknown> = {}, resources: Record<string, unknown> = {}) {
  return { Resources: { certificate: CERT, ...resources }, ...extra };
}

/** The findings' paths. */
function paths(findings: TemplateFinding[]): string[] {
  return findings.map((f) => f.path);
}

/** The one finding at `path` (asserts there is exactly one). */
function at(findings: TemplateFinding[], path: string): TemplateFinding {
  const matching = findings.filter((f) => f.path === path);
  assertEquals(matching.length, 1, `one finding at ${path} in ${JSON.stringify(findings)}`);
  return matching[0];
}

Deno.test("template check: the Device Client's sample template is accepted as is", () => {
  assertEquals(checkTemplate({ name: "FleetprovTemplate", body: sampleTemplate() }), []);
  assertEquals(
    checkTemplate({ name: "x", body: JSON.stringify(sampleTemplate(), null, 2) }),
    [],
  );
});

Deno.test("template check: name pattern and length, body size (10240) and JSON, as CreateProvisioningTemplate", () => {
  assertEquals(TEMPLATE_LIMITS.bodyChars, 10_240);
  assertEquals(TEMPLATE_LIMITS.nameChars, 36);
  const body = JSON.stringify(template());
  assertEquals(checkTemplate({ name: "a".repeat(36), body }), []);
  assertEquals(paths(checkTemplate({ name: "a".repeat(37), body })), ["templateName"]);
  assertEquals(paths(checkTemplate({ name: "", body })), ["templateName"]);
  assertEquals(paths(checkTemplate({ name: "has space", body })), ["templateName"]);
  // Exactly 10240 characters passes, 10241 does not (whitespace counts: it is the body as sent).
  const padded = (n: number) => body.replace(/}$/, " ".repeat(n - body.length) + "}");
  assertEquals(checkTemplate({ body: padded(10_240) }), []);
  const long = at(checkTemplate({ body: padded(10_241) }), "templateBody");
  assert(/10241 characters long; AWS accepts at most 10240/.test(long.message), long.message);
  assertEquals(paths(checkTemplate({ body: "{not json" })), ["templateBody"]);
  assertEquals(paths(checkTemplate({ body: "[]" })), ["$"]);
});

Deno.test("template check: every problem is reported, each at its JSON path, with a fix where there is one", () => {
  const findings = checkTemplate({
    name: "bad name!",
    body: {
      AWSTemplateFormatVersion: "2010-09-09",
      Parameters: {
        Serial: { Type: "String", AllowedValues: ["a"] },
        Count: { Type: "Number" },
      },
      Mappings: { Sites: { plant: { Url: { Ref: "Serial" } } } },
      Resources: {
        certificate: {
          Type: "AWS::IoT::Certificate",
          Properties: { CertificateSigningRequest: { Ref: "CSR" }, Status: "ON" },
        },
        thing: {
          Type: "AWS::IoT::Thing",
          Properties: {
            ThingName: { "Fn::If": ["c", "a", "b"] },
            ThingGroups: [{ "Fn:Join": ["", ["a"]] }],
          },
          OverrideSettings: { BillingGroup: "REPLACE", ThingTypeName: "MERGE" },
        },
        policy: { Type: "AWS::IoT::Policy", Properties: {} },
        bucket: { Type: "AWS::S3::Bucket" },
      },
      DeviceConfiguration: { Nested: { a: "b" }, Url: { "Fn::Sub": "${Site}/x" } },
    },
  });
  assertEquals(paths(findings), [
    "templateName",
    "$.AWSTemplateFormatVersion",
    "$.Parameters.Serial.AllowedValues",
    "$.Parameters.Count.Type",
    "$.Mappings.Sites.plant.Url",
    "$.Resources.certificate.Properties.CertificateSigningRequest",
    "$.Resources.certificate.Properties.CertificateId",
    "$.Resources.certificate.Properties.Status",
    '$.Resources.thing.Properties.ThingName["Fn::If"]',
    '$.Resources.thing.Properties.ThingGroups[0]["Fn:Join"]',
    "$.Resources.thing.OverrideSettings.BillingGroup",
    "$.Resources.thing.OverrideSettings.ThingTypeName",
    "$.Resources.policy.Properties",
    "$.Resources.bucket.Type",
    "$.DeviceConfiguration.Nested",
    '$.DeviceConfiguration.Url["Fn::Sub"]',
  ]);
  const message = (path: string) => at(findings, path).message;
  assert(/Mappings cannot use parameters/.test(message("$.Mappings.Sites.plant.Url")));
  assert(
    /a fleet provisioning template names its certificate by CertificateId only/.test(
      message("$.Resources.certificate.Properties.CertificateSigningRequest"),
    ),
  );
  assert(
    /AWS supports Ref, Fn::Join/.test(message('$.Resources.thing.Properties.ThingName["Fn::If"]')),
  );
  assert(
    /did you mean Fn::Join\?/.test(
      message('$.Resources.thing.Properties.ThingGroups[0]["Fn:Join"]'),
    ),
  );
  assert(/MERGE is valid only for AttributePayload and ThingGroups/.test(
    message("$.Resources.thing.OverrideSettings.ThingTypeName"),
  ));
  assert(/Neither PolicyName nor PolicyDocument/.test(message("$.Resources.policy.Properties")));
  assert(/does not support nested JSON objects/.test(message("$.DeviceConfiguration.Nested")));
  const undeclared = at(findings, '$.DeviceConfiguration.Url["Fn::Sub"]');
  assert(/"Site" is not declared in Parameters/.test(undeclared.message));
  assertEquals(undeclared.fix, 'Declare it: "Parameters": {"Site": {"Type": "String"}}.');
});

Deno.test("template check: references resolve to declared parameters, the certificate id pseudo parameter, Mappings", () => {
  const ok = template({
    Parameters: { Serial: { Type: "String" }, Site: { Type: "String", Default: "WA" } },
    Mappings: { Sites: { WA: { Url: "https://example.com" } } },
    DeviceConfiguration: {
      A: { Ref: "Serial" },
      B: { "Fn::Sub": "${Serial}-${AWS::IoT::Certificate::Id}-${!Literal}" },
      C: { "Fn::Sub": ["${X}", { X: { Ref: "Site" } }] },
      D: { "Fn::FindInMap": ["Sites", { Ref: "Site" }, "Url"] },
      E: { "Fn::Select": [1, { "Fn::Split": [",", { Ref: "Serial" }] }] },
      F: { "Fn::Join": ["-", ["a", { Ref: "Serial" }]] },
    },
  });
  assertEquals(checkTemplate({ body: ok }), []);
  const bad = checkTemplate({
    body: template({
      Mappings: { Sites: { WA: { Url: "u" } } },
      DeviceConfiguration: {
        A: { Ref: "Nope" },
        B: { "Fn::FindInMap": ["Other", "WA", "Url"] },
        C: { "Fn::FindInMap": ["Sites", "OR", "Url"] },
        D: { "Fn::FindInMap": ["Sites", "WA", "Nope"] },
        E: { "Fn::Select": [3, ["a", "b"]] },
        F: { "Fn::Split": ["", "abc"] },
        G: { "Fn::Join": ["-"] },
        H: { Ref: "Serial", Extra: 1 },
      },
    }),
  });
  assertEquals(paths(bad), [
    "$.DeviceConfiguration.A.Ref",
    '$.DeviceConfiguration.B["Fn::FindInMap"][0]',
    '$.DeviceConfiguration.C["Fn::FindInMap"][1]',
    '$.DeviceConfiguration.D["Fn::FindInMap"][2]',
    '$.DeviceConfiguration.E["Fn::Select"][0]',
    '$.DeviceConfiguration.F["Fn::Split"]',
    '$.DeviceConfiguration.G["Fn::Join"]',
    "$.DeviceConfiguration.H",
  ]);
});

Deno.test("template check: Resources, one thing and one certificate, policies by name xor document", () => {
  assertEquals(paths(checkTemplate({ body: { Parameters: {} } })), ["$.Resources"]);
  const twoThings = checkTemplate({
    body: template({}, {
      a: { Type: "AWS::IoT::Thing", Properties: { ThingName: "a" } },
      b: { Type: "AWS::IoT::Thing", Properties: { ThingName: "b" } },
      p: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "P", PolicyDocument: "{}" } },
      q: { Type: "AWS::IoT::Policy", Properties: { PolicyDocument: "{not json" } },
      r: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "P" }, OverrideSettings: {} },
      t: { Type: "AWS::IoT::Thing", Properties: {} },
    }),
  });
  assertEquals(paths(twoThings), [
    "$.Resources.b.Type",
    "$.Resources.p.Properties",
    "$.Resources.q.Properties.PolicyDocument",
    "$.Resources.r.OverrideSettings",
    "$.Resources.t.Type",
    "$.Resources.t.Properties.ThingName",
  ]);
});

Deno.test("template check: thing names, attributes (3 without a thing type, 50 with one) and group names", () => {
  assertEquals(TEMPLATE_LIMITS.attributesWithoutType, 3);
  assertEquals(TEMPLATE_LIMITS.attributesWithType, 50);
  const thing = (properties: Record<string, unknown>) =>
    checkTemplate({
      body: template({}, { thing: { Type: "AWS::IoT::Thing", Properties: properties } }),
    });
  const attributes = (n: number) => Object.fromEntries([...Array(n)].map((_, i) => [`a${i}`, "v"]));
  assertEquals(thing({ ThingName: "ok", AttributePayload: attributes(3) }), []);
  assertEquals(paths(thing({ ThingName: "ok", AttributePayload: attributes(4) })), [
    "$.Resources.thing.Properties.AttributePayload",
  ]);
  assertEquals(
    thing({ ThingName: "ok", ThingTypeName: "T", AttributePayload: attributes(50) }),
    [],
  );
  assertEquals(
    paths(thing({ ThingName: "ok", ThingTypeName: "T", AttributePayload: attributes(51) })),
    ["$.Resources.thing.Properties.AttributePayload"],
  );
  assertEquals(
    paths(thing({
      ThingName: "has space",
      AttributePayload: { "bad name": "v", ok: "bad value!" },
      ThingGroups: ["ok", "not ok"],
      ThingTypeName: "x".repeat(129),
    })),
    [
      "$.Resources.thing.Properties.ThingName",
      '$.Resources.thing.Properties.AttributePayload["bad name"]',
      "$.Resources.thing.Properties.AttributePayload.ok",
      "$.Resources.thing.Properties.ThingTypeName",
      "$.Resources.thing.Properties.ThingGroups[1]",
    ],
  );
  assertEquals(paths(thing({ ThingName: "x".repeat(129) })), [
    "$.Resources.thing.Properties.ThingName",
  ]);
  assertEquals(thing({ ThingName: "x".repeat(128) }), []);
});

Deno.test("template check at the emulator: a literal policy document is checked as the emulator evaluates it", async () => {
  const { templateProblems } = await import("../src/emulator/templates.ts");
  const withPolicy = (document: unknown) =>
    template({}, {
      policy: { Type: "AWS::IoT::Policy", Properties: { PolicyDocument: document } },
    });
  const allow = { Effect: "Allow", Action: "iot:Connect", Resource: "*" };
  assertEquals(templateProblems("T", withPolicy({ Statement: [allow] })), []);
  assertEquals(templateProblems("T", withPolicy(JSON.stringify({ Statement: [allow] }))), []);
  const broken = templateProblems("T", withPolicy({ Statement: [{ ...allow, Effect: "Maybe" }] }));
  assertEquals(paths(broken), ["$.Resources.policy.Properties.PolicyDocument"]);
  assert(/Effect/.test(broken[0].message), broken[0].message);
  // A document built from parameters is checked at RegisterThing, once known.
  const built = withPolicy({ Statement: [{ ...allow, Resource: { "Fn::Sub": "${Serial}" } }] });
  (built as { Parameters?: unknown }).Parameters = { Serial: { Type: "String" } };
  assertEquals(templateProblems("T", built), []);
});
