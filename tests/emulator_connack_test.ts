// SPDX-License-Identifier: Apache-2.0
/**
 * The emulator enforces AWS IoT's rule that a client waits for CONNACK
 * ("Before sending additional control packets or a disconnect request, the
 * client must wait for the CONNACK message", AWS IoT differences from MQTT
 * specifications): a raw MQTT client over the emulator's mutual TLS that
 * writes SUBSCRIBE and the create request right behind CONNECT is closed
 * without any answer (MQTT 3.1.1: a hang-up after CONNACK; MQTT 5: DISCONNECT
 * 0x82 Protocol Error with a reason string), and its request never reaches
 * the service; the same packets sent after CONNACK are answered. So a device
 * that pipelined before CONNACK fails here as it would against AWS IoT.
 */
import tls from "node:tls";
import mqttPacket from "mqtt-packet";
import { operationTopics } from "../src/protocol/mod.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { claimCredentials, type TestEmulator, testEmulator } from "./support/mod.ts";

type Version = 4 | 5;

/** A raw client: TLS with the claim certificate; collects parsed packets until the close. */
function rawClient(emulator: TestEmulator, version: Version) {
  const credentials = claimCredentials(emulator);
  const socket = tls.connect({
    host: "127.0.0.1",
    servername: emulator.endpoint,
    port: emulator.port,
    ca: emulator.caCertPem,
    cert: credentials.cert,
    key: credentials.key,
  });
  const parser = mqttPacket.parser({ protocolVersion: version });
  const packets: mqttPacket.Packet[] = [];
  const waiters: (() => void)[] = [];
  parser.on("packet", (packet) => {
    packets.push(packet);
    for (const waiter of waiters.splice(0)) waiter();
  });
  socket.on("data", (chunk: Buffer) => parser.parse(chunk));
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  const send = (packet: mqttPacket.Packet) =>
    socket.write(mqttPacket.generate(packet, { protocolVersion: version }));
  return {
    packets,
    closed,
    send,
    /** Resolves once a packet with `cmd` arrived. */
    async packet(cmd: string): Promise<mqttPacket.Packet> {
      for (;;) {
        const found = packets.find((p) => p.cmd === cmd);
        if (found) return found;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    end: () => socket.destroy(),
  };
}

const topics = operationTopics("CreateKeysAndCertificate", { format: "json" });
const connect = (clientId: string, version: Version): mqttPacket.IConnectPacket => ({
  cmd: "connect",
  protocolId: "MQTT",
  protocolVersion: version,
  clean: true,
  clientId,
  keepalive: 60,
});
const subscribe: mqttPacket.ISubscribePacket = {
  cmd: "subscribe",
  messageId: 1,
  subscriptions: [{ topic: topics.accepted, qos: 1 }, { topic: topics.rejected, qos: 1 }],
};
const publish: mqttPacket.IPublishPacket = {
  cmd: "publish",
  messageId: 2,
  qos: 1,
  dup: false,
  retain: false,
  topic: topics.request,
  payload: "{}",
};

for (const version of [4, 5] as const) {
  const name = version === 5 ? "MQTT 5" : "MQTT 3.1.1";
  Deno.test(`emulator (${name}): packets sent before CONNACK close the connection, unanswered; after CONNACK they are answered`, async () => {
    const emulator = await testEmulator({ keyType: "ec-p256" });
    try {
      const early = rawClient(emulator, version);
      const refused = emulator.events.waitFor("protocol", (e) => e.clientId === "early");
      // One write: CONNECT with SUBSCRIBE and PUBLISH right behind it.
      early.send(connect("early", version));
      early.send(subscribe);
      early.send(publish);
      const event = await refused;
      await early.closed;
      assertEquals(event.mqttVersion, version);
      assertMatch(event.reason, /before its CONNACK; AWS IoT requires it to wait for CONNACK/);
      const cmds = early.packets.map((p) => p.cmd);
      if (version === 5) {
        assertEquals(cmds, ["connack", "disconnect"]);
        const disconnect = early.packets[1] as mqttPacket.IDisconnectPacket;
        assertEquals(disconnect.reasonCode, 0x82);
        assertMatch(disconnect.properties?.reasonString ?? "", /wait for CONNACK/);
      } else {
        assertEquals(cmds, ["connack"]);
      }
      assertEquals(emulator.counters.CreateKeysAndCertificate.requests, 0);

      const patient = rawClient(emulator, version);
      patient.send(connect("patient", version));
      assertEquals(
        ((await patient.packet("connack")) as mqttPacket.IConnackPacket).sessionPresent,
        false,
      );
      patient.send(subscribe);
      patient.send(publish);
      const answer = (await patient.packet("publish")) as mqttPacket.IPublishPacket;
      assertEquals(answer.topic, topics.accepted);
      assert(patient.packets.some((p) => p.cmd === "suback"));
      assertEquals(emulator.counters.CreateKeysAndCertificate.accepted, 1);
      patient.end();
      await patient.closed;
    } finally {
      await emulator.close();
    }
  });
}
