// SPDX-License-Identifier: Apache-2.0
/**
 * Power loss at every step of a rotation: `fleetprov rotate --force` is
 * killed with SIGKILL at each of its crash points (FLEETPROV_CRASH_AT) and
 * while a request is in flight (the emulator holds it, the test kills the
 * child). After each kill the board holds one identity that connects, with
 * strict modes and no temporary file. Then it runs again as a board does:
 * the boot's `fleetprov`, then the timer's `fleetprov rotate` (not forced).
 * The board ends with exactly one active identity that connects, the runtime
 * config on it, and the killed rotation minted at most one certificate.
 *
 * A power cut after the new certificate has connected and before the runtime
 * config is switched meets a backend that retires the old certificate the
 * moment the new one connects: with the old certificate INACTIVE (the AWS CLI
 * through the emulator's control plane), the board comes back on the new one.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Emulator } from "../src/emulator/mod.ts";
import { ROTATION_CRASH_POINTS } from "../src/failpoints.ts";
import { assert, assertEquals } from "./support/assert.ts";
import {
  activeCertificateId,
  assertConnects,
  assertNoTempFiles,
  assertRefused,
  assertRotated,
  AWS_CLI,
  awsCliMissing,
  awsIot,
  certificateStatuses,
  concurrentSteps,
  configDirOf,
  cutRotation,
  deviceArgs,
  deviceHome,
  listFiles,
  modeOf,
  rotateArgs,
  rotationEmulator,
  rotationRecord,
  runFleetprov,
  runtimeConfigIfAny,
  runtimeConfigOf,
  runToCrashPoint,
  skipWhenMissing,
  spawnFleetprov,
  type TestEmulator,
  testEmulator,
} from "./support/mod.ts";

/** The modes and files a SIGKILL may leave: strict modes, no temporary file, a valid runtime config. */
function assertCleanAfterKill(home: string, what: string): void {
  const configDir = configDirOf(home);
  assertNoTempFiles(home);
  assert(runtimeConfigIfAny(home), `${what}: the runtime config is there`);
  for (const file of listFiles(configDir)) {
    const mode = modeOf(join(configDir, file));
    if (file.endsWith(".key") || file.endsWith(".json")) {
      assertEquals(mode, "600", `${what}: ${file}`);
    } else if (file.endsWith(".crt")) assertEquals(mode, "644", `${what}: ${file}`);
    else if (file.endsWith("runtime.conf")) assertEquals(mode, "640", `${what}: ${file}`);
    else throw new Error(`${what}: unexpected file ${file}`);
  }
}

/** A provisioned board and the create requests counted from here on. */
async function board(emulator: TestEmulator): Promise<{ home: string; oldId: string }> {
  const home = deviceHome();
  const provisioned = await runFleetprov(deviceArgs(emulator, { serial: "SN-ROT" }), { home });
  assertEquals(provisioned.code, 0, provisioned.stderr);
  return { home, oldId: await assertConnects(emulator, home) };
}

/** The boot's run, then the timer's: both exit 0. */
async function runAgain(emulator: Emulator, home: string, what: string): Promise<void> {
  const boot = await runFleetprov(deviceArgs(emulator, { serial: "SN-ROT" }), { home });
  assertEquals(boot.code, 0, `${what}: boot\n${boot.stdout}${boot.stderr}`);
  const timer = await runFleetprov(rotateArgs(emulator), { home });
  assertEquals(timer.code, 0, `${what}: rotate\n${timer.stdout}${timer.stderr}`);
}

/**
 * After the reruns: one identity, the runtime config's, connects; it is the
 * new certificate unless the kill came before anything was journaled; one
 * certificate was minted by the rotation (an orphan, PENDING_ACTIVATION, when
 * it never reached the journal).
 */
async function assertOneIdentity(
  emulator: TestEmulator,
  board: { home: string; oldId: string },
  options: { what: string; switched: boolean; creates: number },
): Promise<void> {
  const { home, oldId } = board;
  const { what, switched } = options;
  assertNoTempFiles(home);
  const active = await assertConnects(emulator, home);
  const keys = join(configDirOf(home), "keys");
  if (switched) {
    assertEquals(assertRotated(home, oldId), active, what);
    assert(!existsSync(join(keys, `${oldId}-private.pem.key`)), `${what}: the old key is gone`);
  } else {
    assertEquals(active, oldId, `${what}: the old identity stays`);
    assert(rotationRecord(home)?.step !== "proven", what);
  }
  assertEquals(listFiles(keys).length, 4, `${what}: ${listFiles(keys).join(", ")}`);
  const creates = emulator.counters.CreateCertificateFromCsr.requests;
  assertEquals(creates, options.creates, `${what}: certificates the rotation asked for`);
  const statuses = certificateStatuses(emulator);
  assertEquals(statuses.ACTIVE, switched ? 2 : 1, `${what}: ${JSON.stringify(statuses)}`);
  assertEquals(statuses.PENDING_ACTIVATION ?? 0, switched ? 0 : 1, what);
  assertEquals(
    readFileSync(join(keys, "active-certificate.pem.crt"), "utf8").trim(),
    emulator.registry.certificate(active)!.certificatePem.trim(),
  );
}

