// SPDX-License-Identifier: Apache-2.0
/**
 * One evaluator: for each claim policy of tests/lint_corpus/, `fleetprov
 * lint` runs on a board's arguments and the real CLI provisions with the
 * same arguments against the emulator started with that policy, over MQTT
 * 3.1.1 and 5. Each policy lint flags is refused by the emulator at the
 * action lint names first (the same packet and topic, so the same step),
 * and the board fails; each policy lint passes provisions, with no refusal
 * on the way. Over MQTT 5 the board's error line names the packet, the topic
 * and the statement lint adds. The same for templates (tests/lint_corpus/templates/,
 * AWS's published ones) and for the rotation (tests/lint_corpus/rotation/):
 * each board is linted, then provisioned or rotated by the real CLI, which
 * fails at the step lint names first or succeeds when lint passes.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertNotEquals } from "./support/assert.ts";
import {
  activeCertificateId,
  assertConnects,
  assertRotated,
  AWS_CLI,
  awsCliMissing,
  awsIot,
  boardEmulator,
  deviceArgs,
  deviceHome,
  oneLineError,
  ROOT,
  runFleetprov,
  runtimeConfigIfAny,
  skipWhenMissing,
  tempDir,
  TEMPLATE_NAME,
  type TestEmulator,
  testEmulator,
} from "./support/mod.ts";
import { claimPolicy } from "../src/emulator/defaults.ts";
import { runLintCommand } from "../src/commands/lint.ts";
import { ExitCode } from "../src/errors.ts";
import type { Finding } from "../src/lint/mod.ts";

const CORPUS = join(ROOT, "tests", "lint_corpus");
const CLIENT_ID = "board-lint-1";
/** Fast enough for three silent timeouts: 1 s per answer. */
const RETRY = [
  "--step-timeout",
  "1",
  "--deadline",
  "20",
  "--retry-base-delay",
  "0.02",
  "--retry-max-delay",
  "0.1",
];

/** An MQTT action as the broker refused it, or as lint names it. */
interface Refusal {
  action: string;
  name: string;
}

interface Case {
  file: string;
  /** The board's own flags. */
  extra: string[];
  /** What lint names first and the emulator refuses first; undefined: it provisions. */
  refused?: Refusal & { step: string; because: RegExp };
}

const CSR = ["--generate-key", "ec-p256"];
const CASES: Case[] = [
  { file: "aws_docs_claim_policy.json", extra: [] },
  { file: "aws_docs_with_csr.json", extra: CSR },
  { file: "aws_docs_with_csr.json", extra: ["--payload-format", "cbor"] },
  {
    file: "subscribe_on_topic.json",
    extra: [],
    refused: {
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create/json/accepted",
      because: /grants iot:Subscribe on topic\/… .*checks iot:Subscribe against topicfilter\/ ARNs/,
    },
  },
  {
    file: "aws_docs_claim_policy.json",
    extra: CSR,
    refused: {
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create-from-csr/json/accepted",
      because: /CreateKeysAndCertificate's topics, but the device uses CreateCertificateFromCsr/,
    },
  },
  {
    file: "json_only.json",
    extra: ["--payload-format", "cbor"],
    refused: {
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create/cbor/accepted",
      because: /the JSON topics, but the device sends CBOR/,
    },
  },
  {
    file: "other_template.json",
    extra: [],
    refused: {
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/provisioning-templates/BoardTemplate/provision/json/accepted",
      because: /template LegacyTemplate's topics, but the device asks for template BoardTemplate/,
    },
  },
  {
    file: "no_receive_on_accepted.json",
    extra: [],
    refused: {
      step: "CreateKeysAndCertificate",
      action: "iot:Receive",
      name: "$aws/certificates/create/json/accepted",
      because:
        /statement 2 covers topic\/\$aws\/certificates\/create\/json\/accepted for iot:Publish but not for iot:Receive/,
    },
  },
  {
    file: "explicit_deny.json",
    extra: [],
    refused: {
      step: "RegisterThing",
      action: "iot:Publish",
      name: "$aws/provisioning-templates/BoardTemplate/provision/json",
      because: /statement 4 \(Sid "NoRegistrationDuringFreeze"\) of .* denies it/,
    },
  },
  {
    file: "misspelt_action.json",
    extra: [],
    refused: {
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create/json/accepted",
      because: /"iot:Subscibe", which is not an AWS IoT action \(did you mean iot:Subscribe\?\)/,
    },
  },
  {
    file: "connect_as_thing.json",
    extra: [],
    refused: {
      step: "connect",
      action: "iot:Connect",
      name: CLIENT_ID,
      because: /\$\{iot:Connection\.Thing\.ThingName\} does not resolve.*no thing attached/,
    },
  },
  {
    file: "mqtt_wildcard.json",
    extra: [],
    refused: {
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create/json/accepted",
      because: /MQTT wildcards \+ and # are plain characters in a policy/,
    },
  },
];

/** The corpus file with the emulator's region, account and template in place of the docs'. */
function policyFor(file: string): { path: string; document: unknown } {
  const text = readFileSync(join(CORPUS, file), "utf8")
    .replaceAll("aws-region", "us-east-1")
    .replaceAll("aws-account-id", "123456789012")
    .replaceAll("templateName", "BoardTemplate");
  const path = join(tempDir("fleetprov-lint-"), file);
  writeFileSync(path, text);
  return { path, document: JSON.parse(text) };
}

