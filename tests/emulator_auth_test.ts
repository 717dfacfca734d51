// SPDX-License-Identifier: Apache-2.0
import { assert, assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { readFileSync } from "node:fs";
import type { MqttClient } from "mqtt";
import { operationTopics } from "../src/protocol/mod.ts";
import {
  claimCredentials,
  closed,
  connect,
  nextPacket,
  provisioningTemplate,
  request,
  testEmulator,
  withEmulator,
} from "./support/mod.ts";

const INACTIVE_TEMPLATE = provisioningTemplate({
  parameters: { "AWS::IoT::Certificate::Id": { Type: "String" } },
  status: "Inactive",
  thingName: { "Fn::Join": ["-", ["off", { Ref: "AWS::IoT::Certificate::Id" }]] },
});

for (
  const [version, refused] of [
    // MQTT 3.1.1: AWS IoT hangs up without a CONNACK.
    [4, () => /connection closed before CONNACK/],
    // MQTT 5: CONNACK 0x87 Not authorized, with a reason string naming the problem.
    [5, (why: RegExp) => new RegExp(`CONNACK 135: .*${why.source}`)],
  ] as const
) {
  Deno.test(`connect (MQTT ${version === 5 ? "5" : "3.1.1"}): claim accepted; foreign, missing, PENDING_ACTIVATION and INACTIVE certificates refused`, async () => {
    const emulator = await testEmulator({ template: INACTIVE_TEMPLATE, keyType: "ec-p256" });
    const other = await testEmulator({ keyPoolSize: 0 });
    const mqttVersion = version;
    try {
      const claim = await connect(emulator, claimCredentials(emulator), "claim-1", { mqttVersion });
      assertEquals(emulator.registry.certificate(emulator.claim.certificateId)?.status, "ACTIVE");

      const refusal = async (
        attempt: Promise<unknown>,
        why: RegExp,
      ) => {
        const seen = emulator.events.waitFor("connect", (e) => !e.accepted);
        await assertRejects(attempt, refused(why));
        const event = await seen;
        assertMatch(event.reason!, why);
        assertEquals(event.mqttVersion, version);
      };

      await refusal(
        connect(emulator, claimCredentials(other), undefined, { mqttVersion }),
        /not issued by the emulator CA/,
      );
      await refusal(
        connect(emulator, { cert: "", key: "" }, undefined, { mqttVersion }),
        /no client certificate/,
      );

      const created = await request(claim, "CreateKeysAndCertificate", {});
      const { certificatePem, privateKey, certificateOwnershipToken } = created.body as Record<
        string,
        string
      >;
      const device = { cert: certificatePem, key: privateKey };
      await refusal(
        connect(emulator, device, undefined, { mqttVersion }),
        /is PENDING_ACTIVATION/,
      );

      const registered = await request(claim, "RegisterThing", { certificateOwnershipToken });
      assert(registered.accepted, JSON.stringify(registered.body));
      await refusal(
        connect(emulator, device, registered.body.thingName as string, { mqttVersion }),
        /is INACTIVE/,
      );
      await claim.endAsync();
    } finally {
      await emulator.close();
      await other.close();
    }
  });
}

Deno.test("subscribe before publish: without a subscription the answer is dropped and logged", () =>
  withEmulator({}, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator), "no-sub");
    const dropped = emulator.events.waitFor("dropped");
    await claim.publishAsync("$aws/certificates/create/json", "{}", { qos: 1 });
    const event = await dropped;
    assertEquals(event.operation, "CreateKeysAndCertificate");
    assertEquals(event.topic, "$aws/certificates/create/json/accepted");
    assertMatch(event.reason, /did not subscribe/);
    assert(emulator.lines.some((l) => l.startsWith("no answer: client no-sub did not subscribe")));
    assertEquals(emulator.counters.CreateKeysAndCertificate.dropped, 1);
    assertEquals(emulator.counters.CreateKeysAndCertificate.accepted, 0);

    // Subscribed to accepted only: a rejection is dropped too.
    const register = operationTopics("RegisterThing", { templateName: "FleetprovTemplate" });
    await claim.subscribeAsync(register.accepted);
    const droppedRejection = emulator.events.waitFor("dropped");
    await claim.publishAsync(register.request, JSON.stringify({ certificateOwnershipToken: "" }));
    assertEquals((await droppedRejection).topic, register.rejected);
    await claim.endAsync();
  }));

