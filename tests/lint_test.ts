// SPDX-License-Identifier: Apache-2.0
/**
 * `fleetprov lint` on its own: a board's config written for AWS (files that
 * exist only on the board), region and account in ARNs, the AWS CLI's
 * outputs, the template's parameters, bounded and malformed input, config
 * errors, and the command line (one line per finding, exit 78; one JSON
 * object with --output json). The agreement with the emulator is
 * lint_agreement_test.ts.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { ROOT, runFleetprov, SERIAL_TEMPLATE, tempDir } from "./support/mod.ts";
import { runLintCommand } from "../src/commands/lint.ts";
import { ExitCode } from "../src/errors.ts";
import { type Finding, MAX_INPUT_BYTES } from "../src/lint/mod.ts";

const DOCS_POLICY = Deno.readTextFileSync(
  join(ROOT, "tests/lint_corpus/aws_docs_claim_policy.json"),
);

/** A board's config for AWS: its certificate, key and root CA exist only on the board. */
function boardConfig(dir: string, config: Record<string, unknown> = {}): string {
  const path = join(dir, "board.conf");
  writeFileSync(
    path,
    JSON.stringify({
      endpoint: "a1b2c3-ats.iot.eu-west-1.amazonaws.com",
      cert: "/etc/fleetprov/claim.pem.crt",
      key: "/etc/fleetprov/claim.pem.key",
      "root-ca": "/etc/fleetprov/AmazonRootCA1.pem",
      "client-id": "board-7",
      "fleet-provisioning": {
        enabled: true,
        "template-name": "BoardTemplate",
        "template-parameters": '{"SerialNumber": "SN-0007"}',
      },
      ...config,
    }),
  );
  return path;
}

/** A device policy in eu-west-1 that lets a thing connect as itself (the DC's FPCertPolicy, in the board's region). */
function devicePolicy(resource = "client/${iot:Connection.Thing.ThingName}") {
  return {
    Version: "2012-10-17",
    Statement: [{
      Effect: "Allow",
      Action: "iot:Connect",
      Resource: `arn:aws:iot:eu-west-1:123456789012:${resource}`,
    }],
  };
}

