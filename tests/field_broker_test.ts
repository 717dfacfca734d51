// SPDX-License-Identifier: Apache-2.0
/**
 * Field conditions against the suite's hostile broker (tests/support/
 * hostile_broker.ts): throttling to the deadline, the ownership-token loop
 * and the cap on certificates, control bytes and 60 KB strings in every
 * answer field, 20 MB and 250 MB answers (peak RSS), CONNACK 5 on the proof,
 * closes right after the request, mid-answer and at random points, SIGTERM.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ExitCode } from "../src/errors.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  boardEmulator,
  concurrentSteps,
  configDirOf,
  deviceArgs,
  deviceHome,
  findTool,
  GIVE_UP_FAST,
  goodAnswer,
  goodBody,
  type HostileAction,
  hostileBroker,
  type HostileBrokerOptions,
  hostileCertificate,
  type HostileRequest,
  oneLineError,
  runFleetprov,
  runtimeConfigOf,
  runWithPeakRss,
  spawnFleetprov,
  type TestEmulator,
  watchFleetprov,
} from "./support/mod.ts";

/**
 * The certificate cap the README promises ("Stopped after minting 3 certificates in one run"):
 * written out, not imported, so a change of the number fails here.
 */
const CERTIFICATE_CAP = 3;

const JOURNAL = "fleetprov-journal.json";
const gnuTime = findTool(["/usr/bin/time"], "time");

/** Runs a device against a hostile broker; returns the result, the broker and the home. */
async function againstBroker(
  emulator: TestEmulator,
  options: HostileBrokerOptions & { retry?: string[]; home?: string; extra?: string[] },
) {
  const broker = await hostileBroker(emulator, options);
  const home = options.home ?? deviceHome();
  try {
    const result = await runFleetprov(
      deviceArgs(emulator, {
        retry: options.retry ?? GIVE_UP_FAST,
        extra: ["--port", String(broker.port), ...(options.extra ?? [])],
      }),
      { home },
    );
    return { result, broker, home };
  } finally {
    await broker.close();
  }
}

/** A journal of a device home, or undefined. */
function journalOf(home: string): Record<string, unknown> | undefined {
  const path = join(configDirOf(home), JOURNAL);
  return existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : undefined;
}