/** Runs lint in this process on the board's arguments; its JSON report. */
async function lint(args: string[], home: string) {
  let output = "";
  const code = await runLintCommand(args, { json: true, stdout: (t) => (output += t), home });
  const report = JSON.parse(output) as { exitCode: number; findings: Finding[] };
  assertEquals(report.exitCode, code);
  return report;
}

for (const c of CASES) {
  const label = `${c.file}${c.extra.length ? ` (${c.extra.join(" ")})` : ""}`;
  Deno.test(`lint agrees with the emulator: ${label} ${c.refused ? "is refused at " + c.refused.step : "provisions"}`, async () => {
    const policy = policyFor(c.file);
    const emulator = await boardEmulator({ claimPolicy: policy.document, keyType: "ec-p256" });
    try {
      const refusals: Refusal[] = [];
      emulator.events.on("violation", (e) => refusals.push({ action: e.action, name: e.name }));
      emulator.events.on("connect", (e) => {
        if (!e.accepted && /iot:Connect/.test(e.reason ?? "")) {
          refusals.push({ action: "iot:Connect", name: e.clientId });
        }
      });
      const args = deviceArgs(emulator, {
        serial: "SN-LINT",
        extra: ["--client-id", CLIENT_ID, ...c.extra],
        retry: RETRY,
      });
      const report = await lint([...args, "--claim-policy", policy.path], deviceHome());
      const errors = report.findings.filter((f) => f.severity === "error");
      if (!c.refused) assertEquals(errors, [], JSON.stringify(errors, null, 2));
      else {
        assertEquals(report.exitCode, ExitCode.Config);
        const first = errors[0];
        assertEquals(
          { step: first.step, action: first.action, name: first.name },
          { step: c.refused.step, action: c.refused.action, name: c.refused.name },
        );
        assertMatch(first.message, c.refused.because);
        if (first.add) assertEquals(first.add.Action, c.refused.action);
        else assertMatch(first.fix ?? "", /^narrow statement \d+ .* so it does not cover arn:/);
      }
      for (const version of ["3.1.1", "5"]) {
        refusals.length = 0;
        const result = await runFleetprov([...args, "--mqtt-version", version], {
          home: deviceHome(),
        });
        const output = result.stdout + result.stderr;
        if (!c.refused) {
          assertEquals(result.code, ExitCode.Ok, `MQTT ${version}: ${output}`);
          assertEquals(refusals, [], `MQTT ${version}`);
          continue;
        }
        assertNotEquals(result.code, ExitCode.Ok, `MQTT ${version}: ${output}`);
        assert(refusals.length > 0, `MQTT ${version}: the emulator refused nothing:\n${output}`);
        assertEquals(
          refusals[0],
          { action: c.refused.action, name: c.refused.name },
          `MQTT ${version}`,
        );
        if (version === "5" && c.refused.action !== "iot:Receive") {
          // The board's line names a packet lint flags, its topic, and the statement lint adds
          // (with * for the region and account the board cannot know). Which of the refused
          // packets the board meets first is the broker's order: any of lint's errors will do.
          const line = oneLineError(result, true);
          const named = errors.filter((f) => f.action !== "iot:Connect").some((f) => {
            const type = f.action === "iot:Subscribe" ? "topicfilter" : "topic";
            const statement =
              `"Action":"${f.action}","Resource":"arn:aws:iot:*:*:${type}/${f.name}"`;
            return line.includes(` for ${f.name}: `) && line.includes(statement);
          });
          assert(named || c.refused.action === "iot:Connect", line);
        }
      }
    } finally {
      await emulator.close();
    }
  });
}

// ---------------------------------------------------------------------------
// Templates: tests/lint_corpus/templates/ and AWS's published examples
// (tests/fixtures/aws_templates/). Each template is linted for a board told of
// the emulator's account (every policy with --policy as `aws iot get-policy`
// prints it, and the listings `--inventory` reads), then created in the
// emulator through its control plane (CreateProvisioningTemplate, what `aws
// iot create-provisioning-template` sends). A template lint refuses at
// CreateProvisioningTemplate is refused there and at emulator start with the
// same findings; any other is provisioned by the real CLI and fails at the
// step lint names (RegisterThing with the rejection lint predicts, or the
// proof CONNECT as the thing lint names), or provisions when lint passes.

const TEMPLATES = join(CORPUS, "templates");
const SERIAL = "SN-LINT-0001";
const ROLE = "arn:aws:iam::123456789012:role/FleetProvisioning";

/** What the account holds besides the emulator's defaults (FPCertPolicy, the claim policy). */
interface Account {
  policies?: Record<string, unknown>;
  thingGroups?: string[];
  thingTypes?: string[];
  billingGroups?: string[];
}

type TemplateVerdict =
  | { step: "CreateProvisioningTemplate"; paths: string[] }
  | {
    step: "RegisterThing";
    /** Undefined: RegisterThing is accepted, and the board cannot use its answer. */
    rejection?: { statusCode: number; errorCode: string };
    because: RegExp;
  }
  | { step: "proof"; because: RegExp };

interface TemplateCase {
  /** Under tests/lint_corpus/templates/, or `aws:NAME` for tests/fixtures/aws_templates/NAME.json. */
  file: string;
  /** The board's template parameters (default: SerialNumber). */
  parameters?: Record<string, string>;
  account?: Account;
  /** Created with enabled false (linted from describe-provisioning-template's output). */
  disabled?: boolean;
  /** What lint and the emulator say; undefined: it provisions. */
  verdict?: TemplateVerdict;
}

