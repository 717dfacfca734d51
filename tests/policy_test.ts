// SPDX-License-Identifier: Apache-2.0
/**
 * The AWS IoT policy evaluator (src/policy/) against what AWS documents:
 * explicit Deny wins ("AWS IoT Core policies"), Subscribe on topicfilter/,
 * Publish and Receive on topic/, Connect on client/ ("Action resources"),
 * `*` and `?` wildcards with MQTT's `+` and `#` as plain characters ("AWS IoT
 * Core policy variables"), policy variables (the thing ones unresolved on a
 * claim connection: "Thing policy examples"), regions and accounts in ARNs,
 * NotAction/NotResource, Conditions; problems as findings, and explanations
 * with the statement that fixes a denial.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  allowStatement,
  type ArnScope,
  evaluate,
  explainDenial,
  type IotAction,
  isAllowed,
  parsePolicy,
  type PolicyVariables,
  scopeOfEndpoint,
} from "../src/policy/mod.ts";
import { certificateFacts } from "../src/policy/certificate.ts";
import { selfSignedCertificate } from "./support/pki.ts";

const ARN = "arn:aws:iot:eu-west-1:123456789012:";
const CLAIM: PolicyVariables = { clientId: "board-1" };

function allows(
  statements: unknown[],
  request: [IotAction, string],
  options: { variables?: PolicyVariables; scope?: ArnScope } = {},
): boolean {
  return isAllowed(
    [{ Version: "2012-10-17", Statement: statements }],
    { action: request[0], name: request[1] },
    options.variables ?? CLAIM,
    options.scope,
  );
}

Deno.test("policy: nothing is allowed by default; an explicit Deny in any policy wins over every Allow", () => {
  assert(!allows([], ["iot:Connect", "board-1"]));
  const allowAll = { Effect: "Allow", Action: "iot:*", Resource: "*" };
  assert(allows([allowAll], ["iot:Connect", "board-1"]));
  const deny = { Effect: "Deny", Action: "iot:Connect", Resource: `${ARN}client/board-*` };
  assert(!allows([allowAll, deny], ["iot:Connect", "board-1"]));
  assert(allows([allowAll, deny], ["iot:Connect", "other"]));
  // Across documents too (several policies attached to one certificate).
  assert(
    !isAllowed(
      [{ Statement: [allowAll] }, { Statement: [deny] }],
      { action: "iot:Connect", name: "board-1" },
      CLAIM,
    ),
  );
});

Deno.test("policy: Subscribe is checked against topicfilter/, Publish and Receive against topic/, Connect against client/", () => {
  const topic = "$aws/certificates/create/json/accepted";
  const onTopic = { Effect: "Allow", Action: "iot:*", Resource: `${ARN}topic/${topic}` };
  const onFilter = { Effect: "Allow", Action: "iot:*", Resource: `${ARN}topicfilter/${topic}` };
  assert(!allows([onTopic], ["iot:Subscribe", topic]));
  assert(allows([onFilter], ["iot:Subscribe", topic]));
  assert(allows([onTopic], ["iot:Publish", topic]));
  assert(allows([onTopic], ["iot:Receive", topic]));
  assert(!allows([onFilter], ["iot:Receive", topic]));
  assert(!allows([onTopic], ["iot:Connect", topic]));
  assert(allows([{ Effect: "Allow", Action: "iot:Connect", Resource: `${ARN}client/board-1` }], [
    "iot:Connect",
    "board-1",
  ]));
});

Deno.test("policy: * and ? in actions and resources; MQTT's + and # are plain characters; resources are case-sensitive", () => {
  const statement = (Action: unknown, Resource: unknown) => ({ Effect: "Allow", Action, Resource });
  assert(allows([statement("iot:Pub*", `${ARN}topic/a/*`)], ["iot:Publish", "a/b/c"]));
  assert(allows([statement("IOT:PUBLISH", `${ARN}topic/a/?`)], ["iot:Publish", "a/b"]));
  assert(!allows([statement("iot:Publish", `${ARN}topic/a/?`)], ["iot:Publish", "a/bc"]));
  assert(!allows([statement("iot:Publish", `${ARN}topic/A/*`)], ["iot:Publish", "a/b"]));
  assert(allows([statement("*", "*")], ["iot:Receive", "x"]));
  // + and # are literal: they match only themselves.
  const hash = statement("iot:Subscribe", `${ARN}topicfilter/$aws/certificates/create/#`);
  assert(!allows([hash], ["iot:Subscribe", "$aws/certificates/create/json/accepted"]));
  assert(allows([hash], ["iot:Subscribe", "$aws/certificates/create/#"]));
  const plus = statement("iot:Subscribe", `${ARN}topicfilter/a/+/c`);
  assert(!allows([plus], ["iot:Subscribe", "a/b/c"]));
  assert(allows([plus], ["iot:Subscribe", "a/+/c"]));
  // ${*}, ${?}, ${$} are the literal characters.
  const literal = statement("iot:Publish", `${ARN}topic/a/\${*}`);
  assert(allows([literal], ["iot:Publish", "a/*"]));
  assert(!allows([literal], ["iot:Publish", "a/b"]));
});

Deno.test("policy: ${iot:ClientId} and certificate variables resolve; thing variables do not on a claim connection", async () => {
  const statement = (resource: string) => ({
    Effect: "Allow",
    Action: "iot:Publish",
    Resource: `${ARN}topic/${resource}`,
  });
  assert(allows([statement("d/${iot:ClientId}/x")], ["iot:Publish", "d/board-1/x"]));
  assert(!allows([statement("d/${iot:ClientId}/x")], ["iot:Publish", "d/board-2/x"]));
  const thing = statement("d/${iot:Connection.Thing.ThingName}");
  assert(!allows([thing], ["iot:Publish", "d/board-1"]));
  assert(!allows([thing], ["iot:Publish", "d/"]));
  assert(allows([thing], ["iot:Publish", "d/board-1"], {
    variables: { clientId: "board-1", thingName: "board-1" },
  }));
  // An unresolved variable in a Deny denies nothing either.
  const deny = { ...thing, Effect: "Deny" };
  assert(allows([statement("*"), deny], ["iot:Publish", "d/board-1"]));

  const { certificate: x509 } = await selfSignedCertificate("claim-batch-7");
  const certificate = certificateFacts(x509.toString("pem"));
  assertEquals(certificate.subject.CommonName, "claim-batch-7");
  assertMatch(certificate.id, /^[0-9a-f]{64}$/);
  const byCn = statement("batch/${iot:Certificate.Subject.CommonName}/*");
  const variables = { clientId: "board-1", certificate };
  assert(allows([byCn], ["iot:Publish", "batch/claim-batch-7/x"], { variables }));
  assert(!allows([byCn], ["iot:Publish", "batch/claim-batch-7/x"]));
  const byId = statement("c/${iot:CertificateId}");
  assert(allows([byId], ["iot:Publish", `c/${certificate.id}`], { variables }));
  // An attribute the certificate lacks does not resolve.
  const missing = statement("o/${iot:Certificate.Subject.Organization}");
  assert(!allows([missing], ["iot:Publish", "o/"], { variables }));
});

Deno.test("policy: region and account are checked when known, from the endpoint name and --account", () => {
  assertEquals(scopeOfEndpoint("abc123-ats.iot.eu-west-1.amazonaws.com"), {
    partition: "aws",
    region: "eu-west-1",
  });
  assertEquals(scopeOfEndpoint("abc-ats.iot.cn-north-1.amazonaws.com.cn")?.partition, "aws-cn");
  assertEquals(scopeOfEndpoint("a.iot.us-gov-west-1.amazonaws.com")?.partition, "aws-us-gov");
  assertEquals(scopeOfEndpoint("localhost"), undefined);
  assertEquals(scopeOfEndpoint("iot.example.com"), undefined);

  const statement = {
    Effect: "Allow",
    Action: "iot:Publish",
    Resource: "arn:aws:iot:us-east-1:123456789012:topic/a",
  };
  assert(allows([statement], ["iot:Publish", "a"]));
  assert(allows([statement], ["iot:Publish", "a"], { scope: { region: "us-east-1" } }));
  assert(!allows([statement], ["iot:Publish", "a"], { scope: { region: "eu-west-1" } }));
  assert(!allows([statement], ["iot:Publish", "a"], { scope: { account: "210987654321" } }));
  assert(!allows([statement], ["iot:Publish", "a"], { scope: { partition: "aws-cn" } }));
  const anyRegion = { ...statement, Resource: "arn:aws:iot:*:*:topic/a" };
  assert(allows([anyRegion], ["iot:Publish", "a"], { scope: { region: "eu-west-1" } }));
  const short = { ...statement, Resource: "arn:aws:iot:eu-west-1:*" };
  assert(allows([short], ["iot:Publish", "a"], { scope: { region: "eu-west-1" } }));
  assert(!allows([short], ["iot:Publish", "a"], { scope: { region: "us-east-1" } }));
  // Another service's ARN and a resource that is not an ARN match nothing.
  assert(!allows([{ ...statement, Resource: "arn:aws:s3:::bucket/*" }], ["iot:Publish", "a"]));
  assert(!allows([{ ...statement, Resource: "topic/a" }], ["iot:Publish", "a"]));
});

Deno.test("policy: NotAction and NotResource cover everything else; a Condition makes an Allow grant nothing and a Deny apply", () => {
  const notAction = { Effect: "Allow", NotAction: "iot:Publish", Resource: "*" };
  assert(allows([notAction], ["iot:Subscribe", "a"]));
  assert(!allows([notAction], ["iot:Publish", "a"]));
  const notResource = { Effect: "Deny", Action: "iot:*", NotResource: `${ARN}topic/ok/*` };
  const all = { Effect: "Allow", Action: "iot:*", Resource: "*" };
  assert(allows([all, notResource], ["iot:Publish", "ok/1"]));
  assert(!allows([all, notResource], ["iot:Publish", "other"]));

  const condition = { Bool: { "iot:Connection.Thing.IsAttached": "true" } };
  assert(!allows([{ ...all, Condition: condition }], ["iot:Publish", "a"]));
  const deny = { Effect: "Deny", Action: "iot:Publish", Resource: "*", Condition: condition };
  assert(!allows([all, deny], ["iot:Publish", "a"]));
});

Deno.test("policy: problems are findings naming the statement; a broken statement is left out, never a crash", () => {
  const parsed = parsePolicy({
    Version: "2012-10-17",
    Statement: [
      { Sid: "Typo", Effect: "Allow", Action: "iot:Subscibe", Resource: "*" },
      { Effect: "Allow", Action: "iot:Publish", Resource: `${ARN}topics/a` },
      { Effect: "Allow", Action: ["iot:Receive", 7], Resource: "*" },
      { Effect: "Permit", Action: "iot:Connect", Resource: "*" },
      { Effect: "Allow", Action: "iot:Connect", NotAction: "iot:Publish", Resource: "*" },
      "not an object",
      { Effect: "Allow", Action: ["s3:GetObject", "greengrass:*"], Resource: "*", Condition: {} },
      { Effect: "Allow", Action: "iot:Publish", Resource: `${ARN}topic/\${aws:Username}` },
    ],
  }, "p.json");
  const lines = parsed.problems.map((p) => `${p.severity} ${p.statement ?? "-"} ${p.message}`);
  assertEquals(parsed.statements.map((s) => s.index), [1, 2, 7, 8], lines.join("\n"));
  const expect = [
    /^warning 1 has action "iot:Subscibe", which AWS IoT does not define \(did you mean iot:Subscribe\?\)/,
    /^warning 2 has resource .*whose type "topics" AWS IoT does not have/,
    /^error 3 has "Action" that is not a string or a list of strings/,
    /^error 4 has no "Effect" Allow or Deny/,
    /^error 5 has both "Action" and "NotAction"/,
    /^error 6 is not an object/,
    /^warning 7 has a "Condition"/,
    // greengrass:* is in the Greengrass V2 guide's device policies: not a finding.
    /^warning 7 has action "s3:GetObject", which is not an AWS IoT action/,
    /^warning 8 uses \$\{aws:Username\}.*matches nothing/,
  ];
  assertEquals(lines.length, expect.length, lines.join("\n"));
  expect.forEach((pattern, i) => assertMatch(lines[i], pattern));
  for (const junk of [null, 7, "x", [], { Statement: "x" }, { Statement: [[]] }]) {
    const p = parsePolicy(junk, "junk");
    assert(p.problems.some((problem) => problem.severity === "error"));
    assertEquals(
      evaluate([p], { action: "iot:Connect", name: "c" }, { variables: CLAIM }).allowed,
      false,
    );
  }
});

Deno.test("policy: a denial is explained by the statement that causes it, with the statement that fixes it", () => {
  const topic = "$aws/certificates/create/json/accepted";
  const explain = (statements: unknown[], action: IotAction, name = topic, scope?: ArnScope) =>
    explainDenial([parsePolicy({ Statement: statements }, "claim.json")], { action, name }, {
      context: { variables: CLAIM, scope },
    });

  const wrongType = explain([
    { Effect: "Allow", Action: "iot:Subscribe", Resource: `${ARN}topic/$aws/certificates/*` },
  ], "iot:Subscribe");
  assertMatch(
    wrongType.because,
    /^statement 1 grants iot:Subscribe on topic\/… .*while AWS IoT checks iot:Subscribe against topicfilter\/ ARNs$/,
  );
  assertEquals(wrongType.add, {
    Effect: "Allow",
    Action: "iot:Subscribe",
    Resource: `arn:aws:iot:*:*:topicfilter/${topic}`,
  });
  assertEquals(wrongType.fix, `add ${JSON.stringify(wrongType.add)}`);

  const deny = explain([
    { Effect: "Allow", Action: "iot:*", Resource: "*" },
    { Sid: "NoCreate", Effect: "Deny", Action: "iot:Subscribe", Resource: "*" },
  ], "iot:Subscribe");
  assertMatch(
    deny.because,
    /^statement 2 \(Sid "NoCreate"\) of claim.json denies it, and an explicit Deny wins/,
  );
  assertEquals(deny.add, undefined);
  assertMatch(
    deny.fix,
    /^narrow statement 2 \(Sid "NoCreate"\) of claim.json so it does not cover/,
  );

  assertMatch(
    explain(
      [{ Effect: "Allow", Action: "iot:Subscribe", Resource: `${ARN}topicfilter/$aws/#` }],
      "iot:Subscribe",
    ).because,
    /MQTT wildcards \+ and # are plain characters in a policy: use \* instead/,
  );
  assertMatch(
    explain(
      [{ Effect: "Allow", Action: "iot:Publish", Resource: `${ARN}topic/$aws/*` }],
      "iot:Receive",
    ).because,
    /^statement 1 covers topic\/\$aws\/certificates\/create\/json\/accepted for iot:Publish but not for iot:Receive$/,
  );
  assertMatch(
    explain(
      [{ Effect: "Allow", Action: "iot:Recieve", Resource: `${ARN}topic/$aws/*` }],
      "iot:Receive",
    ).because,
    /has "iot:Recieve", which is not an AWS IoT action \(did you mean iot:Receive\?\)/,
  );
  assertMatch(
    explain(
      [{
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: `${ARN}client/\${iot:Connection.Thing.ThingName}`,
      }],
      "iot:Connect",
      "board-1",
    ).because,
    /does not resolve on this connection \(a claim certificate has no thing attached\)/,
  );
  const region = explain(
    [{ Effect: "Allow", Action: "iot:Receive", Resource: `${ARN}topic/$aws/*` }],
    "iot:Receive",
    topic,
    { region: "us-west-2" },
  );
  assertMatch(region.because, /names another region than the endpoint's \(us-west-2\)/);
  assertEquals(region.add?.Resource, `arn:aws:iot:us-west-2:*:topic/${topic}`);
  assertMatch(
    explain(
      [{ Effect: "Allow", Action: "iot:Receive", Resource: "*", Condition: {} }],
      "iot:Receive",
    ).because,
    /has a "Condition", which is not evaluated/,
  );
  assertEquals(
    explain([], "iot:Publish", "$aws/x").because,
    "no statement allows iot:Publish on arn:aws:iot:*:*:topic/$aws/x",
  );
  const alternative = explainDenial(
    [parsePolicy({
      Statement: [{ Effect: "Allow", Action: "iot:Publish", Resource: `${ARN}topic/a/json` }],
    }, "p")],
    { action: "iot:Publish", name: "a/cbor" },
    { context: { variables: CLAIM }, alternatives: [{ name: "a/json", why: "JSON, not CBOR" }] },
  );
  assertEquals(
    alternative.because,
    "statement 1 allows iot:Publish on topic/a/json, not on topic/a/cbor: JSON, not CBOR",
  );
  assertEquals(allowStatement("iot:Subscribe", ["a", "b"], { region: "eu-west-1", account: "1" }), {
    Effect: "Allow",
    Action: "iot:Subscribe",
    Resource: ["arn:aws:iot:eu-west-1:1:topicfilter/a", "arn:aws:iot:eu-west-1:1:topicfilter/b"],
  });
});
