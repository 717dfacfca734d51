// SPDX-License-Identifier: Apache-2.0
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertThrows,
} from "./support/assert.ts";
import mqtt from "mqtt";
import { encode } from "cborg";
import { createCsr, generateKeyPair } from "../src/pki/mod.ts";
import { decodePayload, definiteStrings, encodePayload } from "../src/protocol/mod.ts";
import type { Emulator } from "../src/emulator/mod.ts";
import {
  claimCredentials,
  connect,
  provisioningTemplate,
  request,
  withEmulator,
} from "./support/mod.ts";

/** CBOR text string of indefinite length, in chunks. */
function indefiniteText(...chunks: string[]): number[] {
  const out = [0x7f];
  for (const chunk of chunks) out.push(...encode(chunk));
  out.push(0xff);
  return out;
}

Deno.test("payload: JSON and CBOR round trips with the same keys", () => {
  const value = { certificateOwnershipToken: "tok", parameters: { SerialNumber: "SN-1" } };
  for (const format of ["json", "cbor"] as const) {
    assertEquals(decodePayload(encodePayload(value, format), format), value);
  }
  // CBOR is a map, not JSON text.
  assertEquals(encodePayload({ a: 1 }, "cbor"), new Uint8Array([0xa1, 0x61, 0x61, 0x01]));
});

Deno.test("payload: CBOR decoding accepts indefinite-length text and byte strings, maps and arrays", () => {
  // {_ "certificateOwnershipToken": (_ "to", "k"), "parameters": {"k": (_ "v", "1")}, "b": (_ h'01', h'0203')}
  const bytes = new Uint8Array([
    0xbf,
    ...encode("certificateOwnershipToken"),
    ...indefiniteText("to", "k"),
    ...encode("parameters"),
    0xa1,
    ...encode("k"),
    ...indefiniteText("v", "1"),
    ...encode("b"),
    0x5f,
    0x41,
    0x01,
    0x42,
    0x02,
    0x03,
    0xff,
    ...encode("list"),
    0x9f,
    ...indefiniteText("x"),
    0x01,
    0xff,
    0xff,
  ]);
  assertEquals(decodePayload(bytes, "cbor"), {
    certificateOwnershipToken: "tok",
    parameters: { k: "v1" },
    b: new Uint8Array([1, 2, 3]),
    list: ["x", 1],
  });
  // Long strings get a wider length header.
  const long = "x".repeat(300);
  assertEquals(
    decodePayload(new Uint8Array(indefiniteText(long.slice(0, 100), long.slice(100))), "cbor"),
    long,
  );
  // A definite payload is left byte for byte as it is.
  const plain = encode({ a: [1, "b", { c: 2.5 }] });
  assertEquals(definiteStrings(plain), plain);
});

Deno.test("payload: malformed CBOR and JSON fail with a sentence", () => {
  assertThrows(
    () => decodePayload(new Uint8Array([0xa1, 0x61]), "cbor"),
    Error,
    /CBOR payload is not valid/,
  );
  assertThrows(
    () => decodePayload(new Uint8Array([0x7f, 0x61, 0x61]), "cbor"),
    Error,
    /CBOR payload is not valid: the data ends/,
  );
  assertThrows(
    () => decodePayload(new Uint8Array([0x7f, 0x41, 0x61, 0xff]), "cbor"),
    Error,
    /chunk of another type/,
  );
  assertThrows(() => decodePayload(new TextEncoder().encode("{nope"), "json"));
});

Deno.test("emulator: the whole API over CBOR topics, answered in CBOR", () =>
  withEmulator({
    template: provisioningTemplate({
      parameters: { SerialNumber: { Type: "String" } },
      status: "ACTIVE",
      thingName: { Ref: "SerialNumber" },
    }),
  }, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator));
    const keys = await request(claim, "CreateKeysAndCertificate", {}, { format: "cbor" });
    assert(keys.accepted);
    assertMatch(keys.body.certificatePem as string, /BEGIN CERTIFICATE/);
    assertEquals(emulator.counters.CreateKeysAndCertificate.accepted, 1);

    const pair = await generateKeyPair("ec-p256");
    const csr = await createCsr("dev", pair.keys);
    const fromCsr = await request(claim, "CreateCertificateFromCsr", {
      certificateSigningRequest: csr,
    }, { format: "cbor" });
    assert(fromCsr.accepted);

    // A request with indefinite-length strings, as some CBOR encoders write them.
    const token = fromCsr.body.certificateOwnershipToken as string;
    const registerBytes = new Uint8Array([
      0xa2,
      ...encode("certificateOwnershipToken"),
      ...indefiniteText(token.slice(0, 10), token.slice(10)),
      ...encode("parameters"),
      0xa1,
      ...encode("SerialNumber"),
      ...indefiniteText("SN-", "CBOR"),
    ]);
    const registered = await request(claim, "RegisterThing", registerBytes, { format: "cbor" });
    assertEquals(registered.body, { thingName: "SN-CBOR", deviceConfiguration: {} });

    const rejected = await request(claim, "RegisterThing", { certificateOwnershipToken: "" }, {
      format: "cbor",
    });
    assertEquals(rejected.accepted, false);
    assertEquals(rejected.body.errorCode, "InvalidCertificateOwnershipToken");
    const garbage = await request(claim, "RegisterThing", new Uint8Array([0xa1, 0x61]), {
      format: "cbor",
    });
    assertEquals(garbage.body.errorCode, "InvalidPayload");
    await claim.endAsync();
  }));

function connectAlpn(emulator: Emulator, protocols?: string[]): Promise<mqtt.MqttClient> {
  const { cert, key } = claimCredentials(emulator);
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({
      protocol: "mqtts",
      host: "localhost",
      port: emulator.port,
      ca: emulator.caCertPem,
      cert,
      key,
      clientId: `alpn-${crypto.randomUUID()}`,
      reconnectPeriod: 0,
      ALPNProtocols: protocols,
    });
    client.once("connect", () => resolve(client));
    client.once("error", (e) => {
      client.end(true);
      reject(e);
    });
    client.once("close", () => reject(new Error("closed before CONNACK")));
  });
}

Deno.test("ALPN required: x-amzn-mqtt-ca connects, a connection without it is refused", () =>
  withEmulator({ alpn: "require" }, async (emulator) => {
    const ok = await connectAlpn(emulator, ["x-amzn-mqtt-ca"]);
    await ok.endAsync();
    const refused = emulator.events.waitFor("connect", (e) => !e.accepted);
    await assertRejects(connectAlpn(emulator));
    assertMatch((await refused).reason!, /did not negotiate ALPN x-amzn-mqtt-ca/);
    assert(emulator.lines.some((l) => l.includes("did not negotiate ALPN")));
  }));

Deno.test("ALPN optional (default off 443): connections with and without ALPN are accepted", () =>
  withEmulator({}, async (emulator) => {
    const withAlpn = await connectAlpn(emulator, ["x-amzn-mqtt-ca"]);
    await withAlpn.endAsync();
    const without = await connectAlpn(emulator);
    await without.endAsync();
    assertEquals(emulator.counters.connect.accepted, 2);
  }));