function write(dir: string, name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

/** The AWS docs' claim policy for BoardTemplate in `region` and `account`. */
function docsPolicy(region = "eu-west-1", account = "123456789012"): string {
  return DOCS_POLICY.replaceAll("aws-region", region).replaceAll("aws-account-id", account)
    .replaceAll("templateName", "BoardTemplate");
}

async function lint(args: string[]) {
  let output = "";
  const code = await runLintCommand(args, {
    json: true,
    stdout: (t) => (output += t),
    home: tempDir(),
  });
  const report = JSON.parse(output) as {
    ok: boolean;
    exitCode: number;
    device: Record<string, unknown> | null;
    findings: Finding[];
  };
  assertEquals(report.exitCode, code);
  return report;
}

const errorsOf = (report: { findings: Finding[] }) =>
  report.findings.filter((f) => f.severity === "error");

Deno.test("lint: a board's config for AWS is read without the board's files; the AWS docs' policy passes", async () => {
  const dir = tempDir();
  const config = boardConfig(dir);
  const report = await lint([
    "--config-file",
    config,
    "--claim-policy",
    write(dir, "p.json", docsPolicy()),
  ]);
  assertEquals(report.findings, []);
  assertEquals(report.exitCode, ExitCode.Ok);
  assertEquals(report.device?.clientId, "board-7");
  assertEquals(report.device?.region, "eu-west-1");
  assertEquals(report.device?.createOperation, "CreateKeysAndCertificate");
  // The same config does not pass `check` here: the claim files are on the board only.
  const check = await runFleetprov(["check", "--config-file", config], { home: tempDir() });
  assertEquals(check.code, ExitCode.Config);
});

Deno.test("lint: the region comes from the endpoint (or --region), the account from --account; the fix names them", async () => {
  const dir = tempDir();
  const config = boardConfig(dir);
  const usEast = write(dir, "us.json", docsPolicy("us-east-1"));
  const report = await lint(["--config-file", config, "--claim-policy", usEast]);
  const first = errorsOf(report)[0];
  assertEquals(first.step, "subscribe");
  assertMatch(first.message, /names another region than the endpoint's \(eu-west-1\)/);
  assertEquals(
    first.add?.Resource,
    "arn:aws:iot:eu-west-1:123456789012:topicfilter/$aws/certificates/create/json/accepted",
  );
  assertEquals(
    errorsOf(
      await lint(["--config-file", config, "--claim-policy", usEast, "--region", "us-east-1"]),
    ),
    [],
  );

  const account = await lint([
    "--config-file",
    config,
    "--claim-policy",
    write(dir, "p.json", docsPolicy()),
    "--account",
    "210987654321",
  ]);
  assertMatch(errorsOf(account)[0].message, /names another account than 210987654321/);
  assertMatch(String(errorsOf(account)[0].add?.Resource), /^arn:aws:iot:eu-west-1:210987654321:/);

  // Copied from the docs as is: the region is wrong here; the account is a warning (unknown).
  const verbatim = await lint([
    "--config-file",
    config,
    "--claim-policy",
    write(dir, "docs.json", DOCS_POLICY.replaceAll("templateName", "BoardTemplate")),
  ]);
  assertEquals(verbatim.exitCode, ExitCode.Config);
  assert(
    verbatim.findings.some((f) =>
      f.severity === "warning" &&
      /account "aws-account-id", which is not an AWS account id/.test(f.message)
    ),
  );
  for (const bad of [["--account", "12345"], ["--region", "Europe"]]) {
    const r = await lint(["--config-file", config, "--claim-policy", usEast, ...bad]);
    assertEquals(r.exitCode, ExitCode.Config);
    assertMatch(r.findings[0].message, new RegExp(`^${bad[0]} `));
  }
});

Deno.test("lint: a client id the board derives from its machine id is checked as fleetprov-<16 hex digits>", async () => {
  const dir = tempDir();
  const config = boardConfig(dir, { "client-id": undefined });
  const policy = (resource: string) =>
    write(dir, "p.json", {
      Statement: [
        ...JSON.parse(docsPolicy()).Statement.slice(1),
        {
          Effect: "Allow",
          Action: "iot:Connect",
          Resource: `arn:aws:iot:eu-west-1:*:client/${resource}`,
        },
      ],
    });
  const ok = await lint(["--config-file", config, "--claim-policy", policy("fleetprov-*")]);
  assertEquals(ok.device?.clientIdDerived, true);
  assertEquals(ok.device?.clientId, "fleetprov-0000000000000000");
  assertEquals(errorsOf(ok), []);
  const refused = errorsOf(
    await lint(["--config-file", config, "--claim-policy", policy("board-*")]),
  );
  assertEquals([refused[0].step, refused[0].action], ["connect", "iot:Connect"]);
});

Deno.test("lint: aws iot get-policy and describe-provisioning-template output are read as the AWS CLI prints them", async () => {
  const dir = tempDir();
  const config = boardConfig(dir);
  const getPolicy = write(dir, "get-policy.json", {
    policyName: "ClaimPolicy",
    policyArn: "arn:aws:iot:eu-west-1:123456789012:policy/ClaimPolicy",
    policyDocument: docsPolicy(),
    defaultVersionId: "1",
  });
  const describe = (facts: Record<string, unknown>) =>
    write(dir, "describe.json", {
      templateArn: "arn:aws:iot:eu-west-1:123456789012:provisioningtemplate/BoardTemplate",
      templateName: "BoardTemplate",
      enabled: true,
      type: "FLEET_PROVISIONING",
      templateBody: JSON.stringify(SERIAL_TEMPLATE),
      ...facts,
    });
  // The template attaches FPCertPolicy: given as aws iot get-policy prints it, it is known.
  const fpCert = write(dir, "fpcert.json", {
    policyName: "FPCertPolicy",
    policyArn: "arn:aws:iot:eu-west-1:123456789012:policy/FPCertPolicy",
    policyDocument: JSON.stringify(devicePolicy()),
    defaultVersionId: "1",
  });
  const args = ["--config-file", config, "--claim-policy", getPolicy, "--policy", fpCert];
  assertEquals((await lint([...args, "--template", describe({})])).findings, []);
  const wrong = await lint([
    ...args,
    "--template",
    describe({ templateName: "OldTemplate", enabled: false, type: "JITP" }),
  ]);
  assertEquals(errorsOf(wrong).map((f) => f.path), ["templateName", "enabled", "type"]);
  assertEquals(errorsOf(wrong)[1].rejection, { statusCode: 400, errorCode: "InvalidRequest" });
  assertMatch(
    errorsOf(wrong)[0].message,
    /is template "OldTemplate", but the device asks for BoardTemplate/,
  );
  const broken = await lint([...args, "--template", describe({ templateBody: "{not json" })]);
  assertMatch(
    errorsOf(broken)[0].message,
    /^has "templateBody" that is not valid JSON: line 1, column 2: /,
  );
});

Deno.test("lint: template parameters the device does not send, without a Default, are errors naming the key and the fix", async () => {
  const dir = tempDir();
  const template = (parameters: Record<string, unknown>, thingName: unknown) =>
    write(dir, "t.json", {
      Parameters: parameters,
      Resources: {
        certificate: {
          Type: "AWS::IoT::Certificate",
          Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "Active" },
        },
        policy: { Type: "AWS::IoT::Policy", Properties: { PolicyDocument: devicePolicy() } },
        thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: thingName } },
      },
    });
  const run = (config: string, file: string) => lint(["--config-file", config, "--template", file]);
  const config = boardConfig(dir);
  // AWS fills AWS::IoT::Certificate::Id; SerialNumber is sent; Site has a Default.
  const good = template(
    { SerialNumber: { Type: "String" }, Site: { Type: "String", Default: "f1" } },
    { "Fn::Join": ["-", [{ Ref: "Site" }, { Ref: "SerialNumber" }]] },
  );
  assertEquals((await run(config, good)).findings, []);

  const needsLocation = template(
    { SerialNumber: { Type: "String" }, Location: { Type: "String" } },
    { "Fn::Sub": "${Location}-${SerialNumber}" },
  );
  const missing = errorsOf(await run(config, needsLocation));
  assertEquals(missing.map((f) => [f.path, f.step]), [["Parameters.Location", "RegisterThing"]]);
  assertEquals(missing[0].rejection, { statusCode: 400, errorCode: "InvalidParameters" });
  assertMatch(
    missing[0].message,
    /declares Location without a "Default" and the device does not send it \(it sends: SerialNumber\)/,
  );
  assertMatch(missing[0].fix ?? "", /add "Location" to fleet-provisioning.template-parameters/);

  // One reading with the emulator: a Ref must name a declared parameter (or one AWS fills),
  // whether the device sends it or not; AWS refuses it at CreateProvisioningTemplate.
  const undeclared = errorsOf(
    await run(config, template({}, { "Fn::Sub": "board-${SerialNumber}" })),
  );
  assertEquals(undeclared.map((f) => [f.path, f.step]), [[
    '$.Resources.thing.Properties.ThingName["Fn::Sub"]',
    "CreateProvisioningTemplate",
  ]]);
  assertMatch(undeclared[0].message, /"SerialNumber" is not declared in Parameters; AWS refuses/);
  assertEquals(undeclared[0].fix, 'Declare it: "Parameters": {"SerialNumber": {"Type": "String"}}');

  // collect-system-information sends DeviceIPAddress, DeviceMACAddress, ProvisioningCertSerialNumber.
  const byAddress = template({ DeviceMACAddress: { Type: "String" } }, "board-x");
  assertEquals(errorsOf(await run(config, byAddress))[0].path, "Parameters.DeviceMACAddress");
  const collecting = boardConfig(tempDir(), {
    "fleet-provisioning": {
      enabled: true,
      "template-name": "BoardTemplate",
      "collect-system-information": true,
    },
  });
  assertEquals((await run(collecting, byAddress)).findings, []);

  // What the template engine (the emulator's) refuses with the device's own values.
  const invalidName = template({ SerialNumber: { Type: "String" } }, {
    "Fn::Join": ["", ["board/", { Ref: "SerialNumber" }]],
  });
  const refused = errorsOf(await run(config, invalidName))[0];
  assertMatch(
    refused.message,
    /^RegisterThing is rejected with 400 ResourceRegistrationFailure for this device's parameters: Thing name "board\/SN-0007"/,
  );
  assertEquals([refused.step, refused.rejection?.errorCode], [
    "RegisterThing",
    "ResourceRegistrationFailure",
  ]);
});

