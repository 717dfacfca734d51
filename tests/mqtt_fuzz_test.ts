// SPDX-License-Identifier: Apache-2.0
/**
 * A short run of the differential fuzz of the device's MQTT codec against
 * mqtt-packet (bench/mqtt_fuzz.ts; `deno task fuzz:mqtt` runs a million cases):
 * random and mutated packets of MQTT 3.1.1 and 5, no crash, nothing read that
 * mqtt-packet refuses, the same fields wherever both read a packet, and no
 * unmutated packet a broker may send refused. The seed is printed; set
 * FLEETPROV_FUZZ_SEED to repeat a run.
 *
 * @module
 */
import { formatReport, fuzzMqtt, judge, seedFrom } from "../bench/mqtt_fuzz.ts";
import { assert, assertEquals } from "./support/assert.ts";

Deno.test("mqtt fuzz: 20,000 random and mutated packets, the device's codec against mqtt-packet", () => {
  const seed = seedFrom(Deno.env.get("FLEETPROV_FUZZ_SEED"));
  console.log(`mqtt fuzz seed ${seed} (FLEETPROV_FUZZ_SEED=${seed} repeats it)`);
  const report = fuzzMqtt({ seed, cases: 20_000 });
  console.log(formatReport(report));
  assertEquals(report.failures, [], `seed ${seed}`);
  // The run reached both sides of the codec, not only its refusals.
  assert((report.counts.agree ?? 0) > 5_000, JSON.stringify(report.counts));
  assert((report.counts["agree-refused"] ?? 0) > 1_000, JSON.stringify(report.counts));
});

Deno.test("mqtt fuzz: the judge tells agreement from a stricter device; what the fuzz found is refused as mqtt-packet refuses it", () => {
  const hex = (text: string) => new Uint8Array(text.match(/../g)!.map((b) => parseInt(b, 16)));
  assertEquals(judge(hex("20020000"), 4).kind, "agree"); // CONNACK accepted
  assertEquals(judge(hex("c00100"), 4).kind, "stricter"); // PINGRESP with a body mqtt-packet ignores
  assertEquals(judge(hex("100c00044d5154540402003c0000"), 4).kind, "stricter"); // a CONNECT
  // Found by the fuzz, now refused like mqtt-packet: a SUBACK return code 3.1.1 does not have,
  // reserved CONNACK flags, a property id in two bytes, a reason string twice.
  assertEquals(judge(hex("9003000105"), 4).kind, "agree-refused");
  assertEquals(judge(hex("20020200"), 4).kind, "agree-refused");
  assertEquals(judge(hex("90075d1704a2000a97"), 5).kind, "agree-refused");
  assertEquals(
    judge(hex("e01c001a1f00022f631f00126230623677383067616a727473396e656c63"), 5).kind,
    "stricter",
  );
});
