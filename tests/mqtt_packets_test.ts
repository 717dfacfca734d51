// SPDX-License-Identifier: Apache-2.0
/**
 * The device's own MQTT codec (src/mqtt/packets.ts) against mqtt-packet, the
 * codec of MQTT.js and aedes: what the device writes, mqtt-packet reads as
 * the same packet; what a broker writes (MQTT 3.1.1 and 5, with properties),
 * the device reads; and what no broker may send is refused with a sentence
 * naming the packet, never read past its end.
 */
import mqttPacket from "mqtt-packet";
import {
  connectPacket,
  decodePacket,
  DISCONNECT_PACKET,
  MalformedPacketError,
  PINGREQ,
  type ProtocolLevel,
  pubackPacket,
  publishPacket,
  subscribePacket,
} from "../src/mqtt/packets.ts";
import { assertEquals, assertMatch, assertThrows } from "./support/assert.ts";

/** What mqtt-packet reads from `bytes` (exactly one packet). */
function parsed(bytes: Uint8Array, level: ProtocolLevel): mqttPacket.Packet {
  const parser = mqttPacket.parser({ protocolVersion: level });
  const packets: mqttPacket.Packet[] = [];
  parser.on("packet", (packet) => packets.push(packet));
  parser.on("error", (error) => {
    throw error;
  });
  parser.parse(Buffer.from(bytes));
  assertEquals(packets.length, 1);
  return packets[0];
}

function generated(packet: mqttPacket.Packet, level: ProtocolLevel): Uint8Array {
  return new Uint8Array(mqttPacket.generate(packet, { protocolVersion: level }));
}

for (const level of [4, 5] as const) {
  Deno.test(`mqtt packets (level ${level}): what the device writes reads back the same in mqtt-packet`, () => {
    const connect = parsed(
      connectPacket("board-ü", { keepaliveSeconds: 60, level }),
      level,
    ) as mqttPacket.IConnectPacket;
    assertEquals(
      [connect.cmd, connect.clientId, connect.keepalive, connect.clean, connect.protocolVersion],
      ["connect", "board-ü", 60, true, level],
    );
    const filters = [
      "$aws/certificates/create/json/accepted",
      "$aws/certificates/create/json/rejected",
    ];
    const subscribe = parsed(
      subscribePacket(7, filters, level),
      level,
    ) as mqttPacket.ISubscribePacket;
    assertEquals(subscribe.messageId, 7);
    assertEquals(subscribe.subscriptions.map((s) => [s.topic, s.qos]), filters.map((f) => [f, 1]));
    const payload = new Uint8Array(200_000).fill(7); // a 3-byte remaining length
    const publish = parsed(
      publishPacket(65535, { topic: "$aws/certificates/create/json", payload }, level),
      level,
    ) as mqttPacket.IPublishPacket;
    assertEquals([publish.qos, publish.messageId, publish.topic], [
      1,
      65535,
      "$aws/certificates/create/json",
    ]);
    assertEquals((publish.payload as Buffer).length, payload.length);
    assertEquals((parsed(pubackPacket(9), level) as mqttPacket.IPubackPacket).messageId, 9);
    assertEquals(parsed(PINGREQ, level).cmd, "pingreq");
    assertEquals(parsed(DISCONNECT_PACKET, level).cmd, "disconnect");
  });
}

Deno.test("mqtt packets: what a broker writes, MQTT 3.1.1", () => {
  assertEquals(
    decodePacket(generated({ cmd: "connack", returnCode: 5, sessionPresent: false }, 4), 4),
    { cmd: "connack", code: 5 },
  );
  assertEquals(
    decodePacket(generated({ cmd: "suback", messageId: 3, granted: [1, 0x80] }, 4), 4),
    { cmd: "suback", id: 3, codes: [1, 0x80] },
  );
  const answer = decodePacket(
    generated({
      cmd: "publish",
      topic: "a/accepted",
      payload: Buffer.from("{}"),
      qos: 1,
      messageId: 4,
      dup: false,
      retain: false,
    }, 4),
    4,
  );
  assertEquals(answer, {
    cmd: "publish",
    topic: "a/accepted",
    qos: 1,
    id: 4,
    payload: new Uint8Array([0x7b, 0x7d]),
  });
  assertEquals(decodePacket(generated({ cmd: "puback", messageId: 5 }, 4), 4), {
    cmd: "puback",
    id: 5,
    code: 0,
  });
  assertEquals(decodePacket(generated({ cmd: "pingresp" }, 4), 4), { cmd: "pingresp" });
});

