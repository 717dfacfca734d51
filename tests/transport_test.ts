// SPDX-License-Identifier: Apache-2.0
/**
 * Payload formats and ports: CBOR end to end; port 443 with TLS ALPN
 * x-amzn-mqtt-ca, which the emulator can require.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { deviceHome, runFleetprov, testEmulator } from "./support/mod.ts";

function runtimeConfig(home: string): Record<string, unknown> {
  const path = join(home, ".aws-iot-device-client", "aws-iot-device-client-runtime.conf");
  return JSON.parse(readFileSync(path, "utf8"))["runtime-config"];
}

Deno.test("CBOR: every request and answer of a provisioning is CBOR", async () => {
  const emulator = await testEmulator();
  const formats: string[] = [];
  const off = emulator.events.on(
    "answer",
    (event) => formats.push(`${event.operation}:${event.format}`),
  );
  try {
    const home = deviceHome();
    const result = await runFleetprov([
      "--config-file",
      emulator.configPath,
      "--payload-format",
      "cbor",
    ], { home });
    assertEquals(result.code, 0, result.stderr);
    assertEquals(formats, ["CreateKeysAndCertificate:cbor", "RegisterThing:cbor"]);
    assertMatch(String(runtimeConfig(home)["thing-name"]), /^FPTemplateName-[0-9a-f]{64}$/);
  } finally {
    off();
    await emulator.close();
  }
});

const isRoot = process.getuid?.() === 0;

Deno.test({
  name: "port 443: fleetprov offers ALPN x-amzn-mqtt-ca and the emulator, requiring it, accepts",
  ignore: !isRoot,
  async fn() {
    const emulator = await testEmulator({ port: 443, alpn: "require" });
    const refusals: string[] = [];
    const off = emulator.events.on("connect", (e) => !e.accepted && refusals.push(e.reason ?? ""));
    try {
      assertEquals(emulator.port, 443);
      const home = deviceHome();
      const result = await runFleetprov(["--config-file", emulator.configPath], { home });
      assertEquals(result.code, 0, result.stderr);
      assertEquals(refusals, []);
      assertEquals(runtimeConfig(home)["completed-fp"], true);
    } finally {
      off();
      await emulator.close();
    }
  },
});
if (!isRoot) console.error("\n*** SKIPPING the port 443 test: binding port 443 needs root. ***\n");

Deno.test("ALPN required on a port where fleetprov offers none: refused, and the run gives up at its deadline", async () => {
  const emulator = await testEmulator({ alpn: "require" });
  const refused = emulator.events.waitFor("connect", (e) => !e.accepted);
  try {
    const home = deviceHome();
    const result = await runFleetprov([
      "--config-file",
      emulator.configPath,
      "--deadline",
      "1",
      "--step-timeout",
      "1",
      "--retry-base-delay",
      "0.05",
      "--retry-max-delay",
      "0.1",
    ], { home });
    const event = await refused;
    assertMatch(event.reason ?? "", /ALPN x-amzn-mqtt-ca/);
    assertEquals(result.code, 4, result.stderr);
    assertMatch(result.stderr, /^fleetprov: Provisioning did not finish within the 1 s deadline/m);
    assert(!result.stderr.includes("    at "), "no stack trace");
  } finally {
    await emulator.close();
  }
});
