// SPDX-License-Identifier: Apache-2.0
/**
 * The claim policy as data: the default is the policy of the AWS docs; a
 * policy file widens or narrows it. An unknown template is a ResourceNotFound
 * rejection when the policy allows its topics, a policy violation when it
 * does not (MQTT 3.1.1: disconnect; MQTT 5: reason code 0x87).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import {
  claimCredentials,
  closed,
  connect,
  nextPacket,
  request,
  runFleetprov,
  subscribeAnswers,
  tempDir,
  withEmulator,
} from "./support/mod.ts";
import { checkPolicyDocument, claimPolicy } from "../src/emulator/mod.ts";
import { parseEmulatorArgs } from "../src/commands/emulator.ts";
import { ExitCode } from "../src/errors.ts";

const ARN = "arn:aws:iot:us-east-1:123456789012:";

/** The AWS docs' claim policy with every template's provisioning topics allowed. */
const ANY_TEMPLATE = {
  Version: "2012-10-17",
  Statement: [
    { Effect: "Allow", Action: "iot:Connect", Resource: "*" },
    {
      Effect: "Allow",
      Action: ["iot:Publish", "iot:Receive"],
      Resource: [
        `${ARN}topic/$aws/certificates/create/*`,
        `${ARN}topic/$aws/provisioning-templates/*/provision/*`,
      ],
    },
    {
      Effect: "Allow",
      Action: "iot:Subscribe",
      Resource: [
        `${ARN}topicfilter/$aws/certificates/create/*`,
        `${ARN}topicfilter/$aws/provisioning-templates/*/provision/*`,
      ],
    },
  ],
};

Deno.test("claim policy: the default is the AWS docs' policy for the template name", () =>
  withEmulator({ templateName: "BoardTemplate", keyPoolSize: 0 }, (emulator) => {
    const policy = emulator.registry.policy("FleetprovClaimPolicy");
    assertEquals(policy, claimPolicy("BoardTemplate"));
    assert(
      JSON.stringify(policy).includes("$aws/provisioning-templates/BoardTemplate/provision/*"),
    );
  }));

Deno.test("unknown template, policy allows its topics: RegisterThing is rejected with 404 ResourceNotFound", () =>
  withEmulator({ claimPolicy: ANY_TEMPLATE, keyType: "ec-p256" }, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator));
    const created = await request(claim, "CreateKeysAndCertificate", {});
    const answer = await request(claim, "RegisterThing", {
      certificateOwnershipToken: created.body.certificateOwnershipToken,
    }, { templateName: "NoSuchTemplate" });
    assertEquals(answer.accepted, false);
    assertEquals(answer.body.statusCode, 404);
    assertEquals(answer.body.errorCode, "ResourceNotFound");
    assertMatch(answer.body.errorMessage as string, /NoSuchTemplate does not exist/);
    await claim.endAsync();
  }));

Deno.test("unknown template, default policy: MQTT 3.1.1 is disconnected, MQTT 5 gets SUBACK 0x87", () =>
  withEmulator({ keyPoolSize: 0 }, async (emulator) => {
    const v3 = await connect(emulator, claimCredentials(emulator));
    const gone = closed(v3);
    v3.subscribe("$aws/provisioning-templates/NoSuchTemplate/provision/json/accepted");
    await gone;

    const v5 = await connect(emulator, claimCredentials(emulator), undefined, { mqttVersion: 5 });
    const suback = nextPacket(v5, "suback");
    await assertRejects(
      subscribeAnswers(v5, "RegisterThing", { templateName: "NoSuchTemplate" }),
      /Not authorized/,
    );
    assertEquals((await suback).granted, [0x87, 0x87]);
    await v5.endAsync();
  }));

Deno.test("a narrowed claim policy (no CreateCertificateFromCsr topics) is enforced per MQTT version", () => {
  // ANY_TEMPLATE allows the keys and RegisterThing topics, not $aws/certificates/create-from-csr/*.
  return withEmulator({ claimPolicy: ANY_TEMPLATE, keyPoolSize: 0 }, async (emulator) => {
    const v5 = await connect(emulator, claimCredentials(emulator), undefined, { mqttVersion: 5 });
    const suback = nextPacket(v5, "suback");
    await assertRejects(subscribeAnswers(v5, "CreateCertificateFromCsr"), /Not authorized/);
    assertEquals((await suback).granted, [0x87, 0x87]);
    const violation = emulator.events.waitFor("violation");
    await assertRejects(
      v5.publishAsync("$aws/certificates/create-from-csr/json", "{}", { qos: 1 }),
      /Not authorized/,
    );
    assertEquals((await violation).disconnected, false);
    await v5.endAsync();

    const v3 = await connect(emulator, claimCredentials(emulator));
    const gone = closed(v3);
    v3.subscribe("$aws/certificates/create-from-csr/json/accepted");
    await gone;
  });
});