Deno.test(`lint: input files are bounded (${MAX_INPUT_BYTES} bytes, 32 levels); malformed JSON is one line with its position, never its content`, async () => {
  assertEquals(MAX_INPUT_BYTES, 65536);
  const dir = tempDir();
  const config = boardConfig(dir);
  const one = async (content: string) => {
    const r = await lint([
      "--config-file",
      config,
      "--claim-policy",
      write(dir, "in.json", content),
    ]);
    assertEquals(r.exitCode, ExitCode.Config);
    assertEquals(r.findings.length, 1, JSON.stringify(r.findings));
    return r.findings[0].message;
  };
  assertEquals(await one(" ".repeat(65537)), "is 65537 bytes; lint reads at most 65536");
  assertEquals(
    (await lint([
      "--config-file",
      config,
      "--claim-policy",
      write(dir, "ok.json", docsPolicy() + " ".repeat(65536 - docsPolicy().length)),
    ])).exitCode,
    ExitCode.Ok,
  );
  assertMatch(await one('{"Statement": ['), /^is not valid JSON: line 1, column 16: /);
  assertMatch(
    await one("[".repeat(10_000)),
    /^is nested too deeply: line 1, column 33 opens level 33/,
  );
  const key =
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
  const message = await one(key);
  assert(!message.includes("MIGH") && !message.includes("BEGIN"), message);
  assertMatch(
    (await lint(["--config-file", config, "--claim-policy", join(dir, "missing.json")])).findings[0]
      .message,
    /^cannot be read \(ENOENT\)/,
  );
  // Not a policy at all, and statements that break: findings, never a crash.
  const junk = await lint([
    "--config-file",
    config,
    "--claim-policy",
    write(dir, "j.json", [1, 2]),
  ]);
  assertMatch(junk.findings[0].message, /is not an AWS IoT policy/);
});