async function crashAt(point: typeof ROTATION_CRASH_POINTS[number]): Promise<void> {
  const emulator = await rotationEmulator();
  try {
    const b = await board(emulator);
    await cutRotation(emulator, { home: b.home, point });
    assertCleanAfterKill(b.home, point);
    // Whatever the kill left, the identity the runtime config names works.
    await assertConnects(emulator, b.home);
    await runAgain(emulator, b.home, point);
    await assertOneIdentity(emulator, b, {
      what: point,
      switched: point !== "after-create-answer",
      creates: 1,
    });
  } finally {
    await emulator.close();
  }
}

/** A kill while the emulator holds a request. */
interface InFlight {
  name: string;
  operation: "CreateCertificateFromCsr" | "RegisterThing" | "connect";
  point: "before" | "after";
  switched: boolean;
}

const IN_FLIGHT: InFlight[] = [
  // Released after the kill, the create mints a certificate nobody receives: the old identity stays.
  {
    name: "create request held",
    operation: "CreateCertificateFromCsr",
    point: "before",
    switched: false,
  },
  // Registered, answer lost: the journaled token registers it again.
  { name: "register answer held", operation: "RegisterThing", point: "after", switched: true },
  // Registered and journaled; the proof's CONNECT held: the boot proves it.
  {
    name: "the new certificate's CONNECT held",
    operation: "connect",
    point: "before",
    switched: true,
  },
];

async function killInFlight(c: InFlight): Promise<void> {
  const emulator = await rotationEmulator();
  try {
    const b = await board(emulator);
    let pause: ReturnType<Emulator["faults"]["pause"]> | undefined;
    let off = () => {};
    if (c.operation === "connect") {
      off = emulator.events.on("answer", (event) => {
        if (event.operation === "RegisterThing" && event.accepted && !pause) {
          pause = emulator.faults.pause("connect", c.point);
        }
      });
    } else {
      pause = emulator.faults.pause(c.operation, c.point);
    }
    const { child, result } = spawnFleetprov(
      rotateArgs(emulator, { extra: ["--force", "--step-timeout", "15", "--deadline", "30"] }),
      { home: b.home },
    );
    try {
      while (!pause) {
        const next = await Promise.race([emulator.events.waitFor("answer"), result]);
        assert(!("code" in next), `${c.name}: the run ended before the RegisterThing answer`);
      }
      const held = await Promise.race([pause.reached, result]);
      assert("clientId" in held, `${c.name}: the run ended before reaching the pause`);
      off();
      child.kill("SIGKILL");
      assertEquals((await result).signal, "SIGKILL", c.name);
      if (c.operation !== "connect" && c.point === "before") {
        // Released, the request does its work for a dead client: wait until it is done.
        const worked = emulator.faults.pause(c.operation, "after");
        pause.release();
        await worked.reached;
        worked.release();
      }
    } finally {
      off();
      pause?.release();
    }
    assertCleanAfterKill(b.home, c.name);
    await assertConnects(emulator, b.home);
    await runAgain(emulator, b.home, c.name);
    await assertOneIdentity(emulator, b, { what: c.name, switched: c.switched, creates: 1 });
  } finally {
    await emulator.close();
  }
}

Deno.test({
  name:
    "rotation: kill -9 at every step and mid-request, then the boot's run and the timer's: one identity that connects, one certificate minted",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: (t) =>
    concurrentSteps(t, [
      ...ROTATION_CRASH_POINTS.map((point) => ({ name: point, fn: () => crashAt(point) })),
      ...IN_FLIGHT.map((c) => ({ name: c.name, fn: () => killInFlight(c) })),
    ]),
});