Deno.test("mqtt packets: what a broker writes, MQTT 5 with properties", () => {
  assertEquals(
    decodePacket(
      generated({
        cmd: "connack",
        reasonCode: 0,
        sessionPresent: false,
        properties: {
          receiveMaximum: 100,
          topicAliasMaximum: 8,
          maximumPacketSize: 149504,
          sharedSubscriptionAvailable: false,
          assignedClientIdentifier: "x",
          userProperties: { a: "b" },
        },
      }, 5),
      5,
    ),
    { cmd: "connack", code: 0 },
  );
  assertEquals(
    decodePacket(
      generated({
        cmd: "connack",
        reasonCode: 0x87,
        sessionPresent: false,
        properties: { reasonString: "no\r\nforged" },
      }, 5),
      5,
    ),
    { cmd: "connack", code: 0x87, reasonString: "no\r\nforged" },
  );
  assertEquals(
    decodePacket(
      generated({
        cmd: "suback",
        messageId: 1,
        granted: [1, 0x87],
        properties: { reasonString: "denied" },
      }, 5),
      5,
    ),
    { cmd: "suback", id: 1, codes: [1, 0x87], reasonString: "denied" },
  );
  assertEquals(
    decodePacket(
      generated({
        cmd: "puback",
        messageId: 2,
        reasonCode: 0x87,
        properties: { reasonString: "no publish" },
      }, 5),
      5,
    ),
    { cmd: "puback", id: 2, code: 0x87, reasonString: "no publish" },
  );
  const answer = decodePacket(
    generated({
      cmd: "publish",
      topic: "a/rejected",
      payload: Buffer.from("x"),
      qos: 0,
      dup: false,
      retain: false,
      properties: {
        payloadFormatIndicator: true,
        contentType: "application/json",
        correlationData: Buffer.from([1, 2]),
        messageExpiryInterval: 10,
        userProperties: { k: ["v1", "v2"] },
      },
    }, 5),
    5,
  );
  assertEquals(answer, {
    cmd: "publish",
    topic: "a/rejected",
    qos: 0,
    payload: new Uint8Array([0x78]),
  });
  assertEquals(
    decodePacket(
      generated({ cmd: "disconnect", reasonCode: 0x8e, properties: { reasonString: "taken" } }, 5),
      5,
    ),
    { cmd: "disconnect", code: 0x8e, reasonString: "taken" },
  );
  assertEquals(decodePacket(new Uint8Array([0xe0, 0]), 5), { cmd: "disconnect", code: 0 });
});

Deno.test("mqtt packets: what no broker may send is refused, naming the packet", () => {
  const refused = (bytes: number[], level: ProtocolLevel, why: RegExp) =>
    assertMatch(
      assertThrows(() => decodePacket(new Uint8Array(bytes), level), MalformedPacketError).message,
      why,
    );
  refused([0x20, 1, 0], 4, /malformed CONNACK packet: it ends in the middle of a field/);
  refused([0x20, 3, 0, 0, 0], 4, /CONNACK packet: 1 bytes follow its last field/);
  refused([0x22, 2, 0, 0], 4, /CONNACK packet: reserved flags 2/);
  refused([0x20, 5, 0, 0, 2, 0x7f, 0], 5, /CONNACK packet: unknown property 0x7f/);
  refused([0x20, 4, 0, 0, 9, 0x1f], 5, /CONNACK packet: its properties run past its end/);
  refused([0x20, 8, 0, 0x87, 5, 0x1f, 0, 2, 0xc3, 0x28], 5, /a string is not valid UTF-8/);
  refused([0x34, 5, 0, 1, 0x61, 0, 1], 4, /PUBLISH packet: QoS 2/);
  refused([0x30, 3, 0, 9, 0x61], 4, /PUBLISH packet: it ends in the middle of a field/);
  refused([0xe0, 0], 4, /DISCONNECT packet: a broker sends DISCONNECT over MQTT 5 only/);
  refused([0x10, 0], 4, /type 1 packet: a client never receives this packet type here/);
  refused([0x90, 2, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x7f], 5, /SUBACK packet/);
  // Found by the differential fuzz (tests/mqtt_fuzz_test.ts), refused as mqtt-packet does.
  refused([0x20, 2, 2, 0], 4, /CONNACK packet: its flags 2 set reserved bits/);
  refused([0x90, 3, 0, 1, 5], 4, /SUBACK packet: return code 0x5 is not one it may carry/);
  refused([0x90, 4, 0, 1, 0, 0x05], 5, /SUBACK packet: return code 0x5 is not one/);
  refused([0x40, 3, 0, 1, 0x05], 5, /PUBACK packet: reason code 0x5 is not one it may carry/);
  refused([0xe0, 1, 0x10], 5, /DISCONNECT packet: reason code 0x10 is not one it may carry/);
  refused([0x90, 7, 0x5d, 0x17, 4, 0xa2, 0, 0x0a, 0x97], 5, /SUBACK packet: unknown property 0xa2/);
  refused([0x20, 4, 0, 0, 0x80, 0], 5, /a variable byte integer is not in its shortest form/);
  refused(
    [0xe0, 11, 0, 9, 0x1f, 0, 2, 0x61, 0x61, 0x1f, 0, 1, 0x62],
    5,
    /DISCONNECT packet: property 0x1f appears more than once/,
  );
});
