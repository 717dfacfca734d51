// SPDX-License-Identifier: Apache-2.0
/**
 * Every fault the emulator can inject, through the real CLI: transient ones
 * end provisioned within the deadline with one log line per retry (attempt,
 * reason, wait); final ones end at once with their exit code and one line.
 * Assertions are on counts and events, never on timing.
 */
import { ExitCode } from "../src/errors.ts";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  assertProvisioned,
  boardEmulator,
  type ChildResult,
  concurrentSteps,
  deviceArgs,
  deviceHome,
  oneLineError,
  retryLines,
  runFleetprov,
  runtimeConfigPathOf,
  selfSignedCertificate,
  tempDir,
  writeWithMode,
} from "./support/mod.ts";
import type { Emulator, FaultRule } from "../src/emulator/mod.ts";
import type { Registry } from "../src/emulator/registry/mod.ts";

const RETRY_LINE = /Attempt (\d+) failed at step (\S+): (.+) Retrying in (\d+) ms\.$/;

/** Asserts each retry line names the attempt, the step, the reason and the wait. */
function assertRetryLines(result: ChildResult, count: number, reason: RegExp): string[] {
  const lines = retryLines(result.stdout + result.stderr);
  assertEquals(lines.length, count, `retry lines:\n${result.stdout}${result.stderr}`);
  const attempts = new Set<number>();
  for (const line of lines) {
    const m = RETRY_LINE.exec(line);
    assert(m, `retry line without attempt, reason and wait: ${line}`);
    attempts.add(Number(m[1]));
    assert(Number(m[4]) <= 200, "the wait respects --retry-max-delay");
  }
  assertEquals(attempts.size, count, "each retry names its own attempt");
  if (count > 0) assert(lines.some((l) => reason.test(l)), `no retry line matches ${reason}`);
  return lines;
}

interface TransientCase {
  name: string;
  faults: FaultRule[];
  retries: number;
  reason: RegExp;
  extra?: string[];
}

const TRANSIENT: TransientCase[] = [
  {
    name: "429 ThrottlingException twice on RegisterThing",
    faults: [{
      operation: "RegisterThing",
      times: 2,
      reject: { statusCode: 429, errorCode: "ThrottlingException" },
    }],
    retries: 2,
    reason: /RegisterThing was rejected: statusCode=429 errorCode=ThrottlingException/,
  },
  {
    name: "503 ServiceUnavailable twice on CreateKeysAndCertificate",
    faults: [{
      operation: "CreateKeysAndCertificate",
      times: 2,
      reject: { statusCode: 503, errorCode: "ServiceUnavailable" },
    }],
    retries: 2,
    reason: /statusCode=503 errorCode=ServiceUnavailable/,
  },
  {
    name: "500 InternalFailure once on RegisterThing",
    faults: [{
      operation: "RegisterThing",
      times: 1,
      reject: { statusCode: 500, errorCode: "InternalFailure" },
    }],
    retries: 1,
    reason: /statusCode=500/,
  },
  {
    name: "a 400 whose code says Throttling",
    faults: [{
      operation: "CreateKeysAndCertificate",
      times: 1,
      reject: { statusCode: 400, errorCode: "ThrottlingException" },
    }],
    retries: 1,
    reason: /statusCode=400 errorCode=ThrottlingException/,
  },
  {
    name: "answers delayed under the step timeout",
    faults: [
      { operation: "CreateKeysAndCertificate", delayMs: 300 },
      { operation: "RegisterThing", delayMs: 300 },
      { operation: "connect", delayMs: 300 },
    ],
    retries: 0,
    reason: /^$/,
  },
  {
    name: "an answer delayed past the step timeout once",
    faults: [{ operation: "RegisterThing", times: 1, delayMs: 2500 }],
    retries: 1,
    reason:
      /No answer on \$aws\/provisioning-templates\/BoardTemplate\/provision\/json\/accepted within 1000 ms/,
    extra: ["--step-timeout", "1"],
  },
  {
    name: "a CONNACK delayed past the step timeout once",
    faults: [{ operation: "connect", times: 1, delayMs: 2500 }],
    retries: 1,
    reason: /step start/,
    extra: ["--step-timeout", "1"],
  },
  {
    name: "connection dropped on the create request",
    faults: [{ operation: "CreateKeysAndCertificate", times: 1, drop: "request" }],
    retries: 1,
    reason: /The broker closed the connection/,
  },
  {
    name: "connection dropped before the RegisterThing answer",
    faults: [{ operation: "RegisterThing", times: 1, drop: "before" }],
    retries: 1,
    reason: /step certificate-created: The broker closed the connection/,
  },
  {
    name: "connection dropped right after the create answer",
    faults: [{ operation: "CreateKeysAndCertificate", times: 1, drop: "after" }],
    retries: 1,
    // The answer arrived; RegisterThing then meets the closed connection (closed, EPIPE, reset).
    reason: /step certificate-created: /,
  },
  {
    name: "connection dropped at CONNECT",
    faults: [{ operation: "connect", times: 1, drop: "request" }],
    retries: 1,
    reason: /right after CONNECT, without CONNACK/,
  },
  {
    name: "CONNECT refused once with 3 (server unavailable)",
    faults: [{
      operation: "connect",
      times: 1,
      reject: { statusCode: 503, errorCode: "ServerUnavailable" },
      returnCode: 3,
    }],
    retries: 1,
    reason: /refused the connection/,
  },
  {
    name: "a malformed RegisterThing answer once",
    faults: [{ operation: "RegisterThing", times: 1, malformed: true }],
    retries: 1,
    reason: /The RegisterThing answer is not valid JSON/,
  },
  {
    name: "a truncated create answer once",
    faults: [{ operation: "CreateKeysAndCertificate", times: 1, truncated: true }],
    retries: 1,
    reason: /The CreateKeysAndCertificate answer is not valid JSON/,
  },
  {
    name: "every answer sent twice",
    faults: [
      { operation: "CreateKeysAndCertificate", duplicate: true },
      { operation: "RegisterThing", duplicate: true },
    ],
    retries: 0,
    reason: /^$/,
  },
];

