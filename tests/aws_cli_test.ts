// SPDX-License-Identifier: Apache-2.0
/**
 * The cloud side of a fleet's CI, driven as its scripts drive AWS: the AWS
 * CLI v2 (/usr/bin/aws, `--endpoint-url`) against `fleetprov emulator
 * --control-port`, and devices provisioned by the real fleetprov CLI.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { claimPolicy } from "../src/emulator/mod.ts";
import { certificateId as certificateIdOf } from "../src/pki/mod.ts";
import {
  assertProvisioned,
  AWS_CLI,
  awsCliMissing,
  awsIot,
  connect,
  deviceHome,
  ROOT,
  runFleetprov,
  runtimeConfigOf,
  skipWhenMissing,
  spawnEmulator,
  tempDir,
} from "./support/mod.ts";

const ROLE = "arn:aws:iam::123456789012:role/FleetProvisioningRole";

/** The template a fleet's script creates: serial number in, thing "board-<serial>" out. */
const TEMPLATE = {
  Parameters: {
    SerialNumber: { Type: "String" },
    Location: { Type: "String", Default: "factory-1" },
    "AWS::IoT::Certificate::Id": { Type: "String" },
  },
  Resources: {
    certificate: {
      Type: "AWS::IoT::Certificate",
      Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "Active" },
    },
    policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "FPCertPolicy" } },
    thing: {
      Type: "AWS::IoT::Thing",
      Properties: {
        ThingName: { "Fn::Join": ["", ["board-", { Ref: "SerialNumber" }]] },
        AttributePayload: { serial: { Ref: "SerialNumber" }, location: { Ref: "Location" } },
      },
    },
  },
};

/** The hook a fleet puts in front of its template: an allow-list by serial number. */
function hook(dir: string): string {
  const path = join(dir, "serial-check.sh");
  Deno.writeTextFileSync(
    path,
    `#!/bin/sh
input=$(cat)
case "$input" in
  *'"SerialNumber":"SN-DENIED"'*) echo '{"allowProvisioning": false}' ;;
  *'"SerialNumber":"SN-OVERRIDE"'*) echo '{"allowProvisioning": true, "parameterOverrides": {"Location": "hook-lab"}}' ;;
  *) echo '{"allowProvisioning": true}' ;;
esac
`,
    { mode: 0o755 },
  );
  Deno.chmodSync(path, 0o755);
  return `file:${path}`;
}

/** Runs fleetprov for `serial` on `templateName`, in a fresh device home. */
async function device(configPath: string, templateName: string, serial: string) {
  const home = deviceHome();
  const result = await runFleetprov([
    "--config-file",
    configPath,
    "--fleet-provisioning-template-name",
    templateName,
    "--fleet-provisioning-template-parameters",
    JSON.stringify({ SerialNumber: serial, Location: "factory-2" }),
  ], { home });
  return { home, ...result };
}

/** Skipped loudly without Debian's AWS CLI; under FLEETPROV_REQUIRE_TOOLS=1 (CI) a failure. */
const noAwsCli = skipWhenMissing(awsCliMissing(), {
  require: "FLEETPROV_REQUIRE_TOOLS",
  what: "the AWS CLI conformance tests",
});