const GREENGRASS_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: ["iot:Connect", "iot:Publish"], Resource: "*" }],
};

const TEMPLATE_CASES: TemplateCase[] = [
  { file: "board_template.json" },
  { file: "thing_policy.json" },
  { file: "aws:device_client_sample", parameters: {} },
  {
    file: "aws:greengrass_fleet_provisioning",
    parameters: { ThingName: "MyGreengrassCore", ThingGroupName: "MyGreengrassCoreGroup" },
    account: {
      policies: { GreengrassV2IoTThingPolicy: GREENGRASS_POLICY },
      thingGroups: ["MyGreengrassCoreGroup"],
    },
  },
  {
    // The developer guide's example: every resource it names exists, but its one
    // (inline) policy allows iot:Publish only: the thing's certificate cannot connect.
    file: "aws:developer_guide_fleet_example",
    parameters: { ThingName: "MyLightBulb", SerialNumber: "12345", DeviceLocation: "Seattle" },
    account: {
      thingTypes: ["ThingPrefix_12345"],
      thingGroups: ["v1-lightbulbs", "WA"],
      billingGroups: ["LightBulbBillingGroup"],
    },
    verdict: {
      step: "proof",
      because: /needs iot:Connect, but no statement allows iot:Connect on .*client\/MyLightBulb/,
    },
  },
  {
    file: "aws:developer_guide_hook_example",
    parameters: { SerialNumber: "12345", DeviceLocation: "Seattle" },
    verdict: {
      step: "CreateProvisioningTemplate",
      paths: [
        '$.Resources.thing.Properties.ThingName["Fn::Join"][1][1].Ref',
        '$.Resources.thing.Properties.ThingTypeName["Fn::Join"][1][1].Ref',
      ],
    },
  },
  {
    file: "aws:developer_guide_bulk_example",
    verdict: {
      step: "CreateProvisioningTemplate",
      paths: [
        "$.Resources.certificate.Properties.CertificateSigningRequest",
        "$.Resources.certificate.Properties.CertificateId",
      ],
    },
  },
  {
    file: "missing_parameter.json",
    verdict: {
      step: "RegisterThing",
      rejection: { statusCode: 400, errorCode: "InvalidParameters" },
      because: /declares Location without a "Default" and the device does not send it/,
    },
  },
  {
    file: "undeclared_ref.json",
    verdict: {
      step: "CreateProvisioningTemplate",
      paths: ['$.Resources.thing.Properties.ThingName["Fn::Join"][1][1].Ref'],
    },
  },
  {
    file: "no_thing.json",
    verdict: { step: "RegisterThing", because: /has no AWS::IoT::Thing resource/ },
  },
  {
    file: "no_certificate.json",
    verdict: {
      step: "RegisterThing",
      rejection: { statusCode: 400, errorCode: "ResourceRegistrationFailure" },
      because: /The template has no AWS::IoT::Certificate resource/,
    },
  },
  {
    file: "body_too_long.json",
    verdict: { step: "CreateProvisioningTemplate", paths: ["templateBody"] },
  },
  {
    file: "thing_name_invalid.json",
    verdict: {
      step: "RegisterThing",
      rejection: { statusCode: 400, errorCode: "ResourceRegistrationFailure" },
      because: /Thing name "boards\/SN-LINT-0001" may contain only/,
    },
  },
  {
    file: "thing_name_too_long.json",
    verdict: {
      step: "RegisterThing",
      rejection: { statusCode: 400, errorCode: "ResourceRegistrationFailure" },
      because: /is longer than 128 bytes/,
    },
  },
  {
    file: "too_many_attributes.json",
    verdict: {
      step: "CreateProvisioningTemplate",
      paths: ["$.Resources.thing.Properties.AttributePayload"],
    },
  },
  {
    file: "fn_if.json",
    verdict: {
      step: "CreateProvisioningTemplate",
      paths: ['$.Resources.thing.Properties.ThingName["Fn::If"]'],
    },
  },
  {
    file: "fn_getatt.json",
    verdict: {
      step: "CreateProvisioningTemplate",
      paths: ['$.Resources.thing.Properties.AttributePayload.certificate["Fn::GetAtt"]'],
    },
  },
  {
    file: "inline_policy_invalid.json",
    verdict: {
      step: "CreateProvisioningTemplate",
      paths: ["$.Resources.policy.Properties.PolicyDocument"],
    },
  },
  {
    file: "missing_thing_group.json",
    verdict: {
      step: "RegisterThing",
      rejection: { statusCode: 400, errorCode: "ResourceRegistrationFailure" },
      because: /names thing group plant-7 \(ThingGroups\), which the account does not have/,
    },
  },
  {
    file: "missing_policy.json",
    verdict: {
      step: "RegisterThing",
      rejection: { statusCode: 400, errorCode: "ResourceRegistrationFailure" },
      because: /names policy DevicePolicy \(PolicyName\), which the account does not have/,
    },
  },
  {
    file: "board_template.json",
    disabled: true,
    verdict: {
      step: "RegisterThing",
      rejection: { statusCode: 400, errorCode: "InvalidRequest" },
      because: /is disabled \(enabled: false\)/,
    },
  },
  {
    file: "no_policy.json",
    verdict: { step: "proof", because: /attaches no AWS::IoT::Policy to the new certificate/ },
  },
  {
    file: "proof_refused.json",
    verdict: {
      step: "proof",
      because: /no statement allows iot:Connect on .*client\/board-SN-LINT-0001/,
    },
  },
  {
    file: "proof_denied.json",
    verdict: {
      step: "proof",
      because: /statement 1 \(Sid "Quarantine"\) of the template's PolicyDocument #2 denies it/,
    },
  },
];

