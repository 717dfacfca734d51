// SPDX-License-Identifier: Apache-2.0
/**
 * `fleetprov lint --template` on its own: what AWS refuses at creation as one
 * line per key path with its fix, the pseudo parameters AWS fills, what lint
 * is told of the account (`--policy`, `--inventory`) and what it says when it
 * is not, the new certificate's policies against the proof connection, and
 * the flags. The agreement with the emulator is lint_agreement_test.ts.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { runFleetprov, tempDir } from "./support/mod.ts";
import { runLintCommand } from "../src/commands/lint.ts";
import { ExitCode } from "../src/errors.ts";
import type { Finding } from "../src/lint/mod.ts";
import { PSEUDO_PARAMETERS, pseudoParameterValues } from "../src/template/mod.ts";

const CERT = {
  Type: "AWS::IoT::Certificate",
  Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "Active" },
};
const THING = {
  Type: "AWS::IoT::Thing",
  Properties: { ThingName: { "Fn::Join": ["-", ["board", { Ref: "SerialNumber" }]] } },
};
const NAMED = { Type: "AWS::IoT::Policy", Properties: { PolicyName: "DevicePolicy" } };

/** A template sending SerialNumber, with `resources` beside the certificate. */
function template(resources: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    Parameters: { SerialNumber: { Type: "String" } },
    Resources: { certificate: CERT, ...resources },
    ...extra,
  };
}

/** A policy allowing iot:Connect on `client/RESOURCE` in eu-west-1 (the board's region). */
function connectPolicy(resource: string, region = "eu-west-1", effect = "Allow") {
  return {
    Version: "2012-10-17",
    Statement: [{
      Effect: effect,
      Action: "iot:Connect",
      Resource: `arn:aws:iot:${region}:123456789012:client/${resource}`,
    }],
  };
}

const THING_POLICY = connectPolicy("${iot:Connection.Thing.ThingName}");

/** A scratch dir with a board's config for AWS (eu-west-1), sending SerialNumber SN-0007. */
function board() {
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
    },
  });
  return { dir, write, args: ["--config-file", config] };
}

async function lint(args: string[]) {
  let output = "";
  const code = await runLintCommand(args, {
    json: true,
    stdout: (t) => (output += t),
    home: tempDir(),
  });
  const report = JSON.parse(output) as {
    exitCode: number;
    device: { thingName: string | null } | null;
    findings: Finding[];
  };
  assertEquals(report.exitCode, code);
  return report;
}

const errorsOf = (r: { findings: Finding[] }) => r.findings.filter((f) => f.severity === "error");
const warningsOf = (r: { findings: Finding[] }) =>
  r.findings.filter((f) => f.severity === "warning");

Deno.test("lint template: AWS fills its pseudo parameters itself, and the engine fills exactly those", async () => {
  assertEquals(PSEUDO_PARAMETERS, ["AWS::IoT::Certificate::Id"]);
  assertEquals(Object.keys(pseudoParameterValues("c0ffee")), [...PSEUDO_PARAMETERS]);
  // The Device Client's sample declares the pseudo parameter without a Default: not the board's.
  const b = board();
  const declared = b.write("t.json", {
    ...template({
      policy: { Type: "AWS::IoT::Policy", Properties: { PolicyDocument: THING_POLICY } },
      thing: THING,
    }),
    Parameters: {
      SerialNumber: { Type: "String" },
      "AWS::IoT::Certificate::Id": { Type: "String" },
    },
  });
  const report = await lint([...b.args, "--template", declared]);
  assertEquals(report.findings, []);
  assertEquals(report.device?.thingName, "board-SN-0007");
});

Deno.test("lint template: what AWS refuses at CreateProvisioningTemplate is one line per key path, with its fix", async () => {
  const b = board();
  const file = b.write(
    "t.json",
    template({
      thing: { ...THING, Properties: { ThingName: { "Fn::If": ["c", "a", "b"] } } },
      policy: { Type: "AWS::IoT::Policy", Properties: {} },
    }),
  );
  const text = await runFleetprov(["lint", ...b.args, "--template", file], { home: tempDir() });
  assertEquals(text.code, ExitCode.Config, text.stderr);
  const lines = text.stdout.trimEnd().split("\n");
  assertEquals(lines.slice(1), [
    "fleetprov lint: rotation not checked: the config names no rotation template (fleet-provisioning.rotation-template-name) and no --rotation-template is given.",
    `error: template ${file}: $.Resources.thing.Properties.ThingName["Fn::If"]: Fn::If is not an intrinsic function of provisioning templates; AWS supports Ref, Fn::Join, Fn::Select, Fn::Split, Fn::Sub, Fn::FindInMap; AWS refuses the template at CreateProvisioningTemplate (and so does the emulator). Fix: Build the value with those, or have a pre-provisioning hook compute it (parameterOverrides).`,
    `error: template ${file}: $.Resources.policy.Properties: Neither PolicyName nor PolicyDocument is present in the policy resource; AWS refuses the template at CreateProvisioningTemplate (and so does the emulator). Fix: Name an existing policy with PolicyName, or give its PolicyDocument.`,
    "fleetprov lint: 2 errors, 0 warnings: AWS refuses the template at CreateProvisioningTemplate (exit 78).",
  ]);
  // The body is measured as the AWS CLI sends it (file://): the file's own text, whitespace too.
  const shape = (notes: string) => template({ thing: THING }, { DeviceConfiguration: { notes } });
  const compact = shape("x".repeat(10_230 - JSON.stringify(shape("")).length));
  assertEquals(JSON.stringify(compact).length, 10_230);
  const fits = b.write("fits.json", JSON.stringify(compact));
  assert(
    !errorsOf(await lint([...b.args, "--template", fits])).some((f) => f.path === "templateBody"),
  );
  const padded = b.write("padded.json", JSON.stringify(compact, null, 8));
  assertEquals(errorsOf(await lint([...b.args, "--template", padded])).map((f) => f.path), [
    "templateBody",
  ]);
});