Deno.test(
  "AWS CLI: a hooked template from create-provisioning-template denies one serial, overrides another; update-certificate INACTIVE refuses the device, ACTIVE lets it back",
  { ignore: noAwsCli },
  async () => {
    const cli = AWS_CLI;
    const dir = tempDir("fleetprov-aws-cli-");
    const emulator = await spawnEmulator([
      "--control-port",
      "0",
      "--key-type",
      "ec-p256",
      "--allow-command-hooks",
    ]);
    const aws = (...args: string[]) => awsIot(cli, emulator.control!.url, args);
    const ok = async (...args: string[]) => {
      const result = await aws(...args);
      assertEquals(result.code, 0, `aws iot ${args[0]}: ${result.stderr}`);
      return result.json;
    };
    try {
      Deno.writeTextFileSync(join(dir, "template.json"), JSON.stringify(TEMPLATE, null, 2));
      Deno.writeTextFileSync(
        join(dir, "claim-policy.json"),
        JSON.stringify(claimPolicy("SerialTemplate")),
      );
      const target = hook(dir);
      assertEquals(
        await ok(
          "create-provisioning-template",
          "--template-name",
          "SerialTemplate",
          "--template-body",
          `file://${join(dir, "template.json")}`,
          "--provisioning-role-arn",
          ROLE,
          "--pre-provisioning-hook",
          `targetArn=${target},payloadVersion=2020-04-01`,
          "--enabled",
        ),
        {
          templateArn: "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/SerialTemplate",
          templateName: "SerialTemplate",
          defaultVersionId: 1,
        },
      );
      const described = await ok(
        "describe-provisioning-template",
        "--template-name",
        "SerialTemplate",
      );
      assertEquals(described.preProvisioningHook, {
        targetArn: target,
        payloadVersion: "2020-04-01",
      });
      assertEquals([described.enabled, described.provisioningRoleArn], [true, ROLE]);
      assertEquals(JSON.parse(described.templateBody), TEMPLATE);

      // The claim certificate may use the new template's topics once its policy says so.
      const config = JSON.parse(readFileSync(emulator.configPath, "utf8"));
      const claimId = certificateIdOf(readFileSync(config.cert, "utf8"));
      const claimArn = `arn:aws:iot:us-east-1:123456789012:cert/${claimId}`;
      await ok(
        "create-policy",
        "--policy-name",
        "SerialClaimPolicy",
        "--policy-document",
        `file://${join(dir, "claim-policy.json")}`,
      );
      await ok("attach-policy", "--policy-name", "SerialClaimPolicy", "--target", claimArn);
      const attached = await ok("list-attached-policies", "--target", claimArn);
      assertEquals(attached.policies.map((p: { policyName: string }) => p.policyName), [
        "FleetprovClaimPolicy",
        "SerialClaimPolicy",
      ]);

      // The hook overrides SN-OVERRIDE's Location before the template is evaluated.
      const allowed = await device(emulator.configPath, "SerialTemplate", "SN-OVERRIDE");
      assertEquals(allowed.code, 0, allowed.stdout + allowed.stderr);
      const { thingName } = assertProvisioned(allowed.home);
      assertEquals(thingName, "board-SN-OVERRIDE");
      const thing = await ok("describe-thing", "--thing-name", thingName);
      assertEquals(thing.attributes, { serial: "SN-OVERRIDE", location: "hook-lab" });
      const rc = runtimeConfigOf(allowed.home);
      const credentials = {
        cert: readFileSync(String(rc.cert), "utf8"),
        key: readFileSync(String(rc.key), "utf8"),
      };
      const deviceId = certificateIdOf(credentials.cert);
      assertEquals((await ok("list-thing-principals", "--thing-name", thingName)).principals, [
        `arn:aws:iot:us-east-1:123456789012:cert/${deviceId}`,
      ]);

      // The hook denies SN-DENIED: RegisterThing ends on the rejected topic, the run is final.
      const denied = await device(emulator.configPath, "SerialTemplate", "SN-DENIED");
      assert(denied.code !== 0 && denied.code !== 75, `exit ${denied.code}`);
      assertMatch(denied.stdout + denied.stderr, /statusCode=403 errorCode=ACCESS_DENIED/);
      assertMatch(denied.stdout + denied.stderr, /pre-provisioning hook/);
      assertEquals(
        (await ok("list-things")).things.map((t: { thingName: string }) => t.thingName),
        ["board-SN-OVERRIDE"],
      );

      // Deactivated, the device's certificate is refused; reactivated, it connects.
      const endpoint = {
        endpoint: "localhost" as const,
        port: emulator.port,
        caCertPem: readFileSync(config["root-ca"], "utf8"),
      };
      await (await connect(endpoint, credentials, thingName)).endAsync();
      await ok("update-certificate", "--certificate-id", deviceId, "--new-status", "INACTIVE");
      assertEquals(
        (await ok("describe-certificate", "--certificate-id", deviceId)).certificateDescription
          .status,
        "INACTIVE",
      );
      await assertRejects(
        connect(endpoint, credentials, thingName),
        /connection closed before CONNACK/,
      );
      await ok("update-certificate", "--certificate-id", deviceId, "--new-status", "ACTIVE");
      await (await connect(endpoint, credentials, thingName)).endAsync();

      // Deactivated, the claim certificate stops a new device at CONNECT; reactivated, it provisions.
      await ok("update-certificate", "--certificate-id", claimId, "--new-status", "INACTIVE");
      const refused = await device(emulator.configPath, "SerialTemplate", "SN-LATE");
      assertEquals(refused.code, 1, refused.stdout + refused.stderr);
      await ok("update-certificate", "--certificate-id", claimId, "--new-status", "ACTIVE");
      const late = await device(emulator.configPath, "SerialTemplate", "SN-LATE");
      assertEquals(late.code, 0, late.stdout + late.stderr);

      // What AWS's CLI prints for the emulator's errors is what it prints against AWS.
      const missing = await aws("describe-thing", "--thing-name", "board-nope");
      assertEquals(missing.code, 254);
      assertMatch(
        missing.stderr,
        /An error occurred \(ResourceNotFoundException\) when calling the DescribeThing operation: Thing board-nope cannot be found\./,
      );
      const unsupported = await aws("create-thing", "--thing-name", "x");
      assertMatch(
        unsupported.stderr,
        /\(UnknownOperationException\) when calling the CreateThing operation: The emulator does not implement CreateThing/,
      );
    } finally {
      const stopped = await emulator.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
    }
  },
);