/** The template's text, as a file holds it and the AWS CLI sends it. */
function templateText(file: string): string {
  if (!file.startsWith("aws:")) return readFileSync(join(TEMPLATES, file), "utf8");
  const path = join(ROOT, "tests", "fixtures", "aws_templates", `${file.slice(4)}.json`);
  return JSON.stringify(JSON.parse(readFileSync(path, "utf8")).template, null, 2);
}

/** A control-plane request to the emulator; its status and JSON answer. */
async function control(
  emulator: { control?: { url: string } },
  request: { method: string; path: string; body?: unknown },
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${emulator.control!.url}${request.path}`, {
    method: request.method,
    ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : {} };
}

/** CreateProvisioningTemplate through the control plane, as the AWS CLI sends it. */
function createTemplate(emulator: { control?: { url: string } }, text: string, enabled: boolean) {
  return control(emulator, {
    method: "POST",
    path: "/provisioning-templates",
    body: {
      templateName: TEMPLATE_NAME,
      templateBody: text,
      provisioningRoleArn: ROLE,
      enabled,
    },
  });
}

/** What lint is told of the account: each policy as get-policy prints it, each listing. */
async function accountFlags(emulator: { control?: { url: string } }): Promise<string[]> {
  const dir = tempDir("fleetprov-lint-account-");
  const flags: string[] = [];
  const save = (name: string, json: unknown, flag: string) => {
    writeFileSync(join(dir, name), JSON.stringify(json));
    flags.push(flag, join(dir, name));
  };
  const listings = ["/policies", "/thing-groups", "/thing-types", "/billing-groups"];
  for (const path of listings) {
    const listed = await control(emulator, { method: "GET", path });
    assertEquals(listed.status, 200, path);
    save(`${path.slice(1)}.json`, listed.json, "--inventory");
  }
  const policies = (await control(emulator, { method: "GET", path: "/policies" })).json
    .policies as { policyName: string }[];
  for (const { policyName } of policies) {
    const got = await control(emulator, { method: "GET", path: `/policies/${policyName}` });
    save(`policy-${policyName}.json`, got.json, "--policy");
  }
  return flags;
}

/** The account's extra resources, created through the control plane. */
async function createAccount(emulator: { control?: { url: string } }, account: Account = {}) {
  const kinds: [string[] | undefined, string][] = [
    [account.thingGroups, "/thing-groups/"],
    [account.thingTypes, "/thing-types/"],
    [account.billingGroups, "/billing-groups/"],
  ];
  for (const [names, path] of kinds) {
    for (const name of names ?? []) {
      const created = await control(emulator, { method: "POST", path: path + name, body: {} });
      assertEquals(created.status, 200, `${path}${name}: ${JSON.stringify(created.json)}`);
    }
  }
}

function label(c: TemplateCase): string {
  const verdict = c.verdict;
  return `${c.file}${c.disabled ? " (disabled)" : ""} ${
    !verdict ? "provisions" : `is refused at ${verdict.step}`
  }`;
}

for (const c of TEMPLATE_CASES) {
  Deno.test(`lint agrees with the emulator on templates: ${label(c)}`, async () => {
    const text = templateText(c.file);
    const file = join(tempDir("fleetprov-lint-template-"), "template.json");
    writeFileSync(file, text);
    const emulator = await testEmulator({
      templateName: "DefaultTemplate",
      claimPolicy: claimPolicy(TEMPLATE_NAME),
      policies: c.account?.policies,
      keyType: "ec-p256",
      controlPort: 0,
    });
    try {
      await templateAgreement(c, { emulator, text, file });
    } finally {
      await emulator.close();
    }
  });
}

async function templateAgreement(
  c: TemplateCase,
  run: { emulator: TestEmulator; text: string; file: string },
): Promise<void> {
  const { emulator, text } = run;
  const parameters = c.parameters ?? { SerialNumber: SERIAL };
  // A refused proof is retried until the deadline (AWS attaches policies with a lag), and so
  // is an answer the board cannot use (a malformed answer may be a garbled one).
  const retried = c.verdict?.step === "proof" ||
    (c.verdict?.step === "RegisterThing" && !c.verdict.rejection);
  const args = deviceArgs(emulator, {
    extra: [
      "--client-id",
      CLIENT_ID,
      "--fleet-provisioning-template-name",
      TEMPLATE_NAME,
      "--fleet-provisioning-template-parameters",
      JSON.stringify(parameters),
      ...(retried ? ["--deadline", "6"] : []),
    ],
    retry: RETRY,
  });
  await createAccount(emulator, c.account);
  const created = await createTemplate(emulator, text, !c.disabled);
  let lintFile = run.file;
  if (created.status === 200) {
    // Lint what AWS holds: describe-provisioning-template's output.
    const described = await control(emulator, {
      method: "GET",
      path: `/provisioning-templates/${TEMPLATE_NAME}`,
    });
    lintFile = join(tempDir("fleetprov-lint-describe-"), "describe.json");
    writeFileSync(lintFile, JSON.stringify(described.json));
  }
  const report = await lint([
    ...args,
    "--template",
    lintFile,
    ...await accountFlags(emulator),
  ], deviceHome());
  // The emulator's device config names its rotation template: whether these boards rotate is
  // the rotation corpus's (below); here, provisioning.
  const errors = report.findings.filter((f) => f.severity === "error" && f.phase !== "rotation");
  const verdict = c.verdict;
  if (verdict?.step === "CreateProvisioningTemplate") {
    return await refusedAtCreation({ verdict, errors, created, text });
  }
  assertEquals(created.status, 200, JSON.stringify(created.json));
  if (!verdict) {
    assertEquals(errors, [], JSON.stringify(errors, null, 2));
    const result = await runFleetprov(args, { home: deviceHome() });
    assertEquals(result.code, ExitCode.Ok, result.stdout + result.stderr);
    const thingName = (report as unknown as { device: { thingName: string } }).device.thingName;
    const expected = thingName.replace(/0{64}$/, "");
    assert(emulator.registry.things().some((t) => t.thingName.startsWith(expected)), thingName);
    return;
  }
  assertEquals(report.exitCode, ExitCode.Config);
  const first = errors[0];
  assertEquals(first.step, verdict.step, JSON.stringify(errors, null, 2));
  assertMatch(first.message, verdict.because);
  if (verdict.step === "RegisterThing") {
    return await refusedAtRegisterThing(verdict, { emulator, args, first });
  }
  await refusedAtProof(first, { emulator, args });
}

/** "PATH: MESSAGE" of a lint finding of CreateProvisioningTemplate, as the emulator words it. */
function creationProblem(finding: Finding): string {
  const at = finding.message.indexOf("; AWS refuses the template at CreateProvisioningTemplate");
  assert(at > 0, finding.message);
  return finding.message.slice(0, at);
}

/** Lint's findings are the emulator's refusals, at the control plane and at start. */
async function refusedAtCreation(
  check: {
    verdict: { paths: string[] };
    errors: Finding[];
    created: { status: number; json: Record<string, unknown> };
    text: string;
  },
): Promise<void> {
  const { verdict, errors, created, text } = check;
  assertEquals(errors.map((f) => [f.step, f.path]), [
    ...verdict.paths.map((path) => ["CreateProvisioningTemplate", path]),
  ]);
  assertEquals(created.status, 400, JSON.stringify(created.json));
  const answer = String(created.json.message);
  assertMatch(answer, /^The template body is invalid: /);
  for (const finding of errors) assert(answer.includes(creationProblem(finding)), answer);
  let refusal = "";
  try {
    const started = await testEmulator({ templateName: TEMPLATE_NAME, template: text });
    await started.close();
  } catch (error) {
    refusal = (error as Error).message;
  }
  assertMatch(refusal, /^The provisioning template BoardTemplate is not one AWS accepts: /);
  for (const finding of errors) assert(refusal.includes(creationProblem(finding)), refusal);
}

/** The board fails at RegisterThing: rejected with lint's status, or accepted without a thing. */
async function refusedAtRegisterThing(
  verdict: { rejection?: { statusCode: number; errorCode: string } },
  run: { emulator: TestEmulator; args: string[]; first: Finding },
): Promise<void> {
  const { emulator, args, first } = run;
  assertEquals(first.rejection, verdict.rejection);
  const answers: { accepted: boolean; rejection?: unknown }[] = [];
  emulator.events.on("answer", (e) => {
    if (e.operation === "RegisterThing") {
      answers.push({ accepted: e.accepted, ...(e.rejection ? { rejection: e.rejection } : {}) });
    }
  });
  const home = deviceHome();
  const result = await runFleetprov(args, { home });
  const output = result.stdout + result.stderr;
  assertNotEquals(result.code, ExitCode.Ok, output);
  assert(answers.length > 0, `no RegisterThing answer:\n${output}`);
  if (verdict.rejection) {
    assertEquals(answers[0], { accepted: false, rejection: verdict.rejection });
    const { statusCode, errorCode } = verdict.rejection;
    assertMatch(
      oneLineError(result, true),
      new RegExp(`statusCode=${statusCode} errorCode=${errorCode}`),
    );
  } else {
    // Accepted without a thing: the board refuses the answer at once (a person must fix the
    // template: exit 1, RegisterThing not asked again) and writes no runtime config.
    assertEquals(answers, [{ accepted: true }]);
    assertEquals(result.code, ExitCode.Rejected, output);
    assertMatch(
      oneLineError(result, true),
      /thingName is empty: the provisioning template registers no thing/,
    );
    assertEquals(runtimeConfigIfAny(home), undefined);
  }
}

/** RegisterThing is accepted; the new certificate's CONNECT as lint's thing is refused. */
async function refusedAtProof(
  first: Finding,
  run: { emulator: TestEmulator; args: string[] },
): Promise<void> {
  const { emulator, args } = run;
  assertEquals([first.packet, first.action], ["CONNECT", "iot:Connect"]);
  const refused: string[] = [];
  emulator.events.on("connect", (e) => {
    if (!e.accepted && e.certificateId !== emulator.claim.certificateId) refused.push(e.clientId);
  });
  const result = await runFleetprov(args, { home: deviceHome() });
  const output = result.stdout + result.stderr;
  assertEquals(result.code, ExitCode.TempFail, output);
  assertEquals(emulator.counters.RegisterThing.accepted, 1, output);
  assert(refused.length > 0, `the emulator refused no proof:\n${output}`);
  assertEquals([...new Set(refused)], [first.name]);
  assertMatch(oneLineError(result, true), /the new certificate could not connect/);
}

/** Skipped loudly without Debian's AWS CLI; under FLEETPROV_REQUIRE_TOOLS=1 (CI) a failure. */
const noAwsCli = skipWhenMissing(awsCliMissing(), {
  require: "FLEETPROV_REQUIRE_TOOLS",
  what: "lint against the AWS CLI's output",
});

Deno.test(
  "lint agrees with the emulator through the AWS CLI: create-provisioning-template refuses with lint's findings; lint reads describe-provisioning-template, get-policy and the list commands as the CLI prints them",
  { ignore: noAwsCli },
  async () => {
    const emulator = await testEmulator({
      templateName: "DefaultTemplate",
      claimPolicy: claimPolicy(TEMPLATE_NAME),
      keyType: "ec-p256",
      controlPort: 0,
    });
    const dir = tempDir("fleetprov-lint-cli-");
    const aws = (...args: string[]) => awsIot(AWS_CLI, emulator.control!.url, args);
    const saved = async (name: string, ...args: string[]) => {
      const result = await aws(...args);
      assertEquals(result.code, 0, `aws iot ${args[0]}: ${result.stderr}`);
      writeFileSync(join(dir, name), result.stdout);
      return join(dir, name);
    };
    const args = deviceArgs(emulator, {
      serial: SERIAL,
      extra: ["--client-id", CLIENT_ID, "--fleet-provisioning-template-name", TEMPLATE_NAME],
    });
    try {
      for (const c of TEMPLATE_CASES) {
        if (c.verdict?.step !== "CreateProvisioningTemplate" || c.file.startsWith("aws:")) continue;
        const file = join(dir, c.file);
        writeFileSync(file, templateText(c.file));
        const errors = (await lint([...args, "--template", file], deviceHome())).findings;
        assertEquals(errors.map((f) => f.path), c.verdict.paths);
        const created = await aws(
          "create-provisioning-template",
          "--template-name",
          "Refused",
          "--template-body",
          `file://${file}`,
          "--provisioning-role-arn",
          ROLE,
        );
        assertNotEquals(created.code, 0, c.file);
        assertMatch(created.stderr, /\(InvalidRequestException\).*The template body is invalid: /);
        for (const f of errors) assert(created.stderr.includes(creationProblem(f)), created.stderr);
      }
      // A disabled template naming a thing group the account lacks: both found from the CLI's output.
      const file = join(dir, "template.json");
      writeFileSync(file, templateText("missing_thing_group.json"));
      const create = await aws(
        "create-provisioning-template",
        "--template-name",
        TEMPLATE_NAME,
        "--template-body",
        `file://${file}`,
        "--provisioning-role-arn",
        ROLE,
        "--no-enabled",
      );
      assertEquals(create.code, 0, create.stderr);
      const told = async () => [
        "--template",
        await saved(
          "describe.json",
          "describe-provisioning-template",
          "--template-name",
          TEMPLATE_NAME,
        ),
        "--policy",
        await saved("fpcert.json", "get-policy", "--policy-name", "FPCertPolicy"),
        "--inventory",
        await saved("policies.json", "list-policies"),
        "--inventory",
        await saved("groups.json", "list-thing-groups"),
      ];
      const before = await lint([...args, ...await told()], deviceHome());
      assertEquals(
        before.findings.filter((f) => f.severity === "error").map((f) => [f.step, f.rejection]),
        [
          ["RegisterThing", { statusCode: 400, errorCode: "InvalidRequest" }],
          ["RegisterThing", { statusCode: 400, errorCode: "ResourceRegistrationFailure" }],
        ],
      );
      for (
        const fix of before.findings.filter((f) => f.severity === "error").map((f) => f.fix!)
      ) {
        const [command, ...rest] = fix.replace(/^aws iot /, "").split(" ");
        const done = await aws(command, ...rest);
        assertEquals(done.code, 0, `${fix}: ${done.stderr}`);
      }
      const after = await lint([...args, ...await told()], deviceHome());
      assertEquals(after.findings.filter((f) => f.severity === "error"), []);
      const result = await runFleetprov(args, { home: deviceHome() });
      assertEquals(result.code, ExitCode.Ok, result.stdout + result.stderr);
      assertEquals(emulator.registry.thing(`board-${SERIAL}`)?.thingGroups, ["plant-7"]);
    } finally {
      await emulator.close();
    }
  },
);

