// SPDX-License-Identifier: Apache-2.0
/**
 * `fleetprov lint` on the rotation side, on its own: the rotation's
 * connection planned by the rotation's own code, checked against the device
 * certificate's policies (those the provisioning template attaches) as its
 * thing; the rotation template linted with the template code; what lint says
 * when it is not told enough, and when the board does not rotate. The
 * agreement with the emulator and the real CLI is lint_agreement_test.ts.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { ROOT, runFleetprov, tempDir } from "./support/mod.ts";
import { runLintCommand } from "../src/commands/lint.ts";
import { loadSettings } from "../src/config/mod.ts";
import { ExitCode } from "../src/errors.ts";
import type { Finding } from "../src/lint/mod.ts";
import { topicStatements } from "../src/policy/mod.ts";
import { claimPlan } from "../src/provisioning/plan.ts";
import { rotationSettings } from "../src/rotation/view.ts";

const ARN = "arn:aws:iot:eu-west-1:123456789012:";
const THING_VAR = "${iot:Connection.Thing.ThingName}";
const CERT = {
  Type: "AWS::IoT::Certificate",
  Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "ACTIVE" },
};
const POLICY = { Type: "AWS::IoT::Policy", Properties: { PolicyName: "BoardPolicy" } };

/** The provisioning template: thing board-<SerialNumber>, BoardPolicy. */
const TEMPLATE = {
  Parameters: { SerialNumber: { Type: "String" } },
  Resources: {
    certificate: CERT,
    policy: POLICY,
    thing: {
      Type: "AWS::IoT::Thing",
      Properties: { ThingName: { "Fn::Join": ["-", ["board", { Ref: "SerialNumber" }]] } },
    },
  },
};

/** The README's rotation template (Rotation, "The AWS side"). */
const ROTATION_TEMPLATE = {
  Parameters: {
    ThingName: { Type: "String" },
    OldCertificateId: { Type: "String" },
    "AWS::IoT::Certificate::Id": { Type: "String" },
  },
  Resources: {
    thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: { Ref: "ThingName" } } },
    certificate: CERT,
    policy: POLICY,
  },
};

/** The README's rotation template with its thing named by `expression`. */
function thingNamed(expression: unknown) {
  return {
    ...ROTATION_TEMPLATE,
    Resources: {
      ...ROTATION_TEMPLATE.Resources,
      thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: expression } },
    },
  };
}

/** The README's device policy: connect as its thing; create-from-csr and the rotation template's topics. */
function devicePolicy(topics = [
  "$aws/certificates/create-from-csr/*",
  "$aws/provisioning-templates/BoardRotationTemplate/provision/*",
]) {
  return {
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Action: "iot:Connect", Resource: `${ARN}client/${THING_VAR}` },
      ...topicStatements(ARN, topics),
    ],
  };
}

/** The Device Client's sample FPCertPolicy, in the board's region: its thing's topics only. */
const SAMPLE_POLICY = {
  Version: "2012-10-17",
  Statement: [
    { Effect: "Allow", Action: "iot:Connect", Resource: `${ARN}client/${THING_VAR}` },
    {
      Effect: "Allow",
      Action: ["iot:Publish", "iot:Receive"],
      Resource: `${ARN}topic/$aws/things/${THING_VAR}/*`,
    },
    {
      Effect: "Allow",
      Action: "iot:Subscribe",
      Resource: `${ARN}topicfilter/$aws/things/${THING_VAR}/*`,
    },
  ],
};

/** A scratch dir with a board's config for AWS (eu-west-1) that rotates with BoardRotationTemplate. */
function board(fp: Record<string, unknown> = {}) {
  const dir = tempDir();
  const write = (name: string, content: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content, null, 2));
    return path;
  };
  const config = write("board.conf", {
    endpoint: "a1b2c3-ats.iot.eu-west-1.amazonaws.com",
    cert: "/etc/fleetprov/claim.pem.crt",
    key: "/etc/fleetprov/claim.pem.key",
    "root-ca": "/etc/fleetprov/AmazonRootCA1.pem",
    "client-id": "board-7",
    "fleet-provisioning": {
      enabled: true,
      "template-name": "BoardTemplate",
      "template-parameters": '{"SerialNumber": "SN-0007"}',
      "rotation-template-name": "BoardRotationTemplate",
      ...fp,
    },
  });
  const policy = (document: unknown, name = "BoardPolicy") =>
    write(`${name}.json`, {
      policyName: name,
      policyArn: `${ARN}policy/${name}`,
      policyDocument: JSON.stringify(document),
      defaultVersionId: "1",
    });
  /** What aws iot describe-provisioning-template prints. */
  const describe = (name: string, body: unknown, hook = true) =>
    write(`${name}.json`, {
      templateArn: `${ARN}provisioningtemplate/${name}`,
      templateName: name,
      enabled: true,
      type: "FLEET_PROVISIONING",
      templateBody: JSON.stringify(body),
      ...(hook
        ? { preProvisioningHook: { targetArn: "arn:aws:lambda:eu-west-1:1:function:f" } }
        : {}),
    });
  return { dir, write, policy, describe, args: ["--config-file", config] };
}