Deno.test(
  "AWS CLI: Greengrass's published template provisions a core device into its thing group with its policy",
  { ignore: noAwsCli },
  async () => {
    const cli = AWS_CLI;
    const dir = tempDir("fleetprov-aws-cli-gg-");
    const fixture = JSON.parse(
      readFileSync(
        join(ROOT, "tests", "fixtures", "aws_templates", "greengrass_fleet_provisioning.json"),
        "utf8",
      ),
    );
    Deno.writeTextFileSync(join(dir, "template.json"), JSON.stringify(fixture.template, null, 2));
    Deno.writeTextFileSync(
      join(dir, "claim-policy.json"),
      JSON.stringify(claimPolicy("GreengrassFleetProvisioningTemplate")),
    );
    Deno.writeTextFileSync(
      join(dir, "gg-policy.json"),
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Action: "iot:Connect", Resource: "*" }],
      }),
    );
    const emulator = await spawnEmulator([
      "--control-port",
      "0",
      "--key-type",
      "ec-p256",
      "--claim-policy-file",
      join(dir, "claim-policy.json"),
    ]);
    const aws = async (...args: string[]) => {
      const result = await awsIot(cli, emulator.control!.url, args);
      return result;
    };
    try {
      // As the Greengrass guide: the template names a thing group that must exist.
      const early = await aws(
        "create-provisioning-template",
        "--template-name",
        "GreengrassFleetProvisioningTemplate",
        "--description",
        "A provisioning template for Greengrass core devices.",
        "--provisioning-role-arn",
        ROLE,
        "--template-body",
        `file://${join(dir, "template.json")}`,
        "--enabled",
      );
      assertEquals(early.code, 0, early.stderr);
      const run = () =>
        runFleetprov([
          "--config-file",
          emulator.configPath,
          "--fleet-provisioning-template-name",
          "GreengrassFleetProvisioningTemplate",
          "--fleet-provisioning-template-parameters",
          JSON.stringify({
            ThingName: "MyGreengrassCore",
            ThingGroupName: "MyGreengrassCoreGroup",
          }),
        ], { home: deviceHome() });
      const noGroup = await run();
      assertMatch(
        noGroup.stdout + noGroup.stderr,
        /Policy GreengrassV2IoTThingPolicy does not exist/,
      );
      assertEquals(
        (await aws(
          "create-policy",
          "--policy-name",
          "GreengrassV2IoTThingPolicy",
          "--policy-document",
          `file://${join(dir, "gg-policy.json")}`,
        )).code,
        0,
      );
      const noPolicyGroup = await run();
      assertMatch(
        noPolicyGroup.stdout + noPolicyGroup.stderr,
        /Thing group MyGreengrassCoreGroup does not exist/,
      );
      assertEquals(
        (await aws("create-thing-group", "--thing-group-name", "MyGreengrassCoreGroup")).code,
        0,
      );
      const provisioned = await run();
      assertEquals(provisioned.code, 0, provisioned.stdout + provisioned.stderr);
      const thing = (await aws("describe-thing", "--thing-name", "MyGreengrassCore")).json;
      assertEquals([thing.thingName, thing.attributes], ["MyGreengrassCore", {}]);
      const principal =
        (await aws("list-thing-principals", "--thing-name", "MyGreengrassCore")).json.principals[0];
      const policies = (await aws("list-attached-policies", "--target", principal)).json.policies;
      assertEquals(policies.map((p: { policyName: string }) => p.policyName), [
        "GreengrassV2IoTThingPolicy",
      ]);
    } finally {
      await emulator.stop();
    }
  },
);