// ---------------------------------------------------------------------------
// Rotation: tests/lint_corpus/rotation/. The emulator's default setup (its
// provisioning template, the Device Client's sample, which attaches
// FPCertPolicy; its rotation template FleetprovRotationTemplate with the
// rotation check; FPCertPolicy with the rotation's topics), with the case's
// device policy as FPCertPolicy or the case's rotation template (no hook) as
// FleetprovRotationTemplate. A board provisioned by the real CLI with the
// emulator's device config (which names the rotation template) is linted with
// the same config and what the control plane holds (both templates as
// describe-provisioning-template prints them, every policy and listing), then
// rotated by `fleetprov rotate --force` with the same config: it fails at the
// step lint names first (the packet and topic the emulator refuses, the
// RegisterThing rejection, the new certificate's CONNECT) or rotates when
// lint passes.

const ROTATION_CORPUS = join(CORPUS, "rotation");
const ROTATION_TEMPLATE = "FleetprovRotationTemplate";

type RotationVerdict =
  /** The device certificate's policy refuses a packet (of the next rotation: after one that works). */
  | { kind: "policy"; step: string; action: string; name: string; because: RegExp; next?: true }
  | { kind: "rejected"; rejection: { statusCode: number; errorCode: string }; because: RegExp }
  | { kind: "proof"; because: RegExp };