interface Report {
  exitCode: number;
  device: { thingName: string | null; rotation: Record<string, unknown> | null } | null;
  findings: Finding[];
}

async function lint(args: string[]): Promise<Report> {
  let output = "";
  const code = await runLintCommand(args, {
    json: true,
    stdout: (t) => (output += t),
    home: tempDir(),
  });
  const report = JSON.parse(output) as Report;
  assertEquals(report.exitCode, code);
  return report;
}

const errorsOf = (r: { findings: Finding[] }) => r.findings.filter((f) => f.severity === "error");
const warningsOf = (r: { findings: Finding[] }) =>
  r.findings.filter((f) => f.severity === "warning");

Deno.test("lint rotation: without rotation-template-name and --rotation-template nothing about rotation is checked, and one line says so", async () => {
  const b = board({ "rotation-template-name": undefined });
  const template = b.write("t.json", TEMPLATE);
  const flags = [...b.args, "--template", template, "--policy", b.policy(SAMPLE_POLICY)];
  const report = await lint(flags);
  assertEquals([report.exitCode, report.findings, report.device?.rotation], [0, [], null]);
  const text = await runFleetprov(["lint", ...flags], { home: tempDir() });
  assertEquals(text.code, ExitCode.Ok, text.stderr);
  assertEquals(text.stdout.trimEnd().split("\n").slice(1), [
    "fleetprov lint: rotation not checked: the config names no rotation template (fleet-provisioning.rotation-template-name) and no --rotation-template is given.",
    "fleetprov lint: 0 errors, 0 warnings: nothing would stop a board with this config from provisioning.",
  ]);
});

Deno.test("lint rotation: the rotation's connection is the rotation's own plan: as the thing, the create operation of rotation-key-source, the rotation template's topics in the payload format", async () => {
  for (
    const [fp, create] of [
      [{}, "CreateCertificateFromCsr"],
      [{ "rotation-key-source": "aws" }, "CreateKeysAndCertificate"],
      // The board made its key at provisioning; its rotation takes one from AWS.
      [{ "generate-key": "ec-p256", "rotation-key-source": "aws" }, "CreateKeysAndCertificate"],
      [{ "payload-format": "cbor" }, "CreateCertificateFromCsr"],
    ] as const
  ) {
    const b = board(fp);
    const report = await lint([...b.args, "--template", b.write("t.json", TEMPLATE)]);
    const rotation = report.device!.rotation!;
    // The same functions the rotation runs with.
    const settings = await loadSettings(b.args, { home: tempDir(), forLint: true });
    const expected = claimPlan(
      rotationSettings(settings, { thingName: "board-SN-0007", certificateId: "0".repeat(64) }),
      "board-SN-0007",
    );
    assertEquals(rotation.actions, expected.actions);
    assertEquals(
      [rotation.createOperation, rotation.thingName, rotation.templateName],
      [create, "board-SN-0007", "BoardRotationTemplate"],
    );
    assertEquals(rotation.parameters, ["SerialNumber", "ThingName", "OldCertificateId"]);
    const format = fp["payload-format" as keyof typeof fp] ?? "json";
    const op = create === "CreateKeysAndCertificate" ? "create" : "create-from-csr";
    const actions = expected.actions.map((a) => `${a.packet} ${a.name}`);
    assertEquals(actions.slice(0, 5), [
      "CONNECT board-SN-0007",
      `SUBSCRIBE $aws/certificates/${op}/${format}/accepted`,
      `SUBSCRIBE $aws/certificates/${op}/${format}/rejected`,
      `SUBSCRIBE $aws/provisioning-templates/BoardRotationTemplate/provision/${format}/accepted`,
      `SUBSCRIBE $aws/provisioning-templates/BoardRotationTemplate/provision/${format}/rejected`,
    ]);
    assert(actions.includes(`PUBLISH $aws/certificates/${op}/${format}`), actions.join("\n"));
  }
});