Deno.test("answers go only to the asking connection; requests are not forwarded", () =>
  withEmulator({}, async (emulator) => {
    const a = await connect(emulator, claimCredentials(emulator), "asker-a");
    const b = await connect(emulator, claimCredentials(emulator), "bystander-b");
    const seenByB: string[] = [];
    b.on("message", (topic, payload) => seenByB.push(`${topic} ${payload}`));
    await b.subscribeAsync(["$aws/certificates/create/#"], { qos: 1 });

    const answerA = await request(a, "CreateKeysAndCertificate", {});
    assert(answerA.accepted);
    // B now asks itself: anything sent to B for A's request would arrive before B's own answer.
    const answerB = await request(b, "CreateKeysAndCertificate", {});
    assert(answerB.accepted);
    assertEquals(seenByB.length, 1, seenByB.join("\n"));
    assert(seenByB[0].includes(answerB.body.certificateId as string));
    assert(!seenByB[0].includes(answerA.body.certificateId as string));
    await a.endAsync();
    await b.endAsync();
  }));

Deno.test("claim policy, MQTT 3.1.1: publishing or subscribing outside the provisioning topics disconnects", () =>
  withEmulator({ keyPoolSize: 0 }, async (emulator) => {
    for (
      const act of [
        (c: MqttClient) => c.publish("devices/telemetry", "x", { qos: 1 }),
        (c: MqttClient) => c.subscribe("#"),
        (c: MqttClient) => c.publish("$aws/certificates/create/json/accepted", "{}"),
        (c: MqttClient) =>
          c.publish("$aws/provisioning-templates/OtherTemplate/provision/json", "{}"),
      ]
    ) {
      const claim = await connect(emulator, claimCredentials(emulator));
      const violation = emulator.events.waitFor("violation");
      const gone = closed(claim);
      act(claim);
      const event = await violation;
      await gone;
      assertEquals(event.clientId, claim.options.clientId);
      assertEquals(event.disconnected, true);
      claim.end(true);
    }
    assert(emulator.lines.some((l) => l.includes("may not iot:Publish devices/telemetry")));
  }));

Deno.test("claim policy, MQTT 5: SUBACK and PUBACK 0x87 Not authorized with a reason string; the connection stays", () =>
  withEmulator({ keyPoolSize: 0 }, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator), undefined, {
      mqttVersion: 5,
    });
    let closedEarly = false;
    claim.once("close", () => (closedEarly = true));
    const suback = nextPacket(claim, "suback");
    await assertRejects(
      claim.subscribeAsync(["#", "$aws/certificates/create/json/accepted"], { qos: 1 }),
      /Not authorized/,
    );
    assertEquals((await suback).granted, [0x87, 1]);

    const puback = nextPacket(claim, "puback");
    await assertRejects(
      claim.publishAsync("devices/telemetry", "x", { qos: 1 }),
      /Not authorized/,
    );
    const ack = await puback;
    assertEquals(ack.reasonCode, 0x87);
    assertMatch(ack.properties?.reasonString ?? "", /iot:Publish on devices\/telemetry/);

    // Still connected: a provisioning request goes through on the same connection.
    const created = await request(claim, "CreateKeysAndCertificate", {});
    assert(created.accepted);
    assertEquals(closedEarly, false);
    assertEquals(emulator.counters.connect.accepted, 1);
    await claim.endAsync();
  }));