Deno.test({
  name: "hostile broker: what time can heal ends in 75 at the deadline, a final answer in 1",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const emulator = await boardEmulator();
    const certificate = await hostileCertificate();
    const cases: {
      name: string;
      action: (operation: string, index: number) => HostileAction | undefined;
      code: number;
      message: RegExp;
    }[] = [
      {
        name: "throttled (429) until the deadline: 75",
        action: (op) =>
          op === "CreateKeysAndCertificate"
            ? {
              answer: "rejected",
              body: { statusCode: 429, errorCode: "ThrottlingException", errorMessage: "slow" },
            }
            : undefined,
        code: ExitCode.TempFail,
        message: /deadline; last failure at step start: .*statusCode=429/,
      },
      {
        name: "5xx on RegisterThing until the deadline: 75",
        action: (op) =>
          op === "RegisterThing"
            ? {
              answer: "rejected",
              body: { statusCode: 500, errorCode: "InternalFailure", errorMessage: "oops" },
            }
            : undefined,
        code: ExitCode.TempFail,
        message: /deadline; last failure at step certificate-created: .*statusCode=500/,
      },
      {
        name: "RegisterThing closed mid-answer every time (a flaky link, not a policy): 75",
        action: (op) =>
          op === "RegisterThing"
            ? { close: "mid-answer", body: goodBody(op as never, certificate) }
            : undefined,
        code: ExitCode.TempFail,
        message: /deadline; last failure at step certificate-created: .*in the middle of a packet/,
      },
      {
        name:
          `create answers cut mid-way every time: each minted one, the cap stops at ${CERTIFICATE_CAP}, 1`,
        action: (op) => ({ close: "mid-answer", body: goodBody(op as never, certificate) }),
        code: ExitCode.Rejected,
        message: new RegExp(
          `Stopped after minting ${CERTIFICATE_CAP} certificates in one run.*in the middle of a packet`,
        ),
      },
      {
        name: "closed right after the request, no answer byte, 3 times: a policy problem, 1",
        action: () => ({ close: "now" }),
        code: ExitCode.Rejected,
        message:
          /right after the request, before any answer, 3 times in a row at step start; .*policy/,
      },
      {
        name: "a final 400 rejection: 1 at once",
        action: (op) =>
          op === "RegisterThing"
            ? {
              answer: "rejected",
              body: { statusCode: 400, errorCode: "InvalidParameters", errorMessage: "no" },
            }
            : undefined,
        code: ExitCode.Rejected,
        message: /RegisterThing was rejected: statusCode=400/,
      },
    ];
    try {
      await concurrentSteps(
        t,
        cases.map((c) => ({
          name: c.name,
          fn: async () => {
            const { result } = await againstBroker(emulator, {
              retry: [...GIVE_UP_FAST.slice(0, 1), "3", ...GIVE_UP_FAST.slice(2)],
              onRequest: ({ operation, index }) =>
                c.action(operation, index) ?? goodAnswer(operation, certificate),
            });
            assertEquals(result.code, c.code, `${c.name}\n${result.stdout}${result.stderr}`);
            assertMatch(oneLineError(result, true), c.message);
          },
        })),
        2,
      );
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  name:
    `hostile broker: the certificate cap stops a run at ${CERTIFICATE_CAP} create requests, each through the backoff, then exit 1`,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const emulator = await boardEmulator();
    const certificate = await hostileCertificate();
    const cases: { name: string; onRequest: (request: HostileRequest) => HostileAction }[] = [
      {
        name: "a token refused forever",
        onRequest: ({ operation }) =>
          operation === "RegisterThing"
            ? {
              answer: "rejected",
              body: {
                statusCode: 400,
                errorCode: "InvalidCertificateOwnershipToken",
                errorMessage: "token refused",
              },
            }
            : goodAnswer(operation, certificate),
      },
      {
        name: "malformed create answers forever (each accepted request minted one)",
        onRequest: () => ({
          answer: "accepted",
          body: { certificateId: "a".repeat(64), certificatePem: "not a certificate" },
        }),
      },
    ];
    try {
      await concurrentSteps(
        t,
        cases.map((c) => ({
          name: c.name,
          fn: async () => {
            const { result, broker } = await againstBroker(emulator, {
              // A long deadline: the cap, not the deadline, must stop the loop.
              retry: ["--deadline", "60", "--step-timeout", "5", "--retry-base-delay", "0.05"],
              onRequest: c.onRequest,
            });
            assertEquals(result.code, ExitCode.Rejected, result.stderr);
            assertEquals(
              broker.requests.filter((r) => r === "CreateKeysAndCertificate").length,
              CERTIFICATE_CAP,
            );
            assertMatch(
              oneLineError(result, true),
              new RegExp(
                `Stopped after minting ${CERTIFICATE_CAP} certificates in one run`,
              ),
            );
            // Every new request went through the backoff: one retry line per failure before the cap.
            assertEquals(
              result.stderr.split("\n").filter((l) => /Attempt \d+ failed at step/.test(l)).length,
              CERTIFICATE_CAP - 1,
            );
          },
        })),
        2,
      );
    } finally {
      await emulator.close();
    }
  },
});

/** Control bytes that would forge a line, move the cursor or reorder text, and 60 KB after them. */
const EVIL = "\x1b[2J\r\nfleetprov: forged line\u0085\u2028\u202e\u0007" + "A".repeat(60_000);

/** No raw control character, no forged line, no flooding line in a run's output. */
function assertSafeOutput(text: string, what: string): void {
  // deno-lint-ignore no-control-regex
  const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
  assert(!raw.test(text), `${what}: a raw control character reached the output`);
  for (const line of text.split("\n")) {
    assert(!line.startsWith("fleetprov: forged"), `${what}: a forged line`);
    assert(line.length < 2000, `${what}: a ${line.length}-character line`);
  }
}

