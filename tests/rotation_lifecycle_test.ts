// SPDX-License-Identifier: Apache-2.0
/**
 * A certificate's life against the emulator out of the box, as issue 19's
 * "done when" says: a board provisioned by the real CLI with the emulator's
 * device-client.conf; the daily timer's command (fleetprov-rotate.service's
 * ExecStart, read from the unit) leaves a young certificate alone, and under
 * libfaketime 400 days later replaces it; the backend (the AWS CLI against
 * the control plane) deactivates the old certificate and detaches it from the
 * thing once the new one has connected, which it learns from the emulator's
 * connect event; then the board connects with the new certificate and the old
 * one is refused.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ExitCode } from "../src/errors.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  activeCertificateId,
  assertConnects,
  assertRefused,
  assertRotated,
  AWS_CLI,
  awsCliMissing,
  awsIot,
  type Credentials,
  deviceHome,
  fakeTimeEnv,
  libfaketime,
  ROOT,
  runFleetprov,
  runtimeConfigOf,
  skipWhenMissing,
  tempDir,
  testEmulator,
} from "./support/mod.ts";
import { parseUnit } from "./support/systemd_unit.ts";

const noAwsCli = skipWhenMissing(awsCliMissing(), {
  require: "FLEETPROV_REQUIRE_TOOLS",
  what: "the rotation lifecycle test (its backend is the AWS CLI)",
});

/**
 * The arguments of fleetprov-rotate.service's ExecStart, as the unit has
 * them, on this board: the config file it names replaced by `configPath`.
 */
function timerArguments(configPath: string): string[] {
  const unit = parseUnit(
    readFileSync(join(ROOT, "build", "systemd", "fleetprov-rotate.service"), "utf8"),
  );
  const [binary, ...args] = unit.get("Service.ExecStart")!.split(/\s+/);
  assertEquals(binary, "/usr/bin/fleetprov");
  const at = args.indexOf("--config-file");
  assert(at >= 0, `ExecStart names no config file: ${args.join(" ")}`);
  return args.map((arg, i) => i === at + 1 ? configPath : arg);
}

/** The board's credentials now (copies: the rotation removes the old files). */
function credentialsOf(home: string): Credentials {
  const rc = runtimeConfigOf(home);
  return { cert: readFileSync(String(rc.cert), "utf8"), key: readFileSync(String(rc.key), "utf8") };
}

Deno.test({
  name:
    "rotation end to end: provisioned, left alone while young, replaced by the timer's command 400 days on (libfaketime), the old certificate deactivated by the backend through the control plane once the new one connected; the new one connects, the old one is refused",
  ignore: libfaketime === undefined || noAwsCli,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const emulator = await testEmulator({ controlPort: 0 });
    const aws = async (...args: string[]) => {
      const result = await awsIot(AWS_CLI, emulator.control!.url, args);
      assertEquals(result.code, 0, `aws iot ${args[0]}: ${result.stderr}`);
      return result.json;
    };
    try {
      const home = deviceHome();
      const provisioned = await runFleetprov(["--config-file", emulator.configPath], { home });
      assertEquals(provisioned.code, ExitCode.Ok, provisioned.stderr);
      const thing = String(runtimeConfigOf(home)["thing-name"]);
      const oldId = await assertConnects(emulator, home);
      const old = credentialsOf(home);
      const args = timerArguments(emulator.configPath);

      // Today the certificate is young: the timer's run is a no-op without a connection.
      const connects = emulator.counters.connect.requests;
      const young = await runFleetprov(args, { home });
      assertEquals(young.code, ExitCode.Ok, young.stderr);
      assertMatch(young.stdout, /not rotating before it is 365 days old/);
      assertEquals(emulator.counters.connect.requests, connects);

      // The backend: once a new certificate of the thing has connected, retire the old one.
      const newConnected = emulator.events.waitFor(
        "connect",
        (e) =>
          e.accepted && e.certificateId !== undefined && e.certificateId !== oldId &&
          emulator.registry.certificate(e.certificateId)?.thingNames.includes(thing) === true,
      );
      const backend = newConnected.then(async ({ certificateId }) => {
        assertEquals(emulator.registry.certificate(oldId)!.status, "ACTIVE");
        await aws("update-certificate", "--certificate-id", oldId, "--new-status", "INACTIVE");
        await aws(
          "detach-thing-principal",
          "--thing-name",
          thing,
          "--principal",
          `arn:aws:iot:us-east-1:123456789012:cert/${oldId}`,
        );
        return certificateId!;
      });

      // 400 days on, the timer's run replaces it (the unit's RuntimeDirectory= takes the marker).
      const runtimeDirectory = tempDir("fleetprov-rotate-run-");
      const started = performance.now();
      const rotated = await runFleetprov(args, {
        home,
        env: { ...fakeTimeEnv({ offset: "+400d" }), RUNTIME_DIRECTORY: runtimeDirectory },
      });
      const wallMs = Math.round(performance.now() - started);
      assertEquals(rotated.code, ExitCode.Ok, rotated.stdout + rotated.stderr);
      assertMatch(rotated.stdout, /is 40\d days old .*: older than 365 days \(--if-older-than\)/);
      assert(existsSync(join(runtimeDirectory, "rotated")), "the unit restarts the services");
      const newId = await backend;
      assertEquals(assertRotated(home, oldId), newId);
      console.log(`rotation by the timer's command against the emulator: ${wallMs} ms wall time`);

      // The control plane says what the backend did.
      const described = await aws("describe-certificate", "--certificate-id", oldId);
      assertEquals(described.certificateDescription.status, "INACTIVE");
      const principals = await aws("list-thing-principals", "--thing-name", thing);
      assertEquals(principals.principals, [`arn:aws:iot:us-east-1:123456789012:cert/${newId}`]);

      // The board connects with the new certificate; the old one is refused at CONNECT.
      assertEquals(await assertConnects(emulator, home), newId);
      const refusal = emulator.events.waitFor("connect", (e) => e.certificateId === oldId);
      await assertRefused(emulator, old, thing);
      const refused = await refusal;
      assertEquals(refused.accepted, false);
      assertMatch(refused.reason ?? "", /INACTIVE/);
      assertEquals(activeCertificateId(home), newId);
    } finally {
      await emulator.close();
    }
  },
});