interface RotationCase {
  label: string;
  /** FPCertPolicy, under tests/lint_corpus/rotation/ (default: the emulator's). */
  devicePolicy?: string;
  /** FleetprovRotationTemplate, under tests/lint_corpus/rotation/ (default: the emulator's). */
  rotationTemplate?: string;
  /** The board's own flags. */
  extra?: string[];
  /** What lint and the emulator say; undefined: it rotates. */
  verdict?: RotationVerdict;
}

const ROTATION_CASES: RotationCase[] = [
  { label: "the emulator's default setup" },
  { label: "the README's device policy", devicePolicy: "device_policy.json" },
  {
    label: "a device policy for CreateKeysAndCertificate, rotation-key-source aws",
    devicePolicy: "create_only.json",
    extra: ["--rotation-key-source", "aws"],
  },
  {
    label: "the Device Client's sample FPCertPolicy (its thing's topics only)",
    devicePolicy: "device_client_sample.json",
    verdict: {
      kind: "policy",
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create-from-csr/json/accepted",
      because:
        /the rotation's SUBSCRIBE at CONNACK .* but no statement allows iot:Subscribe on .*:topicfilter\/\$aws\/certificates\/create-from-csr\/json\/accepted/,
    },
  },
  {
    label: "iot:Subscribe granted on topic/ ARNs",
    devicePolicy: "subscribe_on_topic.json",
    verdict: {
      kind: "policy",
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create-from-csr/json/accepted",
      because: /grants iot:Subscribe on topic\/… .*checks iot:Subscribe against topicfilter\/ ARNs/,
    },
  },
  {
    label: "another rotation template's topics",
    devicePolicy: "other_template.json",
    verdict: {
      kind: "policy",
      step: "subscribe",
      action: "iot:Subscribe",
      name: `$aws/provisioning-templates/${ROTATION_TEMPLATE}/provision/json/accepted`,
      because:
        /template BoardRotationTemplate's topics, but the device asks for template FleetprovRotationTemplate \(fleet-provisioning\.rotation-template-name\)/,
    },
  },
  {
    label: "CreateKeysAndCertificate's topics for a board that makes its key",
    devicePolicy: "create_only.json",
    verdict: {
      kind: "policy",
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create-from-csr/json/accepted",
      because: /CreateKeysAndCertificate's topics, but the rotation uses CreateCertificateFromCsr/,
    },
  },
  {
    label: "a rotation template that makes a new thing from a parameter the board does not send",
    rotationTemplate: "new_thing_from_parameter.json",
    verdict: {
      kind: "rejected",
      rejection: { statusCode: 400, errorCode: "InvalidParameters" },
      because: /declares DeviceSerial without a "Default" and the device does not send it/,
    },
  },
  {
    label: "a rotation template whose policy does not let the new certificate connect",
    rotationTemplate: "proof_refused.json",
    verdict: {
      kind: "proof",
      because:
        /the rotation's proof CONNECT as FPTemplateName-\w+ with the new certificate needs iot:Connect, but no statement allows/,
    },
  },
  {
    label: "a rotation template whose policy lets the new certificate connect but not rotate",
    rotationTemplate: "next_rotation_refused.json",
    verdict: {
      kind: "policy",
      next: true,
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create-from-csr/json/accepted",
      because: /^the next rotation's .*SUBSCRIBE at CONNACK .* but no statement allows/,
    },
  },
];