Deno.test({
  name:
    "hostile broker: control bytes and 60 KB strings in every answer field never reach the output raw",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const emulator = await boardEmulator();
    const certificate = await hostileCertificate();
    const rejected = (field: string): HostileAction => ({
      answer: "rejected",
      body: {
        statusCode: 400,
        errorCode: "InvalidParameters",
        errorMessage: "x",
        [field]: EVIL,
      },
    });
    // echoed: the field appears (escaped, cut) in the error line; the others are only named.
    const cases: { name: string; operation: string; action: HostileAction; echoed?: boolean }[] = [
      {
        name: "rejection errorCode",
        operation: "RegisterThing",
        action: rejected("errorCode"),
        echoed: true,
      },
      {
        name: "rejection errorMessage",
        operation: "RegisterThing",
        action: rejected("errorMessage"),
        echoed: true,
      },
      {
        name: "create errorMessage",
        operation: "CreateKeysAndCertificate",
        action: rejected("errorMessage"),
        echoed: true,
      },
      {
        name: "certificateId",
        operation: "CreateKeysAndCertificate",
        action: { answer: "accepted", body: { ...certificate, certificateId: EVIL } },
      },
      {
        name: "thingName",
        operation: "RegisterThing",
        action: { answer: "accepted", body: { thingName: EVIL, deviceConfiguration: {} } },
        echoed: true,
      },
      {
        name: "deviceConfiguration key",
        operation: "RegisterThing",
        action: {
          answer: "accepted",
          body: { thingName: "board-1", deviceConfiguration: { [EVIL]: 5 } },
        },
        echoed: true,
      },
      {
        name: "deviceConfiguration value",
        operation: "RegisterThing",
        action: {
          answer: "accepted",
          body: { thingName: "board-1", deviceConfiguration: { Foo: EVIL } },
        },
      },
    ];
    try {
      await concurrentSteps(
        t,
        cases.map((c) => ({
          name: c.name,
          fn: async () => {
            const { result, home } = await againstBroker(emulator, {
              onRequest: ({ operation }) =>
                operation === c.operation ? c.action : goodAnswer(operation, certificate),
            });
            assertSafeOutput(result.stdout + result.stderr, c.name);
            if (c.name === "deviceConfiguration value") {
              // A string value is valid: stored as escaped JSON, never printed.
              assertEquals(result.code, ExitCode.Ok, result.stderr);
              const config = runtimeConfigOf(home)["device-config"] as Record<string, string>;
              assertEquals(config.Foo, EVIL);
            } else {
              assertEquals(result.code, ExitCode.Rejected, result.stderr);
              const line = oneLineError(result, true);
              if (c.echoed) {
                assertMatch(
                  line,
                  /\\x1b\[2J\\r\\nfleetprov: forged line.*…\[\d+ more characters\]/,
                );
              }
            }
          },
        })),
        2,
      );
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  name:
    "hostile broker: 20 MB and 250 MB answers are refused at their header; peak RSS stays that of a normal run",
  ignore: gnuTime === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const emulator = await boardEmulator();
    const certificate = await hostileCertificate();
    /** A run whose first create answer announces `bytes` (every one with `always`). */
    const run = async (bytes: number | undefined, options: { always?: boolean } = {}) => {
      const broker = await hostileBroker(emulator, {
        onRequest: ({ operation, index }) =>
          bytes !== undefined && operation === "CreateKeysAndCertificate" &&
            (options.always || index === 0)
            ? { oversized: bytes }
            : goodAnswer(operation, certificate),
      });
      try {
        return await runWithPeakRss(
          deviceArgs(emulator, {
            retry: options.always ? GIVE_UP_FAST : undefined,
            extra: ["--port", String(broker.port)],
          }),
          { home: deviceHome() },
        );
      } finally {
        await broker.close();
      }
    };
    try {
      const normal = await run(undefined);
      assertEquals(normal.code, ExitCode.Ok, normal.stderr);
      const figures = [`normal run ${Math.round(normal.peakRssKiB / 1024)} MiB`];
      for (const bytes of [20_000_000, 250_000_000]) {
        // Refused at the header, retried, provisioned: memory as in a normal run.
        const healed = await run(bytes);
        assertEquals(healed.code, ExitCode.Ok, healed.stderr);
        assertMatch(
          healed.stderr,
          new RegExp(`PUBLISH packet of ${bytes} bytes, more than the 131072 bytes AWS IoT allows`),
        );
        figures.push(`${bytes / 1e6} MB answer ${Math.round(healed.peakRssKiB / 1024)} MiB`);
        assert(
          healed.peakRssKiB - normal.peakRssKiB < 8 * 1024,
          `peak RSS ${healed.peakRssKiB} KiB vs ${normal.peakRssKiB} KiB for a normal run`,
        );
        // Every create answer oversized: each was an accepted request that minted
        // a certificate, so the cap ends the run (exit 1), naming the answer.
        const refused = await run(bytes, { always: true });
        assertEquals(refused.code, ExitCode.Rejected, refused.stderr);
        assertMatch(
          oneLineError(refused, true),
          new RegExp(
            `Stopped after minting ${CERTIFICATE_CAP} certificates in one run.*The broker sent a PUBLISH packet of ${bytes} bytes`,
          ),
        );
      }
      console.log(`peak RSS: ${figures.join(", ")}`);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  name:
    "hostile broker: CONNACK 5 on the proof is retried, exits 75, and the next start proves the same certificate only",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const emulator = await boardEmulator();
    const certificate = await hostileCertificate();
    const home = deviceHome();
    try {
      const refused = await againstBroker(emulator, {
        home,
        retry: ["--deadline", "3", "--step-timeout", "1", "--retry-base-delay", "0.05"],
        connack: (clientId) => clientId === "board-hostile" ? 5 : 0,
        onRequest: ({ operation }) => goodAnswer(operation, certificate),
      });
      assertEquals(refused.result.code, ExitCode.TempFail, refused.result.stderr);
      assertMatch(
        oneLineError(refused.result, true),
        /runtime config is written, but the new certificate could not connect within the 3 s deadline: The broker refused the connection.*The next start retries this proof only/,
      );
      assert(
        refused.broker.connects.filter((id) => id === "board-hostile").length >= 2,
        "the proof was retried within the deadline",
      );
      assertEquals(runtimeConfigOf(home)["completed-fp"], true);
      assertEquals(journalOf(home)?.step, "committed");
      assertEquals(journalOf(home)?.certificateId, certificate.certificateId);

      // The policy is fixed in the cloud: the next start proves, mints nothing.
      const healed = await againstBroker(emulator, {
        home,
        onRequest: ({ operation }) => goodAnswer(operation, certificate),
      });
      assertEquals(healed.result.code, ExitCode.Ok, healed.result.stderr);
      assertEquals(healed.broker.requests, []);
      assertEquals(healed.broker.connects, ["board-hostile"]);
      assertMatch(healed.result.stdout, /retrying the proof only/);
      assertEquals(journalOf(home), undefined);

      const again = await againstBroker(emulator, {
        home,
        onRequest: ({ operation }) => goodAnswer(operation, certificate),
      });
      assertEquals(again.result.code, ExitCode.Ok);
      assertMatch(again.result.stdout, /Already provisioned as thing board-hostile/);
      assertEquals(again.broker.connects, []);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  name:
    "hostile broker: closes at varied points (CONNECT, after the request, mid-answer) stay retryable and heal",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const emulator = await boardEmulator();
    const certificate = await hostileCertificate();
    // Closes at varied points of successive connections: at CONNECT, right after
    // the request, mid-answer, after a good first answer, mid-answer again.
    const connects: (number | "close")[] = ["close", 0, 0, 0, "close", 0, 0];
    const requests: ("now" | "mid" | "ok")[] = ["now", "mid", "ok", "mid", "now", "ok", "ok"];
    let connection = 0;
    let request = 0;
    let faults = 0;
    try {
      const { result } = await againstBroker(emulator, {
        retry: ["--deadline", "30", "--step-timeout", "2", "--retry-base-delay", "0.02"],
        connack: () => {
          const code = connects[connection++] ?? 0;
          if (code === "close") faults++;
          return code;
        },
        onRequest: ({ operation }) => {
          const what = requests[request++] ?? "ok";
          if (what === "ok") return goodAnswer(operation, certificate);
          faults++;
          return what === "now"
            ? { close: "now" }
            : { close: "mid-answer", body: goodBody(operation, certificate) };
        },
      });
      assertEquals(result.code, ExitCode.Ok, result.stderr);
      assertEquals(faults, 6, "every scheduled fault happened");
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  name:
    "SIGTERM (systemd stop) ends a waiting run within a second: exit 75, journal intact, lock released, the result line printed",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const emulator = await boardEmulator();
    const certificate = await hostileCertificate();
    let waiting: () => void = () => {};
    const registering = new Promise<void>((resolve) => waiting = resolve);
    const broker = await hostileBroker(emulator, {
      onRequest: ({ operation }) => {
        if (operation !== "RegisterThing") return goodAnswer(operation, certificate);
        waiting();
        return { silent: true };
      },
    });
    const home = deviceHome();
    try {
      const { child, result } = spawnFleetprov(
        deviceArgs(emulator, { extra: ["--port", String(broker.port), "--output", "json"] }),
        { home },
      );
      await registering;
      const journal = journalOf(home);
      assertEquals(journal?.step, "certificate-created");
      const sent = performance.now();
      child.kill("SIGTERM");
      const ended = await result;
      const took = performance.now() - sent;
      assertEquals(ended.code, ExitCode.TempFail, ended.stderr);
      assert(took < 1000, `SIGTERM took ${Math.round(took)} ms`);
      assertMatch(
        ended.stderr,
        /Stopped by SIGTERM at step certificate-created; the journal keeps/,
      );
      assertEquals(journalOf(home), journal);
      assert(!existsSync(join(home, "lock", "devicecl.lock")), "the lock was released");
      // --output json: the run's one result line, even though SIGTERM ended it.
      const lines = ended.stdout.trim().split("\n");
      assertEquals(lines.length, 1, ended.stdout);
      const line = JSON.parse(lines[0]);
      assertEquals([line.outcome, line.exitCode, line.error?.cause], [
        "failed",
        ExitCode.TempFail,
        "stopped",
      ]);
    } finally {
      await broker.close();
      await emulator.close();
    }
  },
});

Deno.test("SIGTERM while the settings load (before any lock): exit 75 with one line and the result line, not a signal death", async () => {
  const emulator = await boardEmulator();
  try {
    const home = deviceHome();
    const run = watchFleetprov(
      deviceArgs(emulator, { serial: "SN-TERM", extra: ["--output", "json"] }),
      { home, env: { FLEETPROV_PAUSE_AT: "loading-settings" } },
    );
    await run.until(/paused at loading-settings/);
    run.child.kill("SIGTERM");
    const ended = await run.result;
    assertEquals([ended.code, ended.signal], [ExitCode.TempFail, null], ended.stderr);
    assertMatch(
      ended.stderr,
      /^fleetprov: Stopped by SIGTERM while loading the settings; nothing was started, and the next start begins again \(exit 75\)\.$/m,
    );
    const lines = ended.stdout.trim().split("\n");
    assertEquals(lines.length, 1, ended.stdout);
    const line = JSON.parse(lines[0]);
    assertEquals([line.outcome, line.exitCode, line.error?.cause], ["failed", 75, "stopped"]);
    assertEquals(emulator.counters.connect.requests, 0, "nothing was started");
    assert(!existsSync(join(home, "lock", "devicecl.lock")), "no lock was taken");
  } finally {
    await emulator.close();
  }
});

Deno.test({
  name:
    "key generation happens once, before the claim connection opens (a connection that never comes up still finds the key made)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const emulator = await boardEmulator();
    try {
      const { result, broker } = await againstBroker(emulator, {
        retry: ["--deadline", "2", "--step-timeout", "1", "--retry-base-delay", "0.05"],
        connack: () => "close",
        onRequest: () => ({ silent: true }),
        extra: ["--generate-key", "ec-p256"],
      });
      // Hung up after every CONNECT: MQTT 3.1.1's refusal, three in a row.
      assertEquals(result.code, ExitCode.Rejected, result.stderr);
      assertEquals(broker.connects.length, 3, "the connection was retried");
      // Made before the first connection, and not again for the retries.
      assertEquals(result.stdout.match(/Generated a ec-p256 key on the device\./g)?.length, 1);
      assertEquals(broker.requests, []);
    } finally {
      await emulator.close();
    }
  },
});