Deno.test("lint rotation: the device certificate's policy (the provisioning template's) against the rotation as its thing: the README's passes; the Device Client's sample fails at the rotation's SUBSCRIBE with the statement to add", async () => {
  const b = board();
  const flags = [
    ...b.args,
    "--template",
    b.write("t.json", TEMPLATE),
    "--rotation-template",
    b.describe("BoardRotationTemplate", ROTATION_TEMPLATE),
  ];
  const good = await lint([...flags, "--policy", b.policy(devicePolicy())]);
  assertEquals(good.findings, []);
  assertEquals(good.device?.rotation?.devicePolicies, { checked: ["BoardPolicy"], unknown: [] });
  assertEquals(good.device?.rotation?.registersThing, "board-SN-0007");

  const sample = b.policy(SAMPLE_POLICY);
  const bad = await lint([...flags, "--policy", sample]);
  assertEquals(bad.exitCode, ExitCode.Config);
  const [first] = errorsOf(bad);
  assertEquals(
    [first.phase, first.source, first.file, first.step, first.packet, first.name],
    [
      "rotation",
      "policy",
      sample,
      "subscribe",
      "SUBSCRIBE",
      "$aws/certificates/create-from-csr/json/accepted",
    ],
  );
  assertEquals(first.add, {
    Effect: "Allow",
    Action: "iot:Subscribe",
    Resource: `${ARN}topicfilter/$aws/certificates/create-from-csr/json/accepted`,
  });
  assertEquals(
    errorsOf(bad).map((f) => `${f.packet} ${f.name}`),
    [
      "SUBSCRIBE $aws/certificates/create-from-csr/json/accepted",
      "SUBSCRIBE $aws/certificates/create-from-csr/json/rejected",
      "SUBSCRIBE $aws/provisioning-templates/BoardRotationTemplate/provision/json/accepted",
      "SUBSCRIBE $aws/provisioning-templates/BoardRotationTemplate/provision/json/rejected",
      "PUBLISH $aws/certificates/create-from-csr/json",
      "delivery $aws/certificates/create-from-csr/json/accepted",
      "PUBLISH $aws/provisioning-templates/BoardRotationTemplate/provision/json",
      "delivery $aws/provisioning-templates/BoardRotationTemplate/provision/json/accepted",
    ],
    "the CONNECT as the thing is allowed (its variable resolves: the thing is attached)",
  );
  const text = await runFleetprov(["lint", ...flags, "--policy", sample, "--mqtt-version", "5"], {
    home: tempDir(),
  });
  assertEquals(text.code, ExitCode.Config, text.stderr);
  const lines = text.stdout.trimEnd().split("\n");
  assertEquals(
    lines[1],
    "fleetprov lint: the device rotates as thing board-SN-0007 with its certificate: CreateCertificateFromCsr, then RegisterThing with template BoardRotationTemplate and parameters SerialNumber, ThingName, OldCertificateId, which registers thing board-SN-0007 and connects as it; checked against the device certificate's policies (BoardPolicy), the new certificate's (BoardPolicy) against its proof and the next rotation.",
  );
  assertEquals(
    lines[2],
    `error: policy ${sample}: the rotation's SUBSCRIBE at CONNACK to $aws/certificates/create-from-csr/json/accepted needs iot:Subscribe, but no statement allows iot:Subscribe on ${ARN}topicfilter/$aws/certificates/create-from-csr/json/accepted. The board gets SUBACK 0x87 Not authorized. The old certificate stays active. Fix: add {"Effect":"Allow","Action":"iot:Subscribe","Resource":"${ARN}topicfilter/$aws/certificates/create-from-csr/json/accepted"}.`,
  );
  assertEquals(
    lines.at(-1),
    "fleetprov lint: 8 errors, 2 warnings: a board with this config provisions, but fleetprov rotate fails at step subscribe (exit 78).",
  );

  // Another rotation template's topics, and CreateKeysAndCertificate's for a board that makes its key.
  const other = await lint([
    ...flags,
    "--policy",
    b.policy(devicePolicy([
      "$aws/certificates/create/*",
      "$aws/provisioning-templates/LegacyRotation/provision/*",
    ])),
  ]);
  const because = errorsOf(other).map((f) => f.message);
  assertMatch(
    because[0],
    /CreateKeysAndCertificate's topics, but the rotation uses CreateCertificateFromCsr \(fleet-provisioning\.rotation-key-source board/,
  );
  assert(
    because.some((m) =>
      m.includes(
        "template LegacyRotation's topics, but the device asks for template BoardRotationTemplate (fleet-provisioning.rotation-template-name)",
      )
    ),
    because.join("\n"),
  );
  // A device policy lint was not given could allow it: the rotation is not judged, the line says so.
  const unknown = await lint(flags);
  assertEquals(errorsOf(unknown), []);
  assertEquals(unknown.device?.rotation?.devicePolicies, { checked: [], unknown: ["BoardPolicy"] });
});