function rotationLabel(verdict: RotationVerdict | undefined): string {
  if (!verdict) return "rotates";
  if (verdict.kind === "rejected") return "is refused at RegisterThing";
  if (verdict.kind === "proof") return "is refused at the proof";
  return `is refused at ${verdict.step}${verdict.next ? " of the next rotation" : ""}`;
}

/** A corpus document with the emulator's region, account and rotation template in place. */
function rotationDocument(file: string): unknown {
  return JSON.parse(
    readFileSync(join(ROTATION_CORPUS, file), "utf8")
      .replaceAll("aws-region", "us-east-1")
      .replaceAll("aws-account-id", "123456789012")
      .replaceAll("rotationTemplateName", ROTATION_TEMPLATE),
  );
}

/** describe-provisioning-template's output of `name`, saved for lint. */
async function describedTemplate(emulator: TestEmulator, name: string): Promise<string> {
  const described = await control(emulator, {
    method: "GET",
    path: `/provisioning-templates/${name}`,
  });
  assertEquals(described.status, 200, JSON.stringify(described.json));
  const file = join(tempDir("fleetprov-lint-describe-"), `${name}.json`);
  writeFileSync(file, JSON.stringify(described.json));
  return file;
}

for (const c of ROTATION_CASES) {
  Deno.test({
    name: `lint agrees with the emulator on rotation: ${c.label} ${rotationLabel(c.verdict)}`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const emulator = await testEmulator({
        keyType: "ec-p256",
        controlPort: 0,
        ...(c.devicePolicy ? { policies: { FPCertPolicy: rotationDocument(c.devicePolicy) } } : {}),
        ...(c.rotationTemplate
          ? {
            templates: { [ROTATION_TEMPLATE]: { template: rotationDocument(c.rotationTemplate) } },
          }
          : {}),
      });
      try {
        await rotationAgreement(c, emulator);
      } finally {
        await emulator.close();
      }
    },
  });
}