Deno.test("lint: a config error is a finding, nothing to lint is an error, and the command line prints one line per finding", async () => {
  const dir = tempDir();
  const noTemplate = boardConfig(dir, { "fleet-provisioning": { enabled: true } });
  const policy = write(dir, "p.json", docsPolicy());
  const bad = await lint(["--config-file", noTemplate, "--claim-policy", policy]);
  assertEquals(bad.exitCode, ExitCode.Config);
  assertEquals(bad.device, null);
  assertMatch(bad.findings[0].message, /The template name is missing/);
  const nothing = await lint(["--config-file", boardConfig(dir)]);
  assertMatch(
    nothing.findings[0].message,
    /lint needs something to check: give --claim-policy FILE, --template FILE, --rotation-template FILE, or several/,
  );

  const home = tempDir();
  const broken = write(dir, "broken.json", {
    Statement: [
      { Effect: "Allow", Action: "iot:Connect", Resource: "*" },
      {
        Sid: "Provisioning",
        Effect: "Allow",
        Action: ["iot:Publish", "iot:Receive", "iot:Subscribe"],
        Resource: JSON.parse(docsPolicy()).Statement[1].Resource,
      },
    ],
  });
  const text = await runFleetprov([
    "lint",
    "--config-file",
    boardConfig(dir),
    "--claim-policy",
    broken,
  ], { home });
  assertEquals(text.code, ExitCode.Config, text.stderr);
  assertEquals(text.stderr, "");
  const lines = text.stdout.trimEnd().split("\n");
  assertMatch(
    lines[0],
    /^fleetprov lint: the device connects as client id board-7 over MQTT 3\.1\.1 and sends JSON: CreateKeysAndCertificate, then RegisterThing with template BoardTemplate and parameters SerialNumber; region eu-west-1, account unknown/,
  );
  assertEquals(lines.filter((l) => l.startsWith("error: claim policy ")).length, 4);
  assertEquals(
    lines[1],
    "fleetprov lint: rotation not checked: the config names no rotation template (fleet-provisioning.rotation-template-name) and no --rotation-template is given.",
  );
  assertMatch(
    lines[2],
    /^error: claim policy \S+broken\.json: the SUBSCRIBE at CONNACK to \$aws\/certificates\/create\/json\/accepted needs iot:Subscribe, but statement 2 \(Sid "Provisioning"\) grants iot:Subscribe on topic\/… .* AWS IoT closes the connection right after it\. Fix: add \{"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:eu-west-1:123456789012:topicfilter\/\$aws\/certificates\/create\/json\/accepted"\}\.$/,
  );
  assertEquals(
    lines.at(-1),
    "fleetprov lint: 4 errors, 0 warnings: a board with this config fails at step subscribe (exit 78).",
  );

  const json = await runFleetprov(
    ["--output", "json", "lint", "--config-file", boardConfig(dir), "--claim-policy", broken],
    { home },
  );
  assertEquals(json.code, ExitCode.Config);
  const out = json.stdout.trimEnd().split("\n");
  assertEquals(out.length, 1, json.stdout);
  const report = JSON.parse(out[0]);
  assertEquals([report.ok, report.exitCode, report.findings.length], [false, 78, 4]);
  assertEquals(report.findings[0].statement, { index: 2, sid: "Provisioning" });
});

Deno.test("lint: a config with fleet provisioning disabled and no template name is one config finding (78), not an internal error; a config's own full stop is not doubled", async () => {
  const dir = tempDir();
  const policy = write(dir, "claim.json", devicePolicy());
  const config = boardConfig(dir, { "fleet-provisioning": { enabled: false } });
  const report = await lint(["--config-file", config, "--claim-policy", policy]);
  assertEquals(report.exitCode, ExitCode.Config);
  assertEquals(report.findings.map((f) => [f.severity, f.source]), [["error", "config"]]);
  assertMatch(report.findings[0].message, /template name: set fleet-provisioning\.template-name/);
  // A config error keeps its own full stop: one, not two.
  const text = await runFleetprov([
    "lint",
    "--config-file",
    config,
    "--claim-policy",
    policy,
    "--nope",
  ], {
    home: tempDir(),
  });
  assertEquals(text.code, ExitCode.Config, text.stderr);
  assertMatch(text.stdout + text.stderr, /Unknown flag --nope[^\n]*\.\n/);
  assert(
    !/\.\.\n/.test(text.stdout + text.stderr),
    `a doubled full stop:\n${text.stdout}${text.stderr}`,
  );
});