async function transient(c: TransientCase): Promise<void> {
  const emulator = await boardEmulator({ faults: c.faults });
  try {
    const home = deviceHome();
    const result = await runFleetprov(
      deviceArgs(emulator, { serial: "SN-FAULT", extra: c.extra }),
      { home },
    );
    assertEquals(result.code, 0, `${c.name}\n${result.stdout}${result.stderr}`);
    assertRetryLines(result, c.retries, c.reason);
    assertMatch(
      result.stdout,
      new RegExp(`\\(runtime config written at \\d+ ms, ${c.retries} retries\\)`),
    );
    for (const state of emulator.faults.rules()) {
      assert(state.fired >= 1, `${c.name}: the fault ${JSON.stringify(state.rule)} fired`);
    }
    const { thingName, certificatePem } = assertProvisioned(home);
    assertEquals(thingName, "board-SN-FAULT");
    assertEquals(emulator.registry.things().length, 1);
    const principals = emulator.registry.thing(thingName)!.principals;
    assertEquals(principals.length, 1, "a retried RegisterThing reuses the certificate");
    assertEquals(
      emulator.registry.certificate(principals[0])!.certificatePem.trim(),
      certificatePem.trim(),
    );
  } finally {
    await emulator.close();
  }
}

Deno.test({
  name: "transient faults end provisioned, one log line per retry",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: (t) => concurrentSteps(t, TRANSIENT.map((c) => ({ name: c.name, fn: () => transient(c) }))),
});

Deno.test("throttling (token bucket, 429 past it): every rejection is one retry, then provisioned", async () => {
  // The first RegisterThing takes the only token and gets a 503; retries come
  // faster than the bucket refills (max wait 200 ms, one token per 500 ms).
  const emulator = await boardEmulator({
    faults: [
      { operation: "RegisterThing", throttle: { ratePerSecond: 2, burst: 1 } },
      {
        operation: "RegisterThing",
        times: 1,
        reject: { statusCode: 503, errorCode: "ServiceUnavailable" },
      },
    ],
  });
  try {
    const home = deviceHome();
    const result = await runFleetprov(deviceArgs(emulator, { serial: "SN-THROTTLE" }), { home });
    assertEquals(result.code, 0, result.stderr);
    const rejected = emulator.counters.RegisterThing.rejected;
    assert(emulator.faults.rules()[0].fired >= 1, "the bucket ran dry at least once");
    const lines = assertRetryLines(
      result,
      rejected,
      /statusCode=429 errorCode=ThrottlingException/,
    );
    assertEquals(lines.filter((l) => /ThrottlingException/.test(l)).length, rejected - 1);
    assertEquals(emulator.counters.RegisterThing.accepted, 1);
    assertProvisioned(home);
  } finally {
    await emulator.close();
  }
});