Deno.test("lint template: what lint is not told of the account is a warning naming how to check it; what a listing lacks is an error with the command that creates it", async () => {
  const b = board();
  const file = b.write(
    "t.json",
    template({
      policy: NAMED,
      thing: { ...THING, Properties: { ...THING.Properties, ThingGroups: ["plant-7"] } },
    }),
  );
  const unknown = await lint([...b.args, "--template", file]);
  assertEquals(unknown.exitCode, ExitCode.Ok);
  assertEquals(errorsOf(unknown), []);
  const [policy, group] = warningsOf(unknown);
  assertMatch(
    policy.message,
    /^names policy DevicePolicy \(PolicyName\), which must exist in the account, or RegisterThing is rejected with 400 ResourceRegistrationFailure; and its document decides whether the new certificate may connect: lint cannot tell without --policy \(what aws iot get-policy --policy-name DevicePolicy prints\)/,
  );
  assertMatch(group.message, /^names thing group plant-7 \(ThingGroups\).*list-thing-groups/);

  const groups = b.write("groups.json", {
    thingGroups: [{ groupName: "plant-8", groupArn: "arn:aws:iot:eu-west-1:1:thinggroup/plant-8" }],
  });
  const devicePolicy = b.write("device-policy.json", THING_POLICY);
  const told = await lint([
    ...b.args,
    "--template",
    file,
    "--inventory",
    groups,
    "--policy",
    `DevicePolicy=${devicePolicy}`,
  ]);
  assertEquals(warningsOf(told), []);
  assertEquals(errorsOf(told).map((f) => [f.step, f.rejection?.errorCode, f.fix]), [[
    "RegisterThing",
    "ResourceRegistrationFailure",
    "aws iot create-thing-group --thing-group-name plant-7",
  ]]);
  // A policies listing that lacks the policy: an error too.
  const policies = b.write("policies.json", {
    policies: [{ policyName: "Other", policyArn: "x" }],
  });
  const lacking = await lint([...b.args, "--template", file, "--inventory", policies]);
  assertMatch(
    errorsOf(lacking)[0].message,
    /^names policy DevicePolicy .*list-policies does not list it/,
  );
});

Deno.test("lint template: --policy and --inventory files are untrusted input; each needs --template or --rotation-template", async () => {
  const b = board();
  const file = b.write("t.json", template({ policy: NAMED, thing: THING }));
  const bare = b.write("bare.json", THING_POLICY);
  const noName = await lint([...b.args, "--template", file, "--policy", bare]);
  assertEquals(errorsOf(noName)[0].source, "policy");
  assertMatch(errorsOf(noName)[0].message, /is a policy document without its name/);
  assertMatch(errorsOf(noName)[0].fix!, /--policy NAME=FILE/);
  const junk = await lint([...b.args, "--template", file, "--inventory", b.write("j.json", [1])]);
  assertMatch(
    errorsOf(junk)[0].message,
    /^is not a listing lint reads: it takes what aws iot list-policies/,
  );
  const missing = await lint([...b.args, "--template", file, "--policy", `X=${b.dir}/nope.json`]);
  assertMatch(errorsOf(missing)[0].message, /^cannot be read \(ENOENT\)/);
  const alone = await lint([...b.args, "--claim-policy", bare, "--policy", `X=${bare}`]);
  assertMatch(
    alone.findings[0].message,
    /^--policy tells lint about what the templates name: give --template FILE \(or --rotation-template FILE\) with it/,
  );
});

