// SPDX-License-Identifier: Apache-2.0
/**
 * Payload formats and ports: CBOR end to end; port 443 with TLS ALPN
 * x-amzn-mqtt-ca, which the emulator can require.
 */
import { ExitCode } from "../src/errors.ts";
import process from "node:process";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  deviceArgs,
  deviceHome,
  GIVE_UP_FAST,
  runFleetprov,
  runtimeConfigOf,
  skipWhenMissing,
  withEmulator,
} from "./support/mod.ts";

Deno.test("CBOR: every request and answer of a provisioning is CBOR", () =>
  withEmulator({}, async (emulator) => {
    const formats: string[] = [];
    emulator.events.on("answer", (event) => formats.push(`${event.operation}:${event.format}`));
    const home = deviceHome();
    const result = await runFleetprov(
      deviceArgs(emulator, { retry: [], extra: ["--payload-format", "cbor"] }),
      { home },
    );
    assertEquals(result.code, 0, result.stderr);
    assertEquals(formats, ["CreateKeysAndCertificate:cbor", "RegisterThing:cbor"]);
    assertMatch(String(runtimeConfigOf(home)["thing-name"]), /^FPTemplateName-[0-9a-f]{64}$/);
  }));

Deno.test({
  name: "port 443: fleetprov offers ALPN x-amzn-mqtt-ca and the emulator, requiring it, accepts",
  ignore: skipWhenMissing(
    process.getuid?.() === 0 ? undefined : "binding port 443 needs root (CI runs as root).",
    { require: "FLEETPROV_REQUIRE_TOOLS", what: "the port 443 test" },
  ),
  fn: () =>
    withEmulator({ port: 443, alpn: "require" }, async (emulator) => {
      const refusals: string[] = [];
      emulator.events.on("connect", (e) => !e.accepted && refusals.push(e.reason ?? ""));
      assertEquals(emulator.port, 443);
      const home = deviceHome();
      const result = await runFleetprov(deviceArgs(emulator, { retry: [] }), { home });
      assertEquals(result.code, 0, result.stderr);
      assertEquals(refusals, []);
      assertEquals(runtimeConfigOf(home)["completed-fp"], true);
    }),
});

Deno.test("ALPN required on a port where fleetprov offers none: refused, and the run gives up at its deadline", () =>
  withEmulator({ alpn: "require" }, async (emulator) => {
    const refused = emulator.events.waitFor("connect", (e) => !e.accepted);
    const home = deviceHome();
    const result = await runFleetprov(
      deviceArgs(emulator, { retry: GIVE_UP_FAST, extra: ["--retry-max-delay", "0.1"] }),
      { home },
    );
    const event = await refused;
    assertMatch(event.reason ?? "", /ALPN x-amzn-mqtt-ca/);
    assertEquals(result.code, ExitCode.TempFail, result.stderr);
    assertMatch(result.stderr, /^fleetprov: Provisioning did not finish within the 1 s deadline/m);
    assert(!result.stderr.includes("    at "), "no stack trace");
  }));
