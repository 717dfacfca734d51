// SPDX-License-Identifier: Apache-2.0
/**
 * fleetprov over MQTT 5 (`--mqtt-version 5`, config key `mqtt-version`):
 * it provisions as over MQTT 3.1.1, and where MQTT 5 carries reason codes its
 * error line says which packet, which code, which topic and what the policy
 * lacks, with the broker's reason string escaped and capped.
 */
import type { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import mqttPacket from "mqtt-packet";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  assertProvisioned,
  boardEmulator,
  deviceArgs,
  deviceHome,
  oneLineError,
  retryLines,
  runFleetprov,
  TEMPLATE_NAME,
  type TlsTestServer,
  tlsTestServer,
} from "./support/mod.ts";
import { claimPolicy, type Emulator } from "../src/emulator/mod.ts";
import { ExitCode } from "../src/errors.ts";
import { REASON_STRING_MAX_CHARS } from "../src/mqtt/reason_codes.ts";
import { untrusted } from "../src/text.ts";

for (
  const [path, extra] of [["keys", []], ["CSR", ["--generate-key", "ec-p256"]]] as const
) {
  Deno.test(`--mqtt-version 5: provisions (${path} path); claim and new certificate connect over MQTT 5`, async () => {
    const emulator = await boardEmulator();
    try {
      const versions: number[] = [];
      emulator.events.on("connect", (e) => e.accepted && versions.push(e.mqttVersion ?? 0));
      const home = deviceHome();
      const result = await runFleetprov(
        deviceArgs(emulator, { serial: `SN-V5-${path}`, extra: ["--mqtt-version", "5", ...extra] }),
        { home },
      );
      assertEquals(result.code, ExitCode.Ok, result.stdout + result.stderr);
      assertEquals(assertProvisioned(home).thingName, `board-SN-V5-${path}`);
      assertEquals(versions, [5, 5]);
    } finally {
      await emulator.close();
    }
  });
}

/** The default claim policy without the RegisterThing topics. */
function withoutTemplateTopics(): Record<string, unknown> {
  const policy = claimPolicy(TEMPLATE_NAME) as { Statement: { Resource: unknown }[] };
  for (const statement of policy.Statement) {
    if (Array.isArray(statement.Resource)) {
      statement.Resource = statement.Resource.filter((r) => !r.includes("provisioning-templates"));
    }
  }
  return policy;
}

Deno.test("claim policy without the template's topics: MQTT 5 names SUBACK 0x87, the topic and iot:Subscribe at once", async () => {
  const emulator = await boardEmulator({ claimPolicy: withoutTemplateTopics() });
  try {
    const home = deviceHome();
    const v5 = await runFleetprov(
      deviceArgs(emulator, { serial: "SN-NOSUB", extra: ["--mqtt-version", "5"] }),
      { home },
    );
    assertEquals(v5.code, ExitCode.Rejected, v5.stdout + v5.stderr);
    assertMatch(
      oneLineError(v5, true),
      new RegExp(
        `SUBACK 0x87 Not authorized for \\$aws/provisioning-templates/${TEMPLATE_NAME}/provision/json/accepted: the claim policy does not allow iot:Subscribe on it; add \\{"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:\\*:\\*:topicfilter/\\$aws/provisioning-templates/${TEMPLATE_NAME}/provision/json/accepted"\\}\\.$`,
      ),
    );
    assertEquals(retryLines(v5.stdout + v5.stderr), []);

    // MQTT 3.1.1 cannot say why: the broker disconnects right after the request, three times
    // in a row, and fleetprov guesses the policy. The claim connection's one SUBSCRIBE names
    // the template's topics too, so this happens before any certificate is minted.
    const v3 = await runFleetprov(deviceArgs(emulator, { serial: "SN-NOSUB" }), {
      home: deviceHome(),
    });
    assertEquals(v3.code, ExitCode.Rejected);
    assertMatch(
      oneLineError(v3, true),
      /closed the connection right after the request, before any answer, 3 times in a row at step start/,
    );
    // The line names the packets and the statements that allow them, as lint prints them.
    assertMatch(
      oneLineError(v3, true),
      new RegExp(
        `SUBSCRIBE to \\$aws/certificates/create/json/accepted, \\$aws/certificates/create/json/rejected, \\$aws/provisioning-templates/${TEMPLATE_NAME}/provision/json/accepted, \\$aws/provisioning-templates/${TEMPLATE_NAME}/provision/json/rejected and PUBLISH to \\$aws/certificates/create/json\\. A claim policy allows them with: add \\{"Effect":"Allow","Action":"iot:Subscribe","Resource":\\["arn:aws:iot:\\*:\\*:topicfilter/\\$aws/certificates/create/json/accepted",`,
      ),
    );
    assertEquals(emulator.counters.CreateKeysAndCertificate.accepted, 1); // MQTT 5's run only
  } finally {
    await emulator.close();
  }
});

