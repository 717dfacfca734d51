// SPDX-License-Identifier: Apache-2.0
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertThrows,
} from "./support/assert.ts";
import type { MqttClient } from "mqtt";
import type { Emulator } from "../src/emulator/mod.ts";
import { operationTopics } from "../src/protocol/mod.ts";
import { parseFaultFlag, parseFaults } from "../src/emulator/mod.ts";
import { claimCredentials, closed, connect, request, withEmulator } from "./support/mod.ts";

const CREATE = operationTopics("CreateKeysAndCertificate");

/** Subscribes to the create answers and collects raw messages. */
async function collector(client: MqttClient) {
  const messages: { topic: string; payload: Uint8Array }[] = [];
  const waiters: (() => void)[] = [];
  client.on("message", (topic, payload) => {
    messages.push({ topic, payload });
    waiters.splice(0).forEach((w) => w());
  });
  await client.subscribeAsync([CREATE.accepted, CREATE.rejected], { qos: 1 });
  return {
    messages,
    async count(n: number) {
      while (messages.length < n) await new Promise<void>((r) => waiters.push(r));
    },
  };
}

function deviceCertificates(emulator: { registry: { certificates(): { claim?: boolean }[] } }) {
  return emulator.registry.certificates().filter((c) => !c.claim).length;
}

Deno.test("faults: reject N times with the given status, code and message, then answer normally", () =>
  withEmulator({
    faults: [{
      operation: "RegisterThing",
      times: 2,
      reject: { statusCode: 503, errorCode: "ServiceUnavailable", errorMessage: "try later" },
    }],
  }, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator));
    const created = await request(claim, "CreateKeysAndCertificate", {});
    const token = created.body.certificateOwnershipToken;
    for (let i = 0; i < 2; i++) {
      const answer = await request(claim, "RegisterThing", { certificateOwnershipToken: token });
      assertEquals(answer.body, {
        statusCode: 503,
        errorCode: "ServiceUnavailable",
        errorMessage: "try later",
      });
    }
    assertEquals(emulator.registry.things().length, 0);
    const third = await request(claim, "RegisterThing", { certificateOwnershipToken: token });
    assert(third.accepted);
    assertEquals(emulator.counters.RegisterThing, {
      requests: 3,
      accepted: 1,
      rejected: 2,
      dropped: 0,
    });
    assertEquals(emulator.faults.rules()[0].fired, 2);
    await claim.endAsync();
  }));

Deno.test("faults: skip lets the first requests through; delay holds the answer", () =>
  withEmulator({
    faults: [{ operation: "CreateKeysAndCertificate", skip: 1, times: 1, delayMs: 300 }],
  }, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator));
    const fault = emulator.events.waitFor("fault");
    await request(claim, "CreateKeysAndCertificate", {});
    const started = performance.now();
    const answer = await request(claim, "CreateKeysAndCertificate", {});
    const elapsed = performance.now() - started;
    assert(answer.accepted);
    assert(elapsed >= 290, `answered after ${elapsed} ms`);
    assertEquals((await fault).faults, ["delay 300 ms"]);
    await claim.endAsync();
  }));

/** A create request on a new claim connection with a drop fault; resolves once the connection closed. */
async function createWithDrop(emulator: Emulator, drop: "request" | "before" | "after") {
  emulator.faults.clear();
  emulator.faults.add({ operation: "CreateKeysAndCertificate", times: 1, drop });
  const claim = await connect(emulator, claimCredentials(emulator));
  const c = await collector(claim);
  const gone = closed(claim);
  await claim.publishAsync(CREATE.request, "{}", { qos: 0 });
  await gone;
  claim.end(true);
  return c;
}

Deno.test("faults: drop on request (nothing done), before the answer (work done) and after it", () =>
  withEmulator({}, async (emulator) => {
    // drop=request: the connection closes and no certificate exists.
    let c = await createWithDrop(emulator, "request");
    assertEquals(deviceCertificates(emulator), 0);
    assertEquals(c.messages.length, 0);

    // drop=before: the certificate is created, the answer lost.
    const dropped = emulator.events.waitFor("dropped");
    c = await createWithDrop(emulator, "before");
    assertMatch((await dropped).reason, /dropped before the answer/);
    assertEquals(deviceCertificates(emulator), 1);
    assertEquals(c.messages.length, 0);

    // drop=after: the answer arrives, then the connection closes.
    c = await createWithDrop(emulator, "after");
    assertEquals(c.messages.length, 1);
    assertEquals(c.messages[0].topic, CREATE.accepted);
    assertEquals(deviceCertificates(emulator), 2);
  }));