Deno.test("MQTT 5 user properties pass through the broker between clients the policy allows", () =>
  withEmulator({
    claimPolicy: {
      Statement: [{ Effect: "Allow", Action: "iot:*", Resource: `${ARN}*/fleet/*` }, {
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: "*",
      }],
    },
    keyPoolSize: 0,
  }, async (emulator) => {
    const options = { mqttVersion: 5 as const };
    const receiver = await connect(emulator, claimCredentials(emulator), "receiver", options);
    const sender = await connect(emulator, claimCredentials(emulator), "sender", options);
    await receiver.subscribeAsync("fleet/telemetry", { qos: 1 });
    const received = new Promise<Record<string, unknown> | undefined>((resolve) =>
      receiver.once("message", (_topic, _payload, packet) => resolve(packet.properties))
    );
    await sender.publishAsync("fleet/telemetry", "x", {
      qos: 1,
      properties: { userProperties: { board: "SN-1", batch: ["a", "b"] } },
    });
    assertEquals({ ...(await received)?.userProperties as object }, {
      board: "SN-1",
      batch: ["a", "b"],
    });
    await sender.endAsync();
    await receiver.endAsync();
  }));

Deno.test("--claim-policy-file: read, checked, and refused with the file and the problem named", async () => {
  const dir = tempDir();
  const good = join(dir, "good.json");
  writeFileSync(good, JSON.stringify(ANY_TEMPLATE));
  const options = parseEmulatorArgs(["--state-dir", dir, "--claim-policy-file", good]);
  assert(options !== "help");
  assertEquals(options.claimPolicy, ANY_TEMPLATE);
  assertEquals(
    (parseEmulatorArgs(["--state-dir", dir, "--key-type", "ec-p256"]) as { keyType: string })
      .keyType,
    "ec-p256",
  );

  const cases: [unknown, RegExp][] = [
    [[], /is not an AWS IoT policy/],
    [{ Statement: [] }, /has no "Statement"/],
    [{ Statement: [{ Effect: "Maybe", Action: "iot:Connect", Resource: "*" }] }, /"Effect"/],
    [{ Statement: [{ Effect: "Allow", Action: 7, Resource: "*" }] }, /"Action"/],
    [{ Statement: [{ Effect: "Allow", Action: "iot:*" }] }, /statement 1 has no "Resource"/],
    [
      { Statement: [{ Effect: "Allow", Action: "iot:*", Resource: "*", Principal: "*" }] },
      /statement 1 has "Principal", which is not a policy statement element/,
    ],
  ];
  for (const [policy, message] of cases) {
    const file = join(dir, "bad.json");
    writeFileSync(file, JSON.stringify(policy));
    const result = await runFleetprov(
      ["emulator", "--state-dir", join(dir, "state"), "--claim-policy-file", file],
      { home: dir },
    );
    assertEquals(result.code, ExitCode.Config, result.stderr);
    assertMatch(result.stderr, new RegExp(`--claim-policy-file ${file}`));
    assertMatch(result.stderr, message);
  }
  // What AWS IoT accepts but lint and the emulator cannot evaluate as written is a warning.
  const file = join(dir, "conditional.json");
  writeFileSync(
    file,
    JSON.stringify({
      Statement: [
        { Effect: "Allow", Action: "iot:Connect", Resource: "*", Condition: {} },
        { Effect: "Allow", Action: "s3:GetObject", Resource: "*" },
      ],
    }),
  );
  const accepted = parseEmulatorArgs([
    "--state-dir",
    join(dir, "state"),
    "--claim-policy-file",
    file,
  ]);
  assert(accepted !== "help");
  assertEquals((accepted.claimPolicy as { Statement: unknown[] }).Statement.length, 2);
  const warnings = checkPolicyDocument(accepted.claimPolicy, "conditional.json");
  assertEquals(warnings.length, 2, warnings.join("\n"));
  assertMatch(
    warnings[0],
    /statement 1 has a "Condition".*this Allow is counted as granting nothing/,
  );
  assertMatch(warnings[1], /statement 2 has action "s3:GetObject", which is not an AWS IoT action/);
  const wrongKey = await runFleetprov(
    ["emulator", "--state-dir", join(dir, "state"), "--key-type", "rsa-4096"],
    { home: dir },
  );
  assertEquals(wrongKey.code, ExitCode.Config);
  assertMatch(wrongKey.stderr, /--key-type "rsa-4096" must be rsa-2048 or ec-p256/);
});