Deno.test("lint rotation: the rotation template with the template code: AWS's checks, ThingName and OldCertificateId sent, a parameter not sent, another thing, no hook, its policies against the rotation's proof and the next rotation", async () => {
  const b = board();
  const base = [
    ...b.args,
    "--template",
    b.write("t.json", TEMPLATE),
    "--policy",
    b.policy(devicePolicy()),
  ];
  const run = async (body: unknown, hook = true) =>
    await lint([...base, "--rotation-template", b.describe("BoardRotationTemplate", body, hook)]);

  // Refused at CreateProvisioningTemplate.
  const fnIf = thingNamed({ "Fn::If": ["c", "a", "b"] });
  const refused = await run(fnIf);
  assertEquals(
    errorsOf(refused).map((f) => [f.phase, f.source, f.step, f.path]),
    [[
      "rotation",
      "rotation-template",
      "CreateProvisioningTemplate",
      '$.Resources.thing.Properties.ThingName["Fn::If"]',
    ]],
  );
  const text = await runFleetprov(
    ["lint", ...base, "--rotation-template", b.write("r.json", fnIf)],
    { home: tempDir() },
  );
  assertEquals(
    text.stdout.trimEnd().split("\n").at(-1),
    "fleetprov lint: 1 error, 0 warnings: AWS refuses the rotation template at CreateProvisioningTemplate (exit 78).",
  );

  // A new thing from a parameter the board does not send (no hook: an error, else a warning).
  const newThing = {
    ...ROTATION_TEMPLATE,
    Parameters: { ...ROTATION_TEMPLATE.Parameters, DeviceSerial: { Type: "String" } },
    Resources: {
      ...ROTATION_TEMPLATE.Resources,
      thing: {
        Type: "AWS::IoT::Thing",
        Properties: { ThingName: { "Fn::Join": ["", ["rotated-", { Ref: "DeviceSerial" }]] } },
      },
    },
  };
  const missing = await run(newThing, false);
  assertEquals(
    errorsOf(missing).map((f) => [f.path, f.step, f.rejection]),
    [["Parameters.DeviceSerial", "RegisterThing", {
      statusCode: 400,
      errorCode: "InvalidParameters",
    }]],
  );
  assertMatch(
    errorsOf(missing)[0].message,
    /\(it sends: SerialNumber, ThingName, OldCertificateId\)/,
  );
  assertEquals(warningsOf(missing).map((f) => f.path), ["preProvisioningHook"]);
  assertMatch(warningsOf(missing)[0].message, /can put a new certificate on any thing it names/);
  assertEquals(errorsOf(await run(newThing)), [], "a hook may supply it");

  // Another thing than the board's: AWS makes it, and the board becomes it.
  const byCertificate = thingNamed({
    "Fn::Join": ["", ["board-", { Ref: "AWS::IoT::Certificate::Id" }]],
  });
  const moved = await run(byCertificate);
  assertEquals(errorsOf(moved), []);
  assertMatch(
    warningsOf(moved)[0].message,
    /^registers thing board-1{64} for this board, not the thing it rotates \(board-SN-0007, its ThingName\)/,
  );

  // Its policies: the rotation's proof, and the next rotation when they are not the device's.
  const inline = (document: unknown) => ({
    ...ROTATION_TEMPLATE,
    Resources: {
      ...ROTATION_TEMPLATE.Resources,
      policy: { Type: "AWS::IoT::Policy", Properties: { PolicyDocument: document } },
    },
  });
  const proof = await run(inline({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: "iot:Connect", Resource: `${ARN}client/device-*` }],
  }));
  const [refusedProof] = errorsOf(proof);
  assertEquals([refusedProof.step, refusedProof.name], ["proof", "board-SN-0007"]);
  assertMatch(
    refusedProof.message,
    /^the rotation's proof CONNECT as board-SN-0007 with the new certificate needs iot:Connect, but .*fleetprov rotate retries the proof until its deadline and exits 75, the old certificate still active/,
  );
  const next = await run(inline(SAMPLE_POLICY));
  assertEquals(
    errorsOf(next).map((f) => [f.source, f.step, f.name]).slice(0, 1),
    [["rotation-template", "subscribe", "$aws/certificates/create-from-csr/json/accepted"]],
  );
  assertMatch(
    errorsOf(next)[0].message,
    /^the next rotation's \(its certificate has the policies the rotation template attaches\) SUBSCRIBE at CONNACK/,
  );
  const none = await run({
    ...ROTATION_TEMPLATE,
    Resources: { thing: ROTATION_TEMPLATE.Resources.thing, certificate: CERT },
  });
  assertMatch(
    errorsOf(none)[0].message,
    /attaches no AWS::IoT::Policy .*fleetprov rotate retries the proof/,
  );
});

