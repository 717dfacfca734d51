// SPDX-License-Identifier: Apache-2.0
/**
 * On the board, a policy refusal names the packet, the topic and the policy
 * statement that allows it, as `fleetprov lint` prints its fixes: the MQTT
 * 3.1.1 close right after a SUBSCRIBE and PUBLISH, three times in a row, at
 * either step (the hostile broker); an MQTT 5 DISCONNECT 0x87 right after
 * them (a small MQTT 5 server of the test's own); an answer AWS drops for
 * want of iot:Receive (the emulator with a narrowed claim policy). The
 * SUBACK and PUBACK 0x87 lines are checked in lint_agreement_test.ts and
 * mqtt5_device_test.ts.
 */
import mqttPacket from "mqtt-packet";
import { assertEquals, assertMatch } from "./support/assert.ts";
import {
  boardEmulator,
  deviceArgs,
  deviceHome,
  GIVE_UP_FAST,
  goodAnswer,
  hostileBroker,
  hostileCertificate,
  oneLineError,
  runFleetprov,
  TEMPLATE_NAME,
  tlsTestServer,
} from "./support/mod.ts";
import { claimPolicy } from "../src/emulator/mod.ts";
import { ExitCode } from "../src/errors.ts";

const T = `$aws/provisioning-templates/${TEMPLATE_NAME}/provision/json`;
const RETRY = [
  "--deadline",
  "10",
  "--step-timeout",
  "1",
  "--retry-base-delay",
  "0.02",
  "--retry-max-delay",
  "0.05",
];

/** `{"Effect":"Allow","Action":A,"Resource":R}` as the line prints it (region and account `*`). */
function statement(action: string, resources: string[]): string {
  const arns = resources.map((r) => `arn:aws:iot:*:*:${r}`);
  return `add ${
    JSON.stringify({
      Effect: "Allow",
      Action: action,
      Resource: arns.length === 1 ? arns[0] : arns,
    })
  }`;
}

Deno.test({
  name:
    "MQTT 3.1.1: closed right after SUBSCRIBE and PUBLISH 3 times names the packets and the statements, at either step",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const emulator = await boardEmulator();
    const certificate = await hostileCertificate();
    try {
      for (const step of ["start", "certificate-created"] as const) {
        const closing = step === "start" ? "CreateKeysAndCertificate" : "RegisterThing";
        const broker = await hostileBroker(emulator, {
          onRequest: ({ operation }) =>
            operation === closing ? { close: "now" } : goodAnswer(operation, certificate),
        });
        try {
          const result = await runFleetprov(
            deviceArgs(emulator, {
              serial: "SN-1",
              retry: RETRY,
              extra: ["--port", String(broker.port)],
            }),
            { home: deviceHome() },
          );
          assertEquals(result.code, ExitCode.Rejected, result.stdout + result.stderr);
          const line = oneLineError(result, true);
          const filters = step === "start"
            ? [
              "$aws/certificates/create/json/accepted",
              "$aws/certificates/create/json/rejected",
              `${T}/accepted`,
              `${T}/rejected`,
            ]
            : [`${T}/accepted`, `${T}/rejected`];
          const publish = step === "start" ? "$aws/certificates/create/json" : T;
          const expected =
            `3 times in a row at step ${step}; the claim certificate's policy most likely forbids one of the packets: SUBSCRIBE to ${
              filters.join(", ")
            } and PUBLISH to ${publish}. A claim policy allows them with: ${
              statement("iot:Subscribe", filters.map((f) => `topicfilter/${f}`))
            }; ${statement("iot:Publish", [`topic/${publish}`])} (--mqtt-version 5`;
          assertEquals(line.includes(expected), true, `${line}\n---\n${expected}`);
        } finally {
          await broker.close();
        }
      }
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  name:
    "MQTT 5: DISCONNECT 0x87 right after SUBSCRIBE and PUBLISH names them and the statements, at once",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const emulator = await boardEmulator();
    const server = await tlsTestServer(emulator, (socket) => {
      const parser = mqttPacket.parser({ protocolVersion: 5 });
      const send = (packet: Record<string, unknown>) =>
        socket.write(
          mqttPacket.generate(packet as unknown as mqttPacket.Packet, { protocolVersion: 5 }),
        );
      parser.on("packet", (packet: mqttPacket.Packet) => {
        if (packet.cmd === "connect") {
          send({ cmd: "connack", reasonCode: 0, sessionPresent: false });
        }
        if (packet.cmd === "publish") {
          send({ cmd: "disconnect", reasonCode: 0x87, properties: { reasonString: "policy" } });
          socket.end();
        }
      });
      socket.on("data", (data: Uint8Array) => parser.parse(data as never));
    });
    try {
      const result = await runFleetprov(
        deviceArgs(emulator, {
          serial: "SN-1",
          retry: GIVE_UP_FAST,
          extra: ["--port", String(server.port), "--mqtt-version", "5"],
        }),
        { home: deviceHome() },
      );
      assertEquals(result.code, ExitCode.Rejected, result.stdout + result.stderr);
      const line = oneLineError(result, true);
      assertMatch(
        line,
        /The broker disconnected: DISCONNECT 0x87 Not authorized: right after SUBSCRIBE to \$aws\/certificates\/create\/json\/accepted, .* and PUBLISH to \$aws\/certificates\/create\/json: the claim policy lacks the permission for one of them; add \{"Effect":"Allow","Action":"iot:Subscribe",.*; add \{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:\*:\*:topic\/\$aws\/certificates\/create\/json"\} \(broker: "policy"\)\.$/,
      );
    } finally {
      await server.close();
      await emulator.close();
    }
  },
});

Deno.test("an answer AWS drops for want of iot:Receive: the line says so and names the statement", async () => {
  const policy = claimPolicy(TEMPLATE_NAME) as { Statement: Record<string, unknown>[] };
  policy.Statement[1].Action = "iot:Publish"; // Receive on nothing
  const emulator = await boardEmulator({ claimPolicy: policy, keyType: "ec-p256" });
  try {
    const result = await runFleetprov(
      deviceArgs(emulator, { serial: "SN-1", retry: RETRY }),
      { home: deviceHome() },
    );
    assertEquals(result.code, ExitCode.Rejected, result.stdout + result.stderr);
    assertMatch(
      oneLineError(result, true),
      /No answer on \$aws\/certificates\/create\/json\/accepted within 1000 ms \(AWS IoT drops an answer without a word when the claim policy lacks iot:Receive on its topic: add \{"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:\*:\*:topic\/\$aws\/certificates\/create\/json\/accepted"\}\)/,
    );
  } finally {
    await emulator.close();
  }
});