Deno.test('config file key mqtt-version: "5" is used; anything else is a configuration error naming it', async () => {
  const emulator = await boardEmulator();
  try {
    const config = JSON.parse(readFileSync(emulator.configPath, "utf8"));
    const write = (value: unknown) => {
      const path = join(dirname(emulator.configPath), `v-${String(value)}.conf`);
      Deno.writeTextFileSync(path, JSON.stringify({ ...config, "mqtt-version": value }));
      Deno.chmodSync(path, 0o640);
      return path;
    };
    const versions: number[] = [];
    emulator.events.on("connect", (e) => e.accepted && versions.push(e.mqttVersion ?? 0));
    const home = deviceHome();
    const ok = await runFleetprov([
      "--config-file",
      write("5"),
      "--fleet-provisioning-template-parameters",
      '{"SerialNumber": "SN-KEY"}',
    ], { home });
    assertEquals(ok.code, ExitCode.Ok, ok.stderr);
    assertEquals(versions, [5, 5]);

    const bad = await runFleetprov(["--config-file", write("4")], { home: deviceHome() });
    assertEquals(bad.code, ExitCode.Config);
    assertMatch(oneLineError(bad), /mqtt-version/);
    assertMatch(bad.stderr, /3\.1\.1/);
  } finally {
    await emulator.close();
  }
});

/** An MQTT 5 broker that refuses every CONNECT with 0x87 and `reasonString` (a hostile one). */
function refusingBroker(emulator: Emulator, reasonString: string): Promise<TlsTestServer> {
  return tlsTestServer(emulator, (socket) => {
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on("packet", (packet: mqttPacket.Packet) => {
      if (packet.cmd !== "connect") return;
      socket.end(mqttPacket.generate({
        cmd: "connack",
        reasonCode: 0x87,
        sessionPresent: false,
        properties: { reasonString },
      }, { protocolVersion: 5 }));
    });
    socket.on("data", (data: Buffer) => parser.parse(data));
  });
}

Deno.test(`a hostile reason string is escaped and capped at ${REASON_STRING_MAX_CHARS} characters in the error line`, async () => {
  assertEquals(REASON_STRING_MAX_CHARS, 1024, "the cap the README names");
  const emulator = await boardEmulator({ keyPoolSize: 0 });
  const hostile = "no\r\nfleetprov: forged line \u001b[31mred\u001b[0m" + "x".repeat(10_000);
  const broker = await refusingBroker(emulator, hostile);
  try {
    const result = await runFleetprov(
      deviceArgs(emulator, {
        serial: "SN-HOSTILE",
        extra: ["--mqtt-version", "5", "--port", String(broker.port)],
      }),
      { home: deviceHome() },
    );
    assertEquals(result.code, ExitCode.Rejected, result.stderr);
    const line = oneLineError(result, true);
    assertMatch(line, /CONNACK 0x87 Not authorized \(broker: "no\\r\\nfleetprov: forged/);
    const kept = untrusted(hostile, { maxChars: REASON_STRING_MAX_CHARS });
    assert(line.includes(kept), line);
    const cut = Array.from(hostile).length - REASON_STRING_MAX_CHARS;
    assert(kept.endsWith(`x…[${cut} more characters]`), kept.slice(-60));
    assert(![...line].some((c) => c.charCodeAt(0) < 0x20), "no control character printed");
    assert(line.length < REASON_STRING_MAX_CHARS + 500, `capped: ${line.length} characters`);
  } finally {
    await broker.close();
    await emulator.close();
  }
});