Deno.test("lint rotation: --rotation-template for a config that names none is an error naming the template; alone, the thing is a sample and the device's policies unknown", async () => {
  const b = board({ "rotation-template-name": undefined });
  const described = b.describe("BoardRotationTemplate", ROTATION_TEMPLATE);
  const unnamed = await lint([...b.args, "--rotation-template", described]);
  const [first] = errorsOf(unnamed);
  assertEquals([first.phase, first.source], ["rotation", "config"]);
  assertMatch(first.message, /names no rotation template .*fleetprov rotate stops with exit 78/);
  assertEquals(
    first.fix,
    "set fleet-provisioning.rotation-template-name to BoardRotationTemplate (--rotation-template-name)",
  );

  const named = board();
  const text = await runFleetprov(
    [
      "lint",
      ...named.args,
      "--rotation-template",
      named.describe("BoardRotationTemplate", ROTATION_TEMPLATE),
    ],
    { home: tempDir() },
  );
  assertEquals(text.code, ExitCode.Ok, text.stdout);
  const line = text.stdout.split("\n")[1];
  assertMatch(
    line,
    /^fleetprov lint: the device rotates as its thing \(checked as fleetprov-thing: --template says which\)/,
  );
  assertMatch(
    line,
    /the device certificate's policies are not known \(--template: the policies it attaches\), the new certificate's \(BoardPolicy, not given with --policy\) against its proof\.$/,
  );
  // The other template named in describe's output.
  const other = await lint([
    ...named.args,
    "--rotation-template",
    named.describe("Other", ROTATION_TEMPLATE),
  ]);
  assertMatch(errorsOf(other)[0].fix!, /^set fleet-provisioning\.rotation-template-name to Other/);
});

/** The ```json block of the README that follows `after`. */
function readmeJson(readme: string, after: string): unknown {
  const at = readme.indexOf(after);
  assert(at >= 0, after);
  const start = readme.indexOf("```json\n", at) + "```json\n".length;
  return JSON.parse(readme.slice(start, readme.indexOf("```", start)));
}