Deno.test("faults: malformed, truncated and duplicated answers", () =>
  withEmulator({}, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator));
    const c = await collector(claim);
    const text = (i: number) => new TextDecoder().decode(c.messages[i].payload);

    emulator.faults.add({ operation: "CreateKeysAndCertificate", times: 1, malformed: true });
    await claim.publishAsync(CREATE.request, "{}");
    await c.count(1);
    assertThrows(() => JSON.parse(text(0)));

    emulator.faults.add({ operation: "CreateKeysAndCertificate", times: 1, truncated: true });
    await claim.publishAsync(CREATE.request, "{}");
    await c.count(2);
    assertThrows(() => JSON.parse(text(1)));
    assert(text(1).startsWith('{"certificateId":"'));

    emulator.faults.add({ operation: "CreateKeysAndCertificate", times: 1, duplicate: true });
    await claim.publishAsync(CREATE.request, "{}");
    await c.count(4);
    assertEquals(text(2), text(3));
    assertEquals(JSON.parse(text(2)).certificateId.length, 64);
    await claim.endAsync();
  }));

Deno.test("faults: throttle is a token bucket answering 429 ThrottlingException past the rate", () =>
  withEmulator({
    faults: [{ operation: "CreateKeysAndCertificate", throttle: { ratePerSecond: 0.1, burst: 2 } }],
  }, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator));
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await request(claim, "CreateKeysAndCertificate", {}));
    assertEquals(answers.map((a) => a.accepted), [true, true, false]);
    assertEquals(answers[2].body.statusCode, 429);
    assertEquals(answers[2].body.errorCode, "ThrottlingException");
    assertEquals(deviceCertificates(emulator), 2);
    await claim.endAsync();
  }));

Deno.test("faults: pause before and after the work, release to answer", () =>
  withEmulator({}, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator), "paused-client");
    const c = await collector(claim);

    const before = emulator.faults.pause("CreateKeysAndCertificate", "before");
    await claim.publishAsync(CREATE.request, "{}");
    assertEquals((await before.reached).clientId, "paused-client");
    assertEquals(deviceCertificates(emulator), 0);
    before.release();
    await c.count(1);
    assertEquals(deviceCertificates(emulator), 1);

    const after = emulator.faults.pause("CreateKeysAndCertificate", "after");
    await claim.publishAsync(CREATE.request, "{}");
    await after.reached;
    // The certificate exists, the answer is held.
    assertEquals(deviceCertificates(emulator), 2);
    assertEquals(c.messages.length, 1);
    assertEquals(emulator.counters.CreateKeysAndCertificate.accepted, 1);
    const answered = emulator.events.waitFor("answer");
    after.release();
    await answered;
    await c.count(2);
    await claim.endAsync();
  }));

Deno.test("faults: connect refusals, drops, pauses and counters", () =>
  withEmulator({
    faults: [{
      operation: "connect",
      times: 1,
      reject: { statusCode: 503, errorCode: "ServerUnavailable" },
    }],
  }, async (emulator) => {
    await assertRejects(connect(emulator, claimCredentials(emulator)), /Server unavailable/);
    (await connect(emulator, claimCredentials(emulator))).end(true);

    emulator.faults.add({ operation: "connect", times: 1, drop: "request" });
    await assertRejects(connect(emulator, claimCredentials(emulator)));

    const pause = emulator.faults.pause("connect", "before");
    const pending = connect(emulator, claimCredentials(emulator), "held");
    assertEquals((await pause.reached).clientId, "held");
    assertEquals(emulator.counters.connect.accepted, 1);
    pause.release();
    (await pending).end(true);
    assertEquals(emulator.counters.connect, { requests: 4, accepted: 2, rejected: 2, dropped: 1 });
  }));

Deno.test("faults: rules from files and flags are validated with the culprit named", () => {
  assertEquals(parseFaultFlag("RegisterThing:reject=503:ServiceUnavailable,times=2"), {
    operation: "RegisterThing",
    reject: { statusCode: 503, errorCode: "ServiceUnavailable" },
    times: 2,
  });
  assertEquals(parseFaultFlag("CreateKeysAndCertificate:delay=1500,drop=before,duplicate"), {
    operation: "CreateKeysAndCertificate",
    delayMs: 1500,
    drop: "before",
    duplicate: true,
  });
  assertEquals(parseFaultFlag("connect:throttle=2:4").throttle, { ratePerSecond: 2, burst: 4 });
  assertThrows(() => parseFaultFlag("Provision:times=1"), Error, /"operation" must be one of/);
  assertThrows(() => parseFaultFlag("RegisterThing:sometimes"), Error, /unknown key "sometimes"/);
  assertThrows(() => parseFaultFlag("RegisterThing:drop=maybe"), Error, /"drop" must be/);
  assertEquals(parseFaults({ faults: [{ operation: "connect", delayMs: 5 }] }, "f.json").length, 1);
  assertThrows(
    () => parseFaults([{ operation: "RegisterThing", rejects: {} }], "f.json"),
    Error,
    /f.json: fault 1 has unknown key "rejects"/,
  );
  assertThrows(() => parseFaults({ rules: [] }, "f.json"), Error, /f.json must hold/);
});
