// SPDX-License-Identifier: Apache-2.0
/**
 * `fleetprov rotate` end to end through the real CLI against the real
 * emulator (as it is: its template and policies options only): a board
 * provisioned with the claim certificate replaces its certificate, proves
 * the new one by connecting with it, and only then switches; young
 * certificates are left alone; a refused new certificate keeps the old
 * identity; a device policy that forbids the rotation topics is named; a
 * proven rotation cut by a power loss is switched by the next run without
 * the network.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ExitCode } from "../src/errors.ts";
import { loadSettings } from "../src/config/mod.ts";
import {
  DEFAULT_IF_EXPIRES_WITHIN_DAYS,
  DEFAULT_IF_OLDER_THAN_DAYS,
  rotationDue,
} from "../src/rotation/due.ts";
import { DAY_MS } from "../src/rotation/identity.ts";
import { deviceClientCertPolicy } from "../src/emulator/mod.ts";
import { DEFAULT_ROTATION_TEMPLATE_NAME, ROTATION_PARAMETERS } from "../src/protocol/mod.ts";
import { assert, assertEquals, assertMatch, assertNotEquals } from "./support/assert.ts";
import {
  activeCertificateId,
  assertConnects,
  assertNoTempFiles,
  assertRotated,
  certificateStatuses,
  configDirOf,
  cutRotation,
  deviceArgs,
  deviceHome,
  fakeTimeEnv,
  GIVE_UP_FAST,
  libfaketime,
  listFiles,
  modeOf,
  oneLineError,
  rotateArgs,
  ROTATION_TEST_TEMPLATE,
  rotationEmulator,
  rotationRecord,
  runFleetprov,
  runtimeConfigOf,
  runtimeConfigPathOf,
  TEMPLATE_NAME,
  type TestEmulator,
  testEmulator,
} from "./support/mod.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };

/** A board provisioned against `emulator` (serial SN-ROT): its home and certificate id. */
async function provisionedBoard(emulator: TestEmulator): Promise<{ home: string; id: string }> {
  const home = deviceHome();
  const result = await runFleetprov(deviceArgs(emulator, { serial: "SN-ROT" }), { home });
  assertEquals(result.code, ExitCode.Ok, result.stderr);
  return { home, id: await assertConnects(emulator, home) };
}

/** Every file of the board's config dir with its bytes: the old identity, untouched or not. */
function snapshot(home: string): Record<string, string> {
  const dir = configDirOf(home);
  return Object.fromEntries(
    listFiles(dir).map((file) => [file, readFileSync(join(dir, file), "utf8")]),
  );
}