Deno.test("lint template: the proof connection: the new certificate connects as its thing, with the thing's variables resolved", async () => {
  const b = board();
  const run = async (resources: Record<string, unknown>, extra: string[] = []) =>
    await lint([...b.args, "--template", b.write("t.json", template(resources)), ...extra]);
  const inline = (document: unknown) => ({
    Type: "AWS::IoT::Policy",
    Properties: { PolicyDocument: document },
  });
  assertEquals((await run({ policy: inline(THING_POLICY), thing: THING })).findings, []);
  assertEquals(
    (await run({ policy: inline(connectPolicy("${iot:ClientId}")), thing: THING })).findings,
    [],
  );
  // Named: given as aws iot get-policy prints it.
  const getPolicy = (document: unknown) =>
    b.write("get-policy.json", {
      policyName: "DevicePolicy",
      policyArn: "arn:aws:iot:eu-west-1:123456789012:policy/DevicePolicy",
      policyDocument: JSON.stringify(document),
      defaultVersionId: "1",
    });
  const us = await run({ policy: NAMED, thing: THING }, [
    "--policy",
    getPolicy(connectPolicy("${iot:Connection.Thing.ThingName}", "us-east-1")),
  ]);
  const [wrongRegion] = errorsOf(us);
  assertEquals(
    [wrongRegion.step, wrongRegion.source, wrongRegion.name, wrongRegion.statement],
    ["proof", "policy", "board-SN-0007", { index: 1 }],
  );
  assertMatch(wrongRegion.message, /names another region than the endpoint's \(eu-west-1\)/);
  assertMatch(
    wrongRegion.message,
    /AWS IoT hangs up right after CONNECT, without CONNACK; the board has written its runtime config, retries the proof until its deadline and exits 75$/,
  );
  assertEquals(
    wrongRegion.add?.Resource,
    "arn:aws:iot:eu-west-1:123456789012:client/board-SN-0007",
  );
  // The thing's type and attributes are not evaluated: a statement on them matches nothing.
  const attribute = await run({
    policy: inline(connectPolicy("${iot:Connection.Thing.Attributes[site]}-*")),
    thing: THING,
  });
  assertMatch(errorsOf(attribute)[0].message, /a thing's type and attributes are not evaluated/);
  // A policy lint was not given may allow it: only a known Deny is an error then.
  const unknownAllows = await run({
    named: NAMED,
    inline: inline(connectPolicy("other")),
    thing: THING,
  });
  assertEquals(errorsOf(unknownAllows), []);
  const denied = await run({
    named: NAMED,
    inline: inline(connectPolicy("board-*", "*", "Deny")),
    thing: THING,
  });
  assertMatch(
    errorsOf(denied)[0].message,
    /statement 1 of the template's PolicyDocument #2 denies it/,
  );
  assertEquals(
    errorsOf(denied)[0].fix,
    `narrow statement 1 of the template's PolicyDocument #2 so it does not cover arn:aws:iot:eu-west-1:123456789012:client/board-SN-0007`,
  );
  // MQTT 5: the board gets CONNACK 0x87.
  const v5 = await run({ thing: THING }, ["--mqtt-version", "5"]);
  assertMatch(errorsOf(v5)[0].message, /attaches no AWS::IoT::Policy/);
  const none = await run({ policy: inline(connectPolicy("device-*")), thing: THING }, [
    "--mqtt-version",
    "5",
  ]);
  assertMatch(errorsOf(none)[0].message, /The board gets CONNACK 0x87 Not authorized/);
});

Deno.test("lint template: with a pre-provisioning hook, parameters the board does not send are warnings", async () => {
  const b = board();
  const body = {
    Parameters: { SerialNumber: { Type: "String" }, Location: { Type: "String" } },
    Resources: { certificate: CERT, thing: THING },
  };
  const describe = (hook: boolean) =>
    b.write("describe.json", {
      templateName: "BoardTemplate",
      enabled: true,
      type: "FLEET_PROVISIONING",
      templateBody: JSON.stringify(body),
      ...(hook
        ? { preProvisioningHook: { targetArn: "arn:aws:lambda:eu-west-1:1:function:f" } }
        : {}),
    });
  const without = await lint([...b.args, "--template", describe(false)]);
  assertEquals(errorsOf(without).map((f) => f.path), ["Parameters.Location"]);
  const hooked = await lint([...b.args, "--template", describe(true)]);
  assertEquals(errorsOf(hooked), []);
  assertMatch(
    warningsOf(hooked)[0].message,
    /RegisterThing is rejected with 400 InvalidParameters unless the pre-provisioning hook's parameterOverrides supplies it/,
  );
});

Deno.test("lint's own flags are in --help and in the README's table of them", async () => {
  const { LINT_OWN_FLAGS } = await import("../src/commands/lint.ts");
  const { helpText } = await import("../src/commands/help.ts");
  const readme = Deno.readTextFileSync(new URL("../README.md", import.meta.url));
  const table = readme.slice(readme.indexOf("`fleetprov lint` takes the flags"));
  const rows = table.slice(0, table.indexOf("\n\n", table.indexOf("| flag")));
  const help = helpText();
  assertEquals(LINT_OWN_FLAGS.length, 7);
  for (const flag of LINT_OWN_FLAGS) {
    assert(help.includes(`${flag} `) || help.includes(`${flag},`), `--help names ${flag}`);
    assert(rows.includes(`| \`${flag} `), `the README's lint table names ${flag}`);
  }
});