interface FinalCase {
  name: string;
  faults?: FaultRule[];
  extra?: string[];
  /** Changes the emulator or the device before the run; returns extra flags. */
  prepare?: (emulator: Emulator, home: string) => Promise<string[]> | string[];
  code: number;
  message: RegExp;
  retries: number;
  check?: (emulator: Emulator) => void;
}

/** A self-signed CA that did not issue the emulator's server certificate. */
async function foreignRootCa(): Promise<string> {
  const { certificate: cert } = await selfSignedCertificate("Some Other Root CA", { ca: true });
  const dir = join(tempDir("fleetprov-ca-"), "ca");
  mkdirSync(dir, { mode: 0o700 });
  const path = join(dir, "other-root-ca.pem");
  writeWithMode(path, cert.toString("pem"), 0o644);
  return path;
}

const FINAL: FinalCase[] = [
  {
    name: "400 InvalidParameters on RegisterThing",
    faults: [{
      operation: "RegisterThing",
      reject: { statusCode: 400, errorCode: "InvalidParameters" },
    }],
    code: ExitCode.Rejected,
    message:
      /RegisterThing was rejected: statusCode=400 errorCode=InvalidParameters .*Hint: check the template name/,
    retries: 0,
    check: (e) => assertEquals(e.counters.RegisterThing.requests, 1),
  },
  {
    name: "403 ACCESS_DENIED (a pre-provisioning hook said no)",
    faults: [{
      operation: "RegisterThing",
      reject: { statusCode: 403, errorCode: "ACCESS_DENIED" },
    }],
    code: ExitCode.Rejected,
    message:
      /statusCode=403 errorCode=ACCESS_DENIED .*Hint: a pre-provisioning hook or the claim policy denied/,
    retries: 0,
    check: (e) => assertEquals(e.counters.RegisterThing.requests, 1),
  },
  {
    name: "400 on CreateKeysAndCertificate",
    faults: [{
      operation: "CreateKeysAndCertificate",
      reject: { statusCode: 400, errorCode: "InvalidRequest" },
    }],
    code: ExitCode.Rejected,
    message: /CreateKeysAndCertificate was rejected: statusCode=400 errorCode=InvalidRequest/,
    retries: 0,
    check: (e) => assertEquals(e.counters.CreateKeysAndCertificate.requests, 1),
  },
  {
    name:
      "a claim policy that forbids the template's topics: closed right after the request 3 times",
    extra: ["--fleet-provisioning-template-name", "NotInThePolicy"],
    code: ExitCode.Rejected,
    message:
      /closed the connection right after the request, before any answer, 3 times in a row at step start; the claim certificate's policy most likely forbids/,
    retries: 2,
    // The one SUBSCRIBE names the template's topics too: refused before any certificate is minted.
    check: (e) =>
      assertEquals(
        [e.counters.CreateKeysAndCertificate.requests, e.counters.RegisterThing.requests],
        [0, 0],
      ),
  },
  {
    name: "a root CA that did not sign the server certificate: TLS error",
    prepare: async () => ["--root-ca", await foreignRootCa()],
    code: ExitCode.Config,
    message:
      /The server certificate was not accepted \(\w+\).*The clock is plausible; check root-ca/,
    retries: 0,
    check: (e) => assertEquals(e.counters.connect.requests, 0),
  },
  {
    name: "an INACTIVE claim certificate, MQTT 3.1.1: hung up on three times, then refused",
    prepare: (emulator) => {
      (emulator.registry as Registry).setStatus(emulator.claim.certificateId, "INACTIVE");
      return [];
    },
    code: ExitCode.Rejected,
    message:
      /right after CONNECT, without CONNACK, 3 times in a row.*Check that the claim certificate is registered and ACTIVE/,
    retries: 2,
    check: (e) => assertEquals(e.counters.connect.rejected, 3),
  },
  {
    name: "an INACTIVE claim certificate, MQTT 5: CONNACK 0x87 with the broker's reason, no retry",
    prepare: (emulator) => {
      (emulator.registry as Registry).setStatus(emulator.claim.certificateId, "INACTIVE");
      return ["--mqtt-version", "5"];
    },
    code: ExitCode.Rejected,
    message:
      /The broker refused the connection: CONNACK 0x87 Not authorized \(broker: "certificate [0-9a-f]{64} is INACTIVE"\)\. Check that the claim certificate is registered and ACTIVE/,
    retries: 0,
    check: (e) => assertEquals(e.counters.connect.rejected, 1),
  },
  {
    name: "CONNACK 5 (not authorized) from the service",
    faults: [{
      operation: "connect",
      reject: { statusCode: 401, errorCode: "NotAuthorized" },
      returnCode: 5,
    }],
    code: ExitCode.Rejected,
    message: /The broker refused the connection/,
    retries: 0,
    check: (e) => assertEquals(e.counters.connect.requests, 1),
  },
  {
    name: "503 until the deadline: exit 75, time can heal a server error",
    faults: [{
      operation: "RegisterThing",
      reject: { statusCode: 503, errorCode: "ServiceUnavailable" },
    }],
    extra: ["--deadline", "2", "--step-timeout", "1"],
    code: ExitCode.TempFail,
    message:
      /did not finish within the 2 s deadline; last failure at step certificate-created: RegisterThing was rejected: statusCode=503/,
    retries: -1,
  },
  {
    name: "connections dropped (before TLS) until the deadline: exit 75",
    faults: [{ operation: "connect", drop: "handshake" }],
    extra: ["--deadline", "2", "--step-timeout", "1"],
    code: ExitCode.TempFail,
    message:
      /did not finish within the 2 s deadline; last failure at step start: .*(ECONNRESET|socket)/,
    retries: -1,
  },
  {
    name: "MQTT 3.1.1: a hang-up right after every CONNECT is a refusal, not a flaky link: exit 1",
    faults: [{ operation: "connect", drop: "request" }],
    code: ExitCode.Rejected,
    message:
      /closed the connection right after CONNECT, without CONNACK, 3 times in a row at step start: this is how AWS IoT refuses a claim certificate over MQTT 3.1.1.*iot:Connect/,
    retries: 2,
    check: (e) => assertEquals(e.counters.connect.requests, 3),
  },
  {
    name: "another instance holds the lock: exit 75",
    prepare: (_emulator, home) => {
      writeFileSync(join(home, "lock", "devicecl.lock"), `${Deno.pid}\n`);
      return [];
    },
    code: ExitCode.TempFail,
    message: new RegExp(`Another fleetprov or Device Client \\(PID ${Deno.pid}\\) is running`),
    retries: 0,
    check: (e) => assertEquals(e.counters.connect.requests, 0),
  },
];

async function final(c: FinalCase): Promise<void> {
  const emulator = await boardEmulator({ faults: c.faults });
  try {
    const home = deviceHome();
    const extra = [...(c.extra ?? []), ...(await c.prepare?.(emulator, home) ?? [])];
    const result = await runFleetprov(deviceArgs(emulator, { serial: "SN-FINAL", extra }), {
      home,
    });
    assertEquals(result.code, c.code, `${c.name}\n${result.stdout}${result.stderr}`);
    const line = oneLineError(result, true);
    assertMatch(line, c.message);
    const retries = retryLines(result.stdout + result.stderr).length;
    if (c.retries >= 0) assertEquals(retries, c.retries, `${c.name}: retries`);
    else assert(retries >= 1, "retried until the deadline");
    assert(!existsSync(runtimeConfigPathOf(home)), "no runtime config");
    assertEquals(emulator.registry.things().length, 0);
    c.check?.(emulator);
  } finally {
    await emulator.close();
  }
}

Deno.test({
  name: "final failures end at once with their exit code and one line",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: (t) => concurrentSteps(t, FINAL.map((c) => ({ name: c.name, fn: () => final(c) }))),
});