/** The result line of a `--output json` run. */
function resultOf(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

Deno.test("rotation: the defaults are Device Defender's (365 days old, 30 days to expiry), and their edges", () => {
  assertEquals(DEFAULT_IF_OLDER_THAN_DAYS, 365);
  assertEquals(DEFAULT_IF_EXPIRES_WITHIN_DAYS, 30);
  assertEquals(DEFAULT_ROTATION_TEMPLATE_NAME, "FleetprovRotationTemplate");
  assertEquals(ROTATION_PARAMETERS, {
    thingName: "ThingName",
    oldCertificateId: "OldCertificateId",
  });
  const notBefore = new Date("2030-01-01T00:00:00Z");
  const certificate = {
    certificateId: "c".repeat(64),
    notBefore,
    notAfter: new Date(notBefore.getTime() + 20 * 365 * DAY_MS),
  };
  const policy = { ifOlderThanDays: 365, ifExpiresWithinDays: 30, force: false };
  const at = (ms: number) => rotationDue(certificate, { policy, now: new Date(ms) }).due;
  assertEquals(at(notBefore.getTime() + 365 * DAY_MS), false, "365 days old: not yet");
  assertEquals(at(notBefore.getTime() + 365 * DAY_MS + 1000), true, "past 365 days: due");
  const expiry = certificate.notAfter.getTime();
  const young = { ...certificate, notBefore: new Date(expiry - 100 * DAY_MS) };
  const soon = (ms: number) => rotationDue(young, { policy, now: new Date(ms) });
  assertEquals(soon(expiry - 31 * DAY_MS).due, false, "31 days before expiry: not yet");
  assertEquals(soon(expiry - 30 * DAY_MS).due, true, "30 days before expiry: due");
  assertMatch(
    soon(expiry - 30 * DAY_MS).reason,
    /within 30 days of expiry \(--if-expires-within\)/,
  );
  assertMatch(
    rotationDue(certificate, { policy: { ...policy, force: true }, now: notBefore }).reason,
    /rotating because of --force/,
  );
});

Deno.test({
  ...TEST,
  name:
    "rotate --force: new key, CreateCertificateFromCsr and RegisterThing as the thing, proven, then switched; both ids in the line and the journal; a young certificate is left alone",
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const { home, id: oldId } = await provisionedBoard(emulator);
      const keysDir = join(configDirOf(home), "keys");
      const oldKey = readFileSync(join(keysDir, "active-private.pem.key"), "utf8");
      const requests: string[] = [];
      emulator.events.on("request", (e) => requests.push(`${e.operation} as ${e.clientId}`));
      const connects: string[] = [];
      emulator.events.on("connect", (e) => connects.push(`${e.clientId} ${e.certificateId}`));

      const result = await runFleetprov(
        [...rotateArgs(emulator, { extra: ["--force"] }), "--output", "json"],
        { home },
      );
      assertEquals(result.code, ExitCode.Ok, result.stderr);
      const newId = assertRotated(home, oldId);
      const line = resultOf(result.stdout);
      assertEquals(line.outcome, "rotated");
      assertEquals(line.certificateId, newId);
      assertEquals(line.rotation, { oldCertificateId: oldId, newCertificateId: newId });
      assertEquals(line.error, null);

      // As its own thing, with its own certificate; then the new one, once.
      assertEquals(requests, [
        "CreateCertificateFromCsr as board-SN-ROT",
        "RegisterThing as board-SN-ROT",
      ]);
      assertEquals(connects, [`board-SN-ROT ${oldId}`, `board-SN-ROT ${newId}`]);
      // The rotation's parameters reached the template (echoed in the device configuration).
      assertEquals(runtimeConfigOf(home)["device-config"], {
        Foo: "Bar",
        RotatedThing: "board-SN-ROT",
        RotatedFrom: oldId,
      });
      const thing = emulator.registry.thing("board-SN-ROT")!;
      assertEquals(thing.principals.sort(), [oldId, newId].sort());
      assertEquals(emulator.registry.certificate(newId)?.status, "ACTIVE");
      // The new key was made on the board; the files are the runtime config's, modes strict.
      const newKey = readFileSync(join(keysDir, "active-private.pem.key"), "utf8");
      assertNotEquals(newKey, oldKey);
      assert(!result.stdout.includes("PRIVATE KEY") && !result.stderr.includes("PRIVATE KEY"));
      assertEquals(
        listFiles(keysDir).sort(),
        [
          `${newId}-certificate.pem.crt`,
          `${newId}-private.pem.key`,
          "active-certificate.pem.crt",
          "active-private.pem.key",
        ].sort(),
      );
      for (const file of listFiles(keysDir)) {
        assertEquals(modeOf(join(keysDir, file)), file.endsWith(".key") ? "600" : "644", file);
      }
      assertEquals(modeOf(runtimeConfigPathOf(home)), "640");
      assertNoTempFiles(home);
      assertEquals(await assertConnects(emulator, home), newId);

      // The next (timer) run finds the new certificate young: one line, exit 0, nothing sent.
      const before = emulator.counters.connect.requests;
      const again = await runFleetprov([...rotateArgs(emulator), "--output", "json"], { home });
      assertEquals(again.code, ExitCode.Ok, again.stderr);
      assertEquals(resultOf(again.stdout).outcome, "not-due");
      assertEquals(resultOf(again.stdout).rotation, {
        oldCertificateId: newId,
        newCertificateId: null,
      });
      const lines = again.stderr.trim().split("\n");
      assertEquals(lines.length, 1, again.stderr);
      assertMatch(lines[0], /is \d+ days? old and expires in \d+ days .*; not rotating before/);
      assertEquals(emulator.counters.connect.requests, before);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "rotate: --if-older-than and --if-expires-within decide; bad values are config errors (78); nothing to rotate on a board not provisioned",
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const { home, id } = await provisionedBoard(emulator);
      // The emulator's certificates are a day old and valid 20 years.
      for (const extra of [["--if-older-than", "400"], ["--if-expires-within=7000"]]) {
        const kept = await runFleetprov(rotateArgs(emulator, { extra }), { home });
        assertEquals(kept.code, ExitCode.Ok, kept.stderr);
        assertMatch(kept.stdout, /not rotating before/);
        assertEquals(activeCertificateId(home), id);
      }
      const old = await runFleetprov(rotateArgs(emulator, { extra: ["--if-older-than", "0"] }), {
        home,
      });
      assertEquals(old.code, ExitCode.Ok, old.stderr);
      assertMatch(old.stdout, /older than 0 days \(--if-older-than\)/);
      const second = assertRotated(home, id);
      const expiring = await runFleetprov(
        rotateArgs(emulator, { extra: ["--if-expires-within", "7400"] }),
        { home },
      );
      assertEquals(expiring.code, ExitCode.Ok, expiring.stderr);
      assertMatch(expiring.stdout, /within 7400 days of expiry/);
      assertRotated(home, second);

      for (
        const [extra, pattern] of [
          [["--if-older-than", "soon"], /--if-older-than is "soon"; expected a number of days/],
          [["--if-expires-within", "-1"], /--if-expires-within is "-1"; expected a number/],
          [["--force", "--force"], /--force is given more than once/],
          [["--if-older-than"], /--if-older-than is missing its value/],
        ] as [string[], RegExp][]
      ) {
        const bad = await runFleetprov(rotateArgs(emulator, { extra }), { home });
        assertEquals(bad.code, ExitCode.Config, bad.stderr);
        assertMatch(oneLineError(bad), pattern);
      }
      const fresh = deviceHome();
      const none = await runFleetprov(rotateArgs(emulator, { extra: ["--force"] }), {
        home: fresh,
      });
      assertEquals(none.code, ExitCode.Ok, none.stderr);
      assertMatch(none.stdout, /Not provisioned \(.*does not exist\.\); nothing to rotate\./);
      assert(!existsSync(configDirOf(fresh)), "nothing written on a board not provisioned");
      // A config without the rotation template the emulator's device-client.conf names.
      const config = JSON.parse(readFileSync(emulator.configPath, "utf8"));
      delete config["fleet-provisioning"]["rotation-template-name"];
      const bare = join(dirname(emulator.configPath), "no-rotation.conf");
      writeFileSync(bare, JSON.stringify(config), { mode: 0o640 });
      const noTemplate = await runFleetprov(
        [
          "rotate",
          ...deviceArgs(emulator, { serial: "SN-ROT" }).map((a) =>
            a === emulator.configPath ? bare : a
          ),
          "--force",
        ],
        { home },
      );
      assertEquals(noTemplate.code, ExitCode.Config);
      assertMatch(
        oneLineError(noTemplate, true),
        /No rotation template is set: set "fleet-provisioning.rotation-template-name"/,
      );
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "rotate --rotation-key-source aws: CreateKeysAndCertificate, the key AWS made, the same switch",
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const { home, id } = await provisionedBoard(emulator);
      const requests: string[] = [];
      emulator.events.on("request", (e) => requests.push(e.operation));
      const result = await runFleetprov(
        rotateArgs(emulator, { extra: ["--force", "--rotation-key-source", "aws"] }),
        { home },
      );
      assertEquals(result.code, ExitCode.Ok, result.stderr);
      assertEquals(requests, ["CreateKeysAndCertificate", "RegisterThing"]);
      const newId = assertRotated(home, id);
      assertEquals(await assertConnects(emulator, home), newId);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "rotate: a device policy without the rotation topics is named with the topic, exit 1, the old identity untouched (MQTT 3.1.1 and 5)",
  async fn(t) {
    // The Device Client sample's FPCertPolicy: its own thing's topics only.
    const emulator = await testEmulator({
      templateName: TEMPLATE_NAME,
      template: ROTATION_TEST_TEMPLATE,
      policies: { FPCertPolicy: deviceClientCertPolicy() },
    });
    try {
      for (const version of ["3.1.1", "5"]) {
        await t.step(`MQTT ${version}`, async () => {
          const { home, id } = await provisionedBoard(emulator);
          const before = snapshot(home);
          const result = await runFleetprov(
            [
              ...rotateArgs(emulator, { extra: ["--force", "--mqtt-version", version] }),
              "--output",
              "json",
            ],
            { home },
          );
          assertEquals(result.code, ExitCode.Rejected, result.stderr);
          const line = oneLineError(result, true);
          assertMatch(line, /the device certificate's policy/);
          assertMatch(line, /add \{"Effect":"Allow","Action":"iot:Subscribe"/);
          assertMatch(line, new RegExp(`The old certificate ${id} stays active\\.`));
          if (version === "5") {
            assertMatch(
              line,
              /SUBACK 0x87 Not authorized for \$aws\/certificates\/create-from-csr\//,
            );
          } else {
            // MQTT 3.1.1: AWS IoT only closes; the line names every packet and the template's topics.
            assertMatch(
              line,
              new RegExp(`\\$aws/provisioning-templates/${TEMPLATE_NAME}/provision/json/accepted`),
            );
            assertMatch(line, /\$\{iot:Connection\.Thing\.ThingName\}/);
          }
          const json = resultOf(result.stdout);
          assertEquals((json.error as { cause: string }).cause, "policy");
          assertEquals(json.rotation, { oldCertificateId: id, newCertificateId: null });
          assertEquals(snapshot(home), before, "the old identity's files are untouched");
          assertEquals(await assertConnects(emulator, home), id);
        });
      }
      assertEquals(emulator.counters.CreateCertificateFromCsr.requests, 0, "nothing was minted");
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "rotate: a new certificate refused for a while (policy lag) is retried and switched; refused to the deadline: exit 75, old identity active, the next run proves it only",
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const { home, id } = await provisionedBoard(emulator);
      // The device's own connection goes through; the new certificate's first two are refused.
      emulator.faults.add({
        operation: "connect",
        skip: 1,
        times: 2,
        reject: { statusCode: 403, errorCode: "NotAuthorized" },
        returnCode: 5,
      });
      const lag = await runFleetprov(
        [...rotateArgs(emulator, { extra: ["--force"] }), "--output", "json"],
        { home },
      );
      assertEquals(lag.code, ExitCode.Ok, lag.stderr);
      assertEquals(resultOf(lag.stdout).retries, 2);
      const second = assertRotated(home, id);
      emulator.faults.clear();

      // Refused for good: the deadline ends the run with 75, the old identity still active.
      emulator.faults.add({
        operation: "connect",
        skip: 1,
        reject: { statusCode: 403, errorCode: "NotAuthorized" },
        returnCode: 5,
      });
      const before = snapshot(home);
      const refused = await runFleetprov(
        [...rotateArgs(emulator, { extra: ["--force"], retry: GIVE_UP_FAST }), "--output", "json"],
        { home },
      );
      assertEquals(refused.code, ExitCode.TempFail, refused.stderr);
      const line = oneLineError(refused, true);
      assertMatch(line, /The new certificate could not connect within the 1 s deadline/);
      assertMatch(line, new RegExp(`The old certificate ${second} stays active`));
      assertEquals((resultOf(refused.stdout).error as { cause: string }).cause, "proof");
      const files = snapshot(home);
      assertEquals(
        Object.fromEntries(Object.entries(files).filter(([f]) => f !== "fleetprov-rotation.json")),
        Object.fromEntries(Object.entries(before).filter(([f]) => f !== "fleetprov-rotation.json")),
      );
      assertEquals(rotationRecord(home)?.step, "registered");
      const pending = String(rotationRecord(home)?.certificateId);
      emulator.faults.clear();
      assertEquals(await assertConnects(emulator, home), second);

      // The next (timer) run, not forced, proves the journaled certificate: no new one.
      const requests: string[] = [];
      emulator.events.on("request", (e) => requests.push(e.operation));
      const next = await runFleetprov(rotateArgs(emulator), { home });
      assertEquals(next.code, ExitCode.Ok, next.stderr);
      assertMatch(next.stdout, /Resuming the rotation of certificate .* at step registered/);
      assertEquals(requests, []);
      assertEquals(assertRotated(home, second), pending);
      assertEquals(await assertConnects(emulator, home), pending);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "power cut after the proof, before the switch: the boot's fleetprov switches with the endpoint down (fleet provisioning disabled, even); the new identity connects",
  async fn() {
    const stateDir = join(Deno.makeTempDirSync({ prefix: "fleetprov-emu-" }), "state");
    let emulator = await rotationEmulator({ stateDir });
    const port = emulator.port;
    const { home, id } = await provisionedBoard(emulator);
    await cutRotation(emulator, { home, point: "after-journal-proven" });
    assertEquals(activeCertificateId(home), id, "not switched yet");
    const proven = String(rotationRecord(home)?.certificateId);
    await emulator.close(); // the endpoint is down: the backend may retire the old one meanwhile

    // Any fleetprov run switches first: even one with fleet provisioning disabled.
    const boot = await runFleetprov(
      deviceArgs(emulator, { serial: "SN-ROT", extra: ["--enable-fleet-provisioning", "false"] }),
      { home },
    );
    assertEquals(boot.code, ExitCode.Ok, boot.stderr);
    assertMatch(boot.stdout, /Resuming the rotation of certificate .* at step proven/);
    assertMatch(boot.stdout, /Fleet provisioning is disabled/);
    assertEquals(assertRotated(home, id), proven);
    assertNoTempFiles(home);

    emulator = await rotationEmulator({ stateDir, port });
    try {
      assertEquals(await assertConnects(emulator, home), proven);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "the boot's fleetprov finishes a registered rotation by its proof; a refused proof keeps the old identity and the boot goes on (exit 0)",
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const { home, id } = await provisionedBoard(emulator);
      await cutRotation(emulator, { home, point: "after-journal-registered" });
      const pending = String(rotationRecord(home)?.certificateId);

      emulator.faults.add({
        operation: "connect",
        reject: { statusCode: 403, errorCode: "NotAuthorized" },
        returnCode: 5,
      });
      const refused = await runFleetprov(deviceArgs(emulator, { serial: "SN-ROT" }), { home });
      assertEquals(refused.code, ExitCode.Ok, refused.stderr);
      assertMatch(
        refused.stderr,
        new RegExp(`The board keeps certificate ${id}; fleetprov rotate retries\\.`),
      );
      assertMatch(refused.stdout, /Already provisioned/);
      assertEquals(activeCertificateId(home), id);
      assertEquals(rotationRecord(home)?.step, "registered");
      emulator.faults.clear();

      const boot = await runFleetprov(deviceArgs(emulator, { serial: "SN-ROT" }), { home });
      assertEquals(boot.code, ExitCode.Ok, boot.stderr);
      assertMatch(boot.stdout, /Rotated thing board-SN-ROT .*\(finished from step registered\)/);
      assertEquals(assertRotated(home, id), pending);
      assertEquals(await assertConnects(emulator, home), pending);
      assertEquals(
        emulator.counters.RegisterThing.requests,
        2,
        "provisioning's and the rotation's",
      );
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "Device Client compatibility after a rotation: the runtime config loads without a warning, as DC lays it out; the next boot is 'already provisioned' without connecting",
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const { home, id } = await provisionedBoard(emulator);
      const rotated = await runFleetprov(rotateArgs(emulator, { extra: ["--force"] }), { home });
      assertEquals(rotated.code, ExitCode.Ok, rotated.stderr);
      const newId = assertRotated(home, id);
      const keys = join(configDirOf(home), "keys");
      const text = readFileSync(runtimeConfigPathOf(home), "utf8");
      const parsed = JSON.parse(text);
      assertEquals(Object.keys(parsed), ["runtime-config"]);
      assertEquals(Object.keys(parsed["runtime-config"]), [
        "completed-fp",
        "cert",
        "key",
        "thing-name",
        "device-config",
      ]);
      assertEquals(parsed["runtime-config"].cert, join(keys, "active-certificate.pem.crt"));
      assertEquals(parsed["runtime-config"].key, join(keys, "active-private.pem.key"));
      const settings = await loadSettings(["--config-file", emulator.configPath], {
        env: { HOME: home },
        home,
      });
      assertEquals(settings.runtime.status, "provisioned");
      assertEquals(settings.cert, join(keys, "active-certificate.pem.crt"));
      assertEquals(settings.warnings, []);
      const before = emulator.counters.connect.requests;
      const boot = await runFleetprov(
        [...deviceArgs(emulator, { serial: "SN-ROT" }), "--output", "json"],
        { home },
      );
      assertEquals(boot.code, ExitCode.Ok, boot.stderr);
      const line = resultOf(boot.stdout);
      assertEquals(line.outcome, "already-provisioned");
      assertEquals(line.certificateId, newId);
      assertEquals(emulator.counters.connect.requests, before);
      assertEquals(readdirSync(keys).length, 4);
      assertEquals(certificateStatuses(emulator).ACTIVE, 2, "the backend retires the old one");
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "rotate with its defaults under libfaketime: a certificate 364 days old stays, one 366 days old is replaced",
  ignore: libfaketime === undefined,
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const { home, id } = await provisionedBoard(emulator);
      // The emulator's certificates are issued a day back: these clocks make them 364 and 366 days old.
      const at = (offset: string) => fakeTimeEnv({ offset });
      const young = await runFleetprov(rotateArgs(emulator), { home, env: at("+363d") });
      assertEquals(young.code, ExitCode.Ok, young.stderr);
      assertMatch(young.stdout, /is 364 days old .*; not rotating before it is 365 days old/);
      assertEquals(activeCertificateId(home), id);
      const old = await runFleetprov(rotateArgs(emulator), { home, env: at("+365d") });
      assertEquals(old.code, ExitCode.Ok, old.stderr);
      assertMatch(old.stdout, /is 366 days old .*: older than 365 days \(--if-older-than\)/);
      assertEquals(await assertConnects(emulator, home), assertRotated(home, id));
    } finally {
      await emulator.close();
    }
  },
});