Deno.test("rotation: a journal of another identity (re-provisioned since) is dropped, not finished", async () => {
  const emulator = await rotationEmulator();
  try {
    const b = await board(emulator);
    await cutRotation(emulator, { home: b.home, point: "after-journal-proven" });
    // The board is provisioned again (completed-fp false), as another thing.
    const path = join(configDirOf(b.home), "aws-iot-device-client-runtime.conf");
    const runtime = JSON.parse(readFileSync(path, "utf8"));
    runtime["runtime-config"]["completed-fp"] = false;
    Deno.writeTextFileSync(path, JSON.stringify(runtime));
    const again = await runFleetprov(deviceArgs(emulator, { serial: "SN-OTHER" }), {
      home: b.home,
    });
    assertEquals(again.code, 0, again.stderr);
    const boot = await runFleetprov(deviceArgs(emulator, { serial: "SN-OTHER" }), { home: b.home });
    assertEquals(boot.code, 0, boot.stderr);
    assert(/Dropped the rotation journal/.test(boot.stderr), boot.stderr);
    assertEquals(rotationRecord(b.home), undefined);
    assertEquals(runtimeConfigIfAny(b.home)?.["thing-name"], "board-SN-OTHER");
    assertEquals(await assertConnects(emulator, b.home), activeCertificateId(b.home));
  } finally {
    await emulator.close();
  }
});

/** The crash points after the new certificate's CONNACK and before the runtime config's switch. */
const BEFORE_SWITCH = ROTATION_CRASH_POINTS.slice(
  ROTATION_CRASH_POINTS.indexOf("after-verify"),
  ROTATION_CRASH_POINTS.indexOf("after-runtime-config"),
);

const noAwsCli = skipWhenMissing(awsCliMissing(), {
  require: "FLEETPROV_REQUIRE_TOOLS",
  what: "the crash test's backend (the AWS CLI)",
});

/**
 * The emulator's default setup; a board rotates and is killed at `point`,
 * after its new certificate has connected; the backend deactivates the old
 * certificate; then the boot's run and the timer's. The board is on the new
 * certificate, which connects; the old one is refused; one was minted.
 */
async function retiredBeforeSwitch(point: typeof BEFORE_SWITCH[number]): Promise<void> {
  const emulator = await testEmulator({ controlPort: 0, keyType: "ec-p256" });
  try {
    const home = deviceHome();
    const config = ["--config-file", emulator.configPath];
    const provisioned = await runFleetprov(config, { home });
    assertEquals(provisioned.code, 0, provisioned.stderr);
    const oldId = await assertConnects(emulator, home);
    const thing = String(runtimeConfigOf(home)["thing-name"]);
    const rc = runtimeConfigOf(home);
    const old = {
      cert: readFileSync(String(rc.cert), "utf8"),
      key: readFileSync(String(rc.key), "utf8"),
    };
    let connected: string | undefined;
    const off = emulator.events.on("connect", (e) => {
      if (e.accepted && e.certificateId !== oldId) connected ??= e.certificateId;
    });
    const killed = await runToCrashPoint(["rotate", ...config, "--force"], { home, point });
    off();
    assertEquals(killed.signal, "SIGKILL", `${point}: killed\n${killed.stdout}${killed.stderr}`);
    assert(connected, `${point}: the new certificate connected before the power cut`);
    assertEquals(activeCertificateId(home), oldId, `${point}: the runtime config is not switched`);

    // The backend saw the new certificate connect: it retires the old one.
    const retired = await awsIot(AWS_CLI, emulator.control!.url, [
      "update-certificate",
      "--certificate-id",
      oldId,
      "--new-status",
      "INACTIVE",
    ]);
    assertEquals(retired.code, 0, retired.stderr);

    const boot = await runFleetprov(config, { home });
    assertEquals(boot.code, 0, `${point}: boot\n${boot.stdout}${boot.stderr}`);
    const timer = await runFleetprov(["rotate", ...config], { home });
    assertEquals(timer.code, 0, `${point}: rotate\n${timer.stdout}${timer.stderr}`);
    assertNoTempFiles(home);
    assertEquals(assertRotated(home, oldId), connected, point);
    assertEquals(await assertConnects(emulator, home), connected, point);
    await assertRefused(emulator, old, thing);
    assertEquals(emulator.counters.CreateCertificateFromCsr.requests, 1, point);
  } finally {
    await emulator.close();
  }
}

Deno.test({
  name:
    "rotation: a power cut between the new certificate's proof and the switch, the backend retiring the old certificate once the new one connected: the board comes back on the new one, the old one is refused",
  ignore: noAwsCli,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    assertEquals(BEFORE_SWITCH, [
      "after-verify",
      "after-journal-proven",
      "after-certificate-file",
      "after-key-file",
    ]);
    await concurrentSteps(
      t,
      BEFORE_SWITCH.map((point) => ({ name: point, fn: () => retiredBeforeSwitch(point) })),
    );
  },
});
