// SPDX-License-Identifier: Apache-2.0
/**
 * Boot storm: 200 devices provision at once against one emulator that
 * throttles (token buckets on CONNECT, CreateKeysAndCertificate and
 * RegisterThing, 429 ThrottlingException / CONNACK 3 past them). The devices
 * run in this process through the provisioner's API (`loadSettings` +
 * `provision`), each with its own home, client id and serial. Every one must
 * end provisioned with its own certificate and thing; none may receive
 * another's answer. Prints the completion time and the retry counts.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "./support/assert.ts";
import {
  assertProvisioned,
  certificateStatuses,
  deviceHome,
  SERIAL_TEMPLATE,
  TEMPLATE_NAME,
  testEmulator,
} from "./support/mod.ts";
import { loadSettings } from "../src/config/mod.ts";
import { provision } from "../src/provisioning/mod.ts";
import type { Logger } from "../src/log.ts";
import { certificateId } from "../src/pki/mod.ts";

const DEVICES = 200;

/** Throttling well below what 200 devices ask for at once. */
const THROTTLE = [
  { operation: "connect" as const, throttle: { ratePerSecond: 100, burst: 50 } },
  { operation: "CreateKeysAndCertificate" as const, throttle: { ratePerSecond: 50, burst: 25 } },
  { operation: "RegisterThing" as const, throttle: { ratePerSecond: 50, burst: 25 } },
];

/** A logger keeping the retry lines (one per retry) and dropping the rest. */
function retryLogger(): Logger & { retries: string[] } {
  const retries: string[] = [];
  const keep = (line: string) => {
    if (/^Attempt \d+ failed at step /.test(line)) retries.push(line);
  };
  return { retries, debug() {}, info() {}, warn: keep, error: keep };
}

Deno.test({
  name:
    `boot storm: ${DEVICES} devices at once, throttled, each with its own certificate and thing`,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const emulator = await testEmulator({
      templateName: TEMPLATE_NAME,
      template: SERIAL_TEMPLATE,
      faults: THROTTLE,
      // EC keys: this test is about throttling and isolation, not key generation cost.
      keyType: "ec-p256",
    });
    try {
      const devices = await Promise.all(
        Array.from({ length: DEVICES }, async (_, i) => {
          const home = deviceHome();
          const settings = await loadSettings([
            "--config-file",
            emulator.configPath,
            "--client-id",
            `storm-${i}`,
            "--fleet-provisioning-template-parameters",
            JSON.stringify({ SerialNumber: `SN-STORM-${i}` }),
            "--step-timeout",
            "20",
            "--deadline",
            "120",
            "--retry-base-delay",
            "0.2",
            "--retry-max-delay",
            "3",
          ], { env: { HOME: home }, home });
          return { i, home, settings, logger: retryLogger() };
        }),
      );

      const started = performance.now();
      const outcomes = await Promise.allSettled(
        devices.map((d) =>
          provision(d.settings, { logger: d.logger }).then((result) => ({
            result,
            doneAt: performance.now() - started,
          }))
        ),
      );
      const elapsed = performance.now() - started;

      const failed = outcomes.flatMap((o, i) =>
        o.status === "rejected" ? [`device ${i}: ${(o.reason as Error).message}`] : []
      );
      assertEquals(failed, [], "every device provisioned");

      const thingNames = new Set<string>();
      const certificateIds = new Set<string>();
      for (const [i, outcome] of outcomes.entries()) {
        const { result } = (outcome as PromiseFulfilledResult<{
          result: Awaited<ReturnType<typeof provision>>;
        }>).value;
        const { home } = devices[i];
        const { thingName, certificatePem } = assertProvisioned(home);
        assertEquals(thingName, `board-SN-STORM-${i}`, `device ${i} got its own thing`);
        assertEquals(result.thingName, thingName);
        // Its certificate carries its own key: no answer meant for another device.
        const key = createPrivateKey(
          readFileSync(join(home, ".aws-iot-device-client", "keys", "active-private.pem.key")),
        );
        assert(
          new X509Certificate(certificatePem).checkPrivateKey(key),
          `device ${i}: key matches`,
        );
        const id = certificateId(certificatePem);
        assertEquals(result.certificateId, id);
        const thing = emulator.registry.thing(thingName)!;
        assertEquals(thing.principals, [id], `device ${i}: the registry binds its certificate`);
        assertEquals(thing.attributes.serial, `SN-STORM-${i}`);
        thingNames.add(thingName);
        certificateIds.add(id);
      }
      assertEquals(thingNames.size, DEVICES, "thing names are unique");
      assertEquals(certificateIds.size, DEVICES, "certificates are unique");
      assertEquals(emulator.registry.things().length, DEVICES);
      const statuses = certificateStatuses(emulator);
      assertEquals(statuses.ACTIVE, DEVICES);

      // The throttles did bite, and every throttled request was one retry.
      const retries = devices.map((d) => d.logger.retries.length);
      const total = retries.reduce((a, b) => a + b, 0);
      const fired = emulator.faults.rules().map((r) => r.fired);
      assert(fired.some((n) => n > 0), "throttling happened");
      for (const [i, outcome] of outcomes.entries()) {
        const value = (outcome as PromiseFulfilledResult<{
          result: { retries: number };
        }>).value;
        assertEquals(value.result.retries, retries[i], `device ${i}: one log line per retry`);
      }
      const throttled = devices.flatMap((d) =>
        d.logger.retries
      ).filter((l) => /ThrottlingException|Server unavailable/.test(l)).length;
      assertEquals(
        throttled,
        fired.reduce((a, b) =>
          a + b, 0),
        "each throttled request: one retry",
      );

      const done = outcomes.map((o) =>
        (o as PromiseFulfilledResult<{ doneAt: number }>).value.doneAt
      )
        .sort((a, b) => a - b);
      const pct = (p: number) =>
        Math.round(done[Math.min(done.length - 1, Math.floor(p * done.length))]);
      const histogram: Record<number, number> = {};
      for (const n of retries) histogram[n] = (histogram[n] ?? 0) + 1;
      console.log(
        `\nstorm: ${DEVICES} devices provisioned in ${Math.round(elapsed)} ms ` +
          `(first ${pct(0)} ms, median ${pct(0.5)} ms, p90 ${pct(0.9)} ms, last ${pct(1)} ms)\n` +
          `storm: ${total} retries in all (${throttled} throttled), max ${
            Math.max(...retries)
          } for one device; ` +
          `devices by retry count ${JSON.stringify(histogram)}\n` +
          `storm: throttle rejections connect=${fired[0]} create=${fired[1]} register=${
            fired[2]
          }; ` +
          `certificates left PENDING_ACTIVATION: ${statuses.PENDING_ACTIVATION ?? 0}`,
      );
    } finally {
      await emulator.close();
    }
  },
});