async function rotationAgreement(c: RotationCase, emulator: TestEmulator): Promise<void> {
  const proof = c.verdict?.kind === "proof";
  const args = deviceArgs(emulator, {
    extra: [...(c.extra ?? []), ...(proof ? ["--deadline", "6"] : [])],
    retry: RETRY,
  });
  const home = deviceHome();
  const provisioned = await runFleetprov(args, { home });
  assertEquals(provisioned.code, ExitCode.Ok, provisioned.stdout + provisioned.stderr);
  const oldId = activeCertificateId(home);

  const report = await lint([
    ...args,
    "--template",
    await describedTemplate(emulator, "FleetprovTemplate"),
    "--rotation-template",
    await describedTemplate(emulator, ROTATION_TEMPLATE),
    ...await accountFlags(emulator),
  ], deviceHome());
  const errors = report.findings.filter((f) => f.severity === "error");
  assert(errors.every((f) => f.phase === "rotation"), JSON.stringify(errors, null, 2));
  const verdict = c.verdict;
  const rotate = (version = "3.1.1") =>
    runFleetprov(["rotate", ...args, "--force", "--mqtt-version", version], { home });
  if (!verdict) {
    assertEquals(errors, [], JSON.stringify(errors, null, 2));
    assertEquals(report.exitCode, ExitCode.Ok);
    const result = await rotate();
    assertEquals(result.code, ExitCode.Ok, result.stdout + result.stderr);
    assertEquals(await assertConnects(emulator, home), assertRotated(home, oldId));
    return;
  }
  assertEquals(report.exitCode, ExitCode.Config);
  const first = errors[0];
  assertMatch(first.message, verdict.because);
  if (verdict.kind === "policy") {
    return await rotationRefusedPacket(verdict, { emulator, errors, home, rotate });
  }
  if (verdict.kind === "rejected") {
    assertEquals([first.step, first.rejection], ["RegisterThing", verdict.rejection]);
    const answers: { accepted: boolean; rejection?: unknown }[] = [];
    emulator.events.on("answer", (e) => {
      if (e.operation === "RegisterThing") {
        answers.push({ accepted: e.accepted, ...(e.rejection ? { rejection: e.rejection } : {}) });
      }
    });
    const result = await rotate();
    assertEquals(result.code, ExitCode.Rejected, result.stdout + result.stderr);
    assertEquals(answers[0], { accepted: false, rejection: verdict.rejection });
    const { statusCode, errorCode } = verdict.rejection;
    assertMatch(
      oneLineError(result, true),
      new RegExp(`statusCode=${statusCode} errorCode=${errorCode}.*stays active\\.$`),
    );
  } else {
    assertEquals([first.step, first.packet, first.action], ["proof", "CONNECT", "iot:Connect"]);
    const refused: string[] = [];
    emulator.events.on("connect", (e) => {
      if (!e.accepted && e.certificateId !== oldId) refused.push(e.clientId);
    });
    const result = await rotate();
    assertEquals(result.code, ExitCode.TempFail, result.stdout + result.stderr);
    assertEquals([...new Set(refused)], [first.name!.replace(/0{64}$/, oldId)]);
    assertMatch(oneLineError(result, true), /The new certificate could not connect/);
  }
  assertEquals(activeCertificateId(home), oldId, "the old identity stays");
}

/**
 * The device certificate's policy refuses the packet lint names first, over
 * MQTT 3.1.1 and 5 (a next rotation's: after one that works), and the old
 * identity stays; over MQTT 5 the board's line names the topic and lint's statement.
 */
async function rotationRefusedPacket(
  verdict: Extract<RotationVerdict, { kind: "policy" }>,
  run: {
    emulator: TestEmulator;
    errors: Finding[];
    home: string;
    rotate: (version?: string) => Promise<{ code: number; stdout: string; stderr: string }>;
  },
): Promise<void> {
  const { emulator, errors, home, rotate } = run;
  const first = errors[0];
  assertEquals(
    { step: first.step, action: first.action, name: first.name },
    { step: verdict.step, action: verdict.action, name: verdict.name },
  );
  if (verdict.next) {
    const once = await rotate();
    assertEquals(once.code, ExitCode.Ok, once.stdout + once.stderr);
  }
  const before = activeCertificateId(home);
  const refusals: Refusal[] = [];
  emulator.events.on("violation", (e) => refusals.push({ action: e.action, name: e.name }));
  for (const version of ["3.1.1", "5"]) {
    refusals.length = 0;
    const result = await rotate(version);
    const output = result.stdout + result.stderr;
    assertEquals(result.code, ExitCode.Rejected, `MQTT ${version}: ${output}`);
    assertEquals(refusals[0], { action: verdict.action, name: verdict.name }, `MQTT ${version}`);
    const line = oneLineError(result, true);
    assertMatch(line, new RegExp(`The old certificate ${before} stays active\\.$`));
    if (version === "5") {
      // Which of the refused SUBACK and PUBACK the board meets first is the broker's order:
      // any of lint's errors will do.
      const named = errors.some((f) => {
        const type = f.action === "iot:Subscribe" ? "topicfilter" : "topic";
        const statement = `"Action":"${f.action}","Resource":"arn:aws:iot:*:*:${type}/${f.name}"`;
        return line.includes(` for ${f.name}: `) && line.includes(statement);
      });
      assert(named, line);
    }
  }
  assertEquals(activeCertificateId(home), before, "the old identity stays");
}