Deno.test("lint rotation: the README's examples (Before you flash, the rotation side) are lint's output for the README's rotation template and device policy", async () => {
  const readme = Deno.readTextFileSync(join(ROOT, "README.md"));
  const dir = tempDir();
  const write = (name: string, content: unknown) =>
    writeFileSync(join(dir, name), JSON.stringify(content, null, 2));
  const getPolicy = (name: string, document: unknown) => ({
    policyName: name,
    policyArn: `${ARN}policy/${name}`,
    policyDocument: JSON.stringify(document),
    defaultVersionId: "1",
  });
  // The Rotation section's template and BoardPolicy, in eu-west-1 and 123456789012.
  const rotation = readmeJson(readme, "The template (`BoardRotationTemplate`");
  const boardPolicy = JSON.parse(
    JSON.stringify(readmeJson(readme, "2. **A device policy**"))
      .replaceAll("REGION", "eu-west-1").replaceAll("ACCOUNT", "123456789012"),
  ) as { Statement: unknown[] };
  write("rotating.conf", {
    endpoint: "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com",
    cert: "/etc/fleetprov/claim.pem.crt",
    key: "/etc/fleetprov/claim.pem.key",
    "root-ca": "/etc/fleetprov/AmazonRootCA1.pem",
    "fleet-provisioning": {
      enabled: true,
      "template-name": "BoardTemplate",
      "template-parameters": '{"SerialNumber": "SN-0001"}',
      "rotation-template-name": "BoardRotationTemplate",
    },
  });
  write(
    "claim-policy.json",
    JSON.parse(
      Deno.readTextFileSync(join(ROOT, "tests/lint_corpus/aws_docs_claim_policy.json"))
        .replaceAll("aws-region", "eu-west-1").replaceAll("aws-account-id", "123456789012")
        .replaceAll("templateName", "BoardTemplate"),
    ),
  );
  write(
    "template.json",
    JSON.parse(
      Deno.readTextFileSync(join(ROOT, "tests/lint_corpus/templates/board_template.json")),
    ),
  );
  write("rotation-template.json", {
    templateArn: `${ARN}provisioningtemplate/BoardRotationTemplate`,
    templateName: "BoardRotationTemplate",
    templateBody: JSON.stringify(rotation),
    enabled: true,
    preProvisioningHook: { targetArn: `arn:aws:lambda:eu-west-1:123456789012:function:Check` },
    type: "FLEET_PROVISIONING",
  });
  write("board-policy.json", getPolicy("BoardPolicy", boardPolicy));
  write("fpcert-policy.json", getPolicy("FPCertPolicy", SAMPLE_POLICY));
  write(
    "fpcert-rotation-policy.json",
    getPolicy("FPCertPolicy", {
      ...SAMPLE_POLICY,
      Statement: [...SAMPLE_POLICY.Statement, ...boardPolicy.Statement.slice(1)],
    }),
  );
  const section = readme.slice(
    readme.indexOf("### The rotation side"),
    readme.indexOf("\n## Rotation"),
  );
  const examples = [...section.matchAll(/```\n\$ fleetprov lint (.*)\n([^`]*)```/g)];
  assertEquals(examples.length, 2);
  const codes: number[] = [];
  for (const [, command, printed] of examples) {
    const args = command.split(" ").map((
      arg,
    ) => (arg.endsWith(".json") || arg.endsWith(".conf") ? join(dir, arg) : arg));
    let output = "";
    codes.push(await runLintCommand(args, { stdout: (t) => (output += t), home: tempDir() }));
    assertEquals(output.replaceAll(`${dir}/`, ""), printed);
  }
  assertEquals(codes, [ExitCode.Config, ExitCode.Ok]);
});

Deno.test("lint rotation: a board that collects system information sends it when it provisions, never when it rotates (rotate runs provisioned): a rotation template needing DeviceMACAddress is flagged", async () => {
  const b = board({ "collect-system-information": true });
  const needsMac = {
    ...ROTATION_TEMPLATE,
    Parameters: { ...ROTATION_TEMPLATE.Parameters, DeviceMACAddress: { Type: "String" } },
  };
  const report = await lint([
    ...b.args,
    "--template",
    b.write("t.json", TEMPLATE),
    "--policy",
    b.policy(devicePolicy()),
    "--rotation-template",
    b.describe("BoardRotationTemplate", needsMac),
  ]);
  const rotation = report.device?.rotation as { parameters: string[] } | null;
  assertEquals(rotation?.parameters.sort(), ["OldCertificateId", "SerialNumber", "ThingName"]);
  // With a hook the parameter could come from its overrides: a warning, as for provisioning.
  assertEquals(
    report.findings.filter((f) => f.path === "Parameters.DeviceMACAddress")
      .map((f) => [f.severity, f.phase, f.step]),
    [["warning", "rotation", "RegisterThing"]],
  );
  // Provisioning sends it: the provisioning template may need it.
  const provisioning = report.device as unknown as { parameters: string[] };
  assert(provisioning.parameters.includes("DeviceMACAddress"), provisioning.parameters.join());
});