Deno.test("ownership tokens: empty, unknown and expired tokens are rejected; expired certificates deleted", async () => {
  const emulator = await testEmulator({ tokenLifetimeMs: 0 });
  let certificateId = "";
  let certificateOwnershipToken = "";
  try {
    const claim = await connect(emulator, claimCredentials(emulator));
    const empty = await request(claim, "RegisterThing", {});
    assertEquals(empty.body, {
      statusCode: 400,
      errorCode: "InvalidCertificateOwnershipToken",
      errorMessage: "Certificate ownership token cannot be empty.",
    });
    const unknown = await request(claim, "RegisterThing", { certificateOwnershipToken: "forged" });
    assertEquals(unknown.body.errorCode, "InvalidCertificateOwnershipToken");

    const created = await request(claim, "CreateKeysAndCertificate", {});
    ({ certificateId, certificateOwnershipToken } = created.body as Record<string, string>);
    const expired = await request(claim, "RegisterThing", { certificateOwnershipToken });
    assertEquals(expired.accepted, false);
    assertEquals(expired.body.statusCode, 400);
    assertEquals(expired.body.errorCode, "InvalidCertificateOwnershipToken");
    assertEquals(emulator.registry.certificate(certificateId), undefined);
    assertEquals(emulator.registry.things(), []);
    await claim.endAsync();
  } finally {
    await emulator.close();
  }
  // The token is a secret: the registry file keeps only its hash.
  const file = readFileSync(emulator.registry.path, "utf8");
  assert(!file.includes(certificateOwnershipToken));
});

Deno.test("RegisterThing: a missing template parameter is a clear InvalidParameters rejection", () =>
  withEmulator({
    template: provisioningTemplate({
      parameters: { SerialNumber: { Type: "String" } },
      thingName: { Ref: "SerialNumber" },
      deviceConfiguration: { Fleet: { "Fn::Sub": "fleet-${SerialNumber}" } },
    }),
  }, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator));
    const created = await request(claim, "CreateKeysAndCertificate", {});
    const token = created.body.certificateOwnershipToken;
    const missing = await request(claim, "RegisterThing", { certificateOwnershipToken: token });
    assertEquals(missing.body.statusCode, 400);
    assertEquals(missing.body.errorCode, "InvalidParameters");
    assertMatch(missing.body.errorMessage as string, /SerialNumber is required/);
    const ok = await request(claim, "RegisterThing", {
      certificateOwnershipToken: token,
      parameters: { SerialNumber: "SN-9" },
    });
    assertEquals(ok.body, { thingName: "SN-9", deviceConfiguration: { Fleet: "fleet-SN-9" } });
    await claim.endAsync();
  }));

Deno.test("state persists across restarts: same CA, claim, registry; devices reconnect", async () => {
  const first = await testEmulator();
  const stateDir = first.configPath.replace(/\/device-client\.conf$/, "");
  let thingName: string;
  let device: { cert: string; key: string };
  try {
    const claim = await connect(first, claimCredentials(first));
    const created = await request(claim, "CreateKeysAndCertificate", {});
    const body = created.body as Record<string, string>;
    device = { cert: body.certificatePem, key: body.privateKey };
    const registered = await request(claim, "RegisterThing", {
      certificateOwnershipToken: body.certificateOwnershipToken,
    });
    thingName = registered.body.thingName as string;
    await claim.endAsync();
  } finally {
    await first.close();
  }
  const second = await testEmulator({ stateDir });
  try {
    assertEquals(second.caCertPem, first.caCertPem);
    assertEquals(second.claim.certificateId, first.claim.certificateId);
    assertEquals(second.registry.thing(thingName)?.thingName, thingName);
    const client = await connect(second, device, thingName);
    await client.endAsync();
    const claim = await connect(second, claimCredentials(second));
    await claim.endAsync();
  } finally {
    await second.close();
  }
});
