// SPDX-License-Identifier: Apache-2.0
/**
 * Provisioning stays at the floor of 7 round trips that AWS IoT allows: the
 * real CLI against the emulator through the latency proxy, which counts the
 * round trips the client waits on. Claim connection: TCP, TLS 1.3, CONNECT
 * (AWS IoT requires the client to wait for CONNACK, and the emulator closes a
 * connection that does not), the SUBSCRIBE to every answer topic with the
 * create request behind it, RegisterThing (5); new certificate's connection:
 * its TCP handshake opened while RegisterThing is in flight, so only TLS 1.3
 * and CONNECT (2). A client that waited for SUBACK or PUBACK before sending
 * on, subscribed again for RegisterThing, opened the second connection only
 * afterwards, or fell back to TLS 1.2, would show more. Only counts and the
 * order of events are asserted, no durations. Over MQTT 3.1.1 and MQTT 5
 * alike; the emulator hands out RSA 2048 keys, as AWS IoT does.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { deviceHome, runFleetprov, testEmulator } from "./support/mod.ts";
import { startLatencyProxy } from "../bench/latency_proxy.ts";

for (
  const [name, flags] of [
    ["keys path (CreateKeysAndCertificate)", []],
    ["on-device key (CreateCertificateFromCsr)", ["--generate-key", "ec-p256"]],
  ] as const
) {
  for (const mqttVersion of ["3.1.1", "5"]) {
    roundTrips(`MQTT ${mqttVersion}, ${name}`, [...flags, "--mqtt-version", mqttVersion]);
  }
}

function roundTrips(name: string, flags: string[]): void {
  Deno.test(`provisioning takes 7 round trips (5 + 2): ${name}`, async () => {
    const emulator = await testEmulator({ keyType: "rsa-2048" });
    // A delay long enough that each side's bursts are well apart.
    const proxy = await startLatencyProxy({
      target: { host: emulator.host, port: emulator.port },
      delayMs: 30,
    });
    try {
      const home = deviceHome();
      const result = await runFleetprov(
        [
          "--config-file",
          emulator.configPath,
          "--endpoint",
          "localhost",
          "--port",
          String(proxy.port),
          ...flags,
        ],
        { home },
      );
      assertEquals(result.code, 0, result.stdout + result.stderr);
      assertMatch(result.stdout, /Provisioned thing \S+ with certificate/);
      await proxy.settled();
      const stats = proxy.stats();
      assertEquals(stats.perConnection.map((c) => c.roundTrips), [5, 2]);
      // The second TCP handshake was under way before the RegisterThing answer arrived.
      const [claim, proof] = stats.perConnection;
      assertEquals(proof.overlapped, true);
      assert(
        proof.openedAt < claim.answeredAt.at(-1)!,
        `second connection opened at ${proof.openedAt}, RegisterThing answered at ${
          claim.answeredAt.at(-1)
        }`,
      );
      assertEquals(emulator.counters.connect.accepted, 2);
      assertEquals(
        Deno.statSync(join(home, ".aws-iot-device-client", "aws-iot-device-client-runtime.conf"))
          .isFile,
        true,
      );
    } finally {
      await proxy.close();
      await emulator.close();
    }
  });
}
