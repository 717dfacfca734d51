// SPDX-License-Identifier: Apache-2.0
/**
 * The board's clock, moved with libfaketime (Debian package `faketime`), on
 * the Deno source and on the x64 binary: at 1970 (no RTC, before NTP) and at
 * 2090 the run says what the clock reads, what it should read and what sets
 * it, waits within the deadline and exits 75 (systemd retries); a clock that
 * is set during the run (NTP arriving late) provisions without a restart; a
 * power cut right after the create answer followed by a boot at 1970 reuses
 * the journaled certificate and token once the clock is right (one
 * certificate minted, not two). Credentials no clock can make valid (expired
 * before fleetprov was built; not yet valid by a clock NTP synchronised) are
 * a configuration error (78) naming their dates, in a run and in `check`.
 *
 * The clock of a running child is moved honestly: libfaketime re-reads its
 * timestamp file at every clock read (FAKETIME_NO_CACHE); the test writes the
 * file once it has seen the run's own log line saying it waits.
 *
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build, buildTimeIso } from "../build/mod.ts";
import { SOURCE_BUILD_TIME, TIMESYNC_FLAG } from "../src/clock/mod.ts";
import { ExitCode } from "../src/errors.ts";
import { CLOCK_POLL_MS } from "../src/provisioning/mod.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  assertProvisioned,
  boardEmulator,
  certificateStatuses,
  deviceArgs,
  deviceHome,
  fakeTimeEnv,
  fleetprovCommand,
  fleetprovEnv,
  libfaketime,
  oneLineError,
  ROOT,
  runFleetprov,
  runToCrashPoint,
  selfSignedCertificate,
  skipWhenMissing,
  tempDir,
  type TestEmulator,
  watchFleetprov,
  writeWithMode,
} from "./support/mod.ts";

/** The environment that runs a child at the time in `file` ("@1970-01-01 00:00:00", "+0"). */
function timeFile(content: string): string {
  const file = join(tempDir("fleetprov-faketime-"), "faketime");
  writeFileSync(file, `${content}\n`);
  return file;
}

const RUNNERS: { name: string; bin: () => Promise<string | undefined> }[] = [
  { name: "Deno source", bin: () => Promise.resolve(undefined) },
  {
    name: "x64 binary",
    bin: async () => (await build({ targets: ["x64"], log: () => {} })).targets[0].path,
  },
];

/** What the one line says at 1970 (before the build) and at 2090 (after the credentials). */
const WRONG_CLOCKS: [string, RegExp][] = [
  [
    "@1970-01-01 00:00:00",
    /The system clock reads 1970-\d\d-\d\dT[\d:]+Z, before fleetprov was built \(\d{4}-\S+Z\), so it is not set yet\. TLS cannot work until the clock is set: by NTP \(systemd-timesyncd.*RTC.* Gave up at the 2 s deadline/,
  ],
  [
    "@2090-06-01 00:00:00",
    /The system clock reads 2090-\d\d-\d\dT[\d:]+Z, after the validity of the claim certificate and the root CA; it should read after \d{4}-.*Z and before \d{4}-.*Z\. .*NTP \(systemd-timesyncd.*RTC.* Gave up at the 2 s deadline/,
  ],
];

for (const runner of RUNNERS) {
  Deno.test({
    name: `clock (${runner.name}): at 1970 and at 2090 one line says what sets it, exit 75`,
    ignore: libfaketime === undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const bin = await runner.bin();
      const emulator = await boardEmulator();
      try {
        for (const [at, line] of WRONG_CLOCKS) {
          const home = deviceHome();
          const result = await runFleetprov(
            deviceArgs(emulator, { retry: ["--deadline", "2", "--step-timeout", "1"] }),
            { home, bin, env: fakeTimeEnv({ file: timeFile(at) }) },
          );
          assertEquals(result.code, ExitCode.TempFail, result.stderr);
          assertMatch(oneLineError(result, true), line);
          assertEquals(emulator.counters.connect.requests, 0, "no connection with a wrong clock");
        }
      } finally {
        await emulator.close();
      }
    },
  });

  Deno.test({
    name:
      `clock (${runner.name}): set during the run (NTP late), the run provisions without a restart`,
    ignore: libfaketime === undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const bin = await runner.bin();
      const emulator = await boardEmulator();
      try {
        const home = deviceHome();
        const file = timeFile("@1970-01-01 00:00:00");
        const run = watchFleetprov(
          deviceArgs(emulator, { serial: "SN-CLOCK", retry: ["--deadline", "60"] }),
          { home, bin, env: fakeTimeEnv({ file }) },
        );
        await run.until(/The system clock reads 1970-.*Waiting up to \d+ s for it\./);
        assertEquals(emulator.counters.connect.requests, 0);
        const set = performance.now();
        writeFileSync(file, "+0\n");
        await run.until(/The system clock is now plausible/);
        const noticed = performance.now() - set;
        const result = await run.result;
        assertEquals(result.code, ExitCode.Ok, result.stderr);
        assertProvisioned(home);
        assert(emulator.registry.thing("board-SN-CLOCK"));
        // The clock warning is logged once, however long the wait.
        assertEquals(result.stderr.match(/The system clock reads/g)?.length, 1);
        console.log(`clock fixed -> noticed in ${Math.round(noticed)} ms (${runner.name})`);
      } finally {
        await emulator.close();
      }
    },
  });

  Deno.test({
    name:
      `clock (${runner.name}): a power cut after the create answer, then a boot at 1970 (no RTC): the journaled token is judged once NTP set the clock, and reused (one certificate, not two)`,
    ignore: libfaketime === undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const bin = await runner.bin();
      const emulator = await boardEmulator();
      try {
        const home = deviceHome();
        const args = deviceArgs(emulator, { serial: "SN-RTC", retry: ["--deadline", "60"] });
        // Power lost right after the certificate was created and journaled.
        const cut = await runToCrashPoint(args, { home, bin, point: "after-journal-created" });
        assertEquals(cut.signal, "SIGKILL", cut.stderr);
        assertEquals(emulator.counters.CreateKeysAndCertificate.accepted, 1);
        const journal = JSON.parse(
          readFileSync(join(home, ".aws-iot-device-client", "fleetprov-journal.json"), "utf8"),
        );
        // The next boot starts at 1970, until NTP sets the clock.
        const requests: string[] = [];
        emulator.events.on("request", (event) => requests.push(event.operation));
        const file = timeFile("@1970-01-01 00:00:00");
        const run = watchFleetprov(args, { home, bin, env: fakeTimeEnv({ file }) });
        await run.until(/The system clock reads 1970-.*Waiting up to \d+ s for it\./);
        writeFileSync(file, "+0\n");
        const result = await run.result;
        assertEquals(result.code, ExitCode.Ok, result.stderr);
        assertMatch(
          result.stdout,
          new RegExp(
            `Resuming provisioning at step certificate-created with certificate ${journal.certificateId}`,
          ),
        );
        assert(!/expired ownership token/.test(result.stderr), result.stderr);
        // The token was reused: no second create, one certificate in the registry, registered.
        assertEquals(requests, ["RegisterThing"]);
        assertEquals(
          emulator.registry.certificates().filter((c) => !c.claim).length,
          1,
          "one certificate minted",
        );
        assertEquals(certificateStatuses(emulator).PENDING_ACTIVATION ?? 0, 0);
        const { thingName } = assertProvisioned(home);
        assertEquals(thingName, "board-SN-RTC");
        assertEquals(emulator.registry.thing(thingName)?.principals, [journal.certificateId]);
      } finally {
        await emulator.close();
      }
    },
  });
}

/** Claim files (certificate with `validity`, its key) in a 0700 dir, and the arguments using them. */
async function claimWithValidity(
  emulator: TestEmulator,
  validity: { notBefore: Date; notAfter: Date },
): Promise<{ args: string[]; certPath: string }> {
  const dir = join(tempDir("fleetprov-claim-"), "claim");
  Deno.mkdirSync(dir, { mode: 0o700 });
  const { certificate, privateKeyPem } = await selfSignedCertificate("old claim", { validity });
  const certPath = join(dir, "claim.pem.crt");
  writeWithMode(certPath, certificate.toString("pem"), 0o644);
  const keyPath = join(dir, "claim.pem.key");
  writeWithMode(keyPath, privateKeyPem!, 0o600);
  return {
    certPath,
    args: deviceArgs(emulator, {
      serial: "SN-OLD",
      extra: ["--cert", certPath, "--key", keyPath],
      retry: ["--deadline", "2", "--step-timeout", "1"],
    }),
  };
}

Deno.test({
  name:
    "a claim certificate that expired before fleetprov was built (valid only in January 2020) is a configuration error naming its dates: 78 in a run and in check, no connection, no retry",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const emulator = await boardEmulator();
    try {
      const { args, certPath } = await claimWithValidity(emulator, {
        notBefore: new Date("2020-01-01T00:00:00Z"),
        notAfter: new Date("2020-01-31T00:00:00Z"),
      });
      const line = new RegExp(
        `^fleetprov: The claim certificate ${certPath} expired on 2020-01-31T00:00:00Z \\(valid from 2020-01-01T00:00:00Z to 2020-01-31T00:00:00Z\\), before fleetprov was built \\(\\d{4}-\\S+Z\\): no correct clock is inside it\\. Replace it with a valid one\\.$`,
      );
      const run = await runFleetprov([...args, "--output", "json"], { home: deviceHome() });
      assertEquals(run.code, ExitCode.Config, run.stderr);
      assertMatch(oneLineError(run), line);
      assertEquals(JSON.parse(run.stdout).error.cause, "config");
      const check = await runFleetprov(["check", ...args], { home: deviceHome() });
      assertEquals(check.code, ExitCode.Config, check.stderr);
      assertMatch(check.stderr, new RegExp(line.source.slice(1, -1), "m"));
      assertMatch(check.stderr, /check: 1 problem\(s\); a run would exit with code 78\./);
      assertEquals(emulator.counters.connect.requests, 0);
    } finally {
      await emulator.close();
    }
  },
});

/** Why the synchronised-clock test cannot run here (it mounts a private /run as root). */
function unshareMissing(): string | undefined {
  if (Deno.uid() !== 0) return "it mounts a private /run in a mount namespace, which needs root.";
  try {
    const out = new Deno.Command("unshare", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return out.success ? undefined : "unshare --version failed.";
  } catch {
    return "unshare is missing: install the Debian package util-linux.";
  }
}

/**
 * Runs the CLI in a mount namespace of its own whose /run is a fresh tmpfs
 * holding systemd-timesyncd's flag (or not): the board's only view of NTP.
 */
async function runWithTimesync(
  args: string[],
  options: { home: string; synchronised: boolean },
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { command, args: full } = fleetprovCommand(args);
  const flag = options.synchronised
    ? `mkdir -p ${TIMESYNC_FLAG.replace(/\/[^/]+$/, "")} && : > ${TIMESYNC_FLAG} && `
    : "";
  const output = await new Deno.Command("unshare", {
    args: [
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      `mount -t tmpfs tmpfs /run && ${flag}exec "$@"`,
      "sh",
      command,
      ...full,
    ],
    env: fleetprovEnv(options.home),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test({
  name:
    "a claim certificate not valid yet: with a clock NTP synchronised, a configuration error (78) naming its dates; without, the clock is the suspect (75)",
  ignore: skipWhenMissing(unshareMissing(), {
    require: "FLEETPROV_REQUIRE_TOOLS",
    what: "the synchronised-clock test",
  }),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const emulator = await boardEmulator();
    try {
      const { args, certPath } = await claimWithValidity(emulator, {
        // Within the emulator's CA (20 years from now), decades ahead of the clock.
        notBefore: new Date("2040-01-01T00:00:00Z"),
        notAfter: new Date("2045-01-01T00:00:00Z"),
      });
      const synced = await runWithTimesync(args, { home: deviceHome(), synchronised: true });
      assertEquals(synced.code, ExitCode.Config, synced.stderr);
      assertMatch(
        oneLineError(synced),
        new RegExp(
          `^fleetprov: The claim certificate ${certPath} is not valid yet: valid from 2040-01-01T00:00:00Z to 2045-01-01T00:00:00Z, and the clock \\(\\S+\\) is synchronised by NTP\\. Replace it with one valid now\\.$`,
        ),
      );
      const check = await runWithTimesync(["check", ...args], {
        home: deviceHome(),
        synchronised: true,
      });
      assertEquals(check.code, ExitCode.Config, check.stderr);
      assertMatch(check.stderr, /is not valid yet: valid from 2040-01-01T00:00:00Z/);
      const unsynced = await runWithTimesync(args, { home: deviceHome(), synchronised: false });
      assertEquals(unsynced.code, ExitCode.TempFail, unsynced.stderr);
      assertMatch(
        oneLineError(unsynced, true),
        /The system clock reads \S+, before the validity of the claim certificate and the root CA; .* Gave up at the 2 s deadline/,
      );
      assertEquals(emulator.counters.connect.requests, 0);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  name: `clock: a run waiting for the clock looks again every ${CLOCK_POLL_MS} ms (README: 0.5 s)`,
  ignore: libfaketime === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // The README's number, written out: a change of the interval fails here.
    assertEquals(CLOCK_POLL_MS, 500);
    const emulator = await boardEmulator();
    try {
      const result = await runFleetprov(
        deviceArgs(emulator, {
          retry: ["--deadline", "4", "--step-timeout", "1"],
          extra: ["--log-level", "DEBUG"],
        }),
        { home: deviceHome(), env: fakeTimeEnv({ file: timeFile("@1970-01-01 00:00:00") }) },
      );
      assertEquals(result.code, ExitCode.TempFail, result.stderr);
      // Each look is a DEBUG line stamped by the (faked, running) clock of the run itself.
      const looks = [
        ...result.stdout.matchAll(
          /^(\S+) \[DEBUG\] The clock is not plausible yet; looking again in (\d+) ms\.$/gm,
        ),
      ];
      assert(looks.length >= 3, `looked ${looks.length} times in 4 s:\n${result.stdout}`);
      assertEquals(new Set(looks.map((m) => m[2])), new Set(["500"]));
      const times = looks.map((m) => Date.parse(m[1]));
      const gaps = times.slice(1).map((t, i) => t - times[i]);
      // A timer never fires early; the shortest gap is the interval plus the run's own work.
      const shortest = Math.min(...gaps);
      assert(shortest >= 500 && shortest < 1000, `gaps between looks: ${gaps.join(", ")} ms`);
    } finally {
      await emulator.close();
    }
  },
});

/** The floor `check` prints: "Clock: <now> (fleetprov built <time>; ...)". */
function builtTimeOf(stdout: string): string {
  const built = /^ {2}Clock: +\S+ \(fleetprov built (\S+);/m.exec(stdout)?.[1];
  assert(built, `check prints the clock:\n${stdout}`);
  return built;
}

Deno.test({
  name:
    "clock floor: the x64 binary carries its build time (SOURCE_DATE_EPOCH, else the last commit's), and the source's floor is not after the last commit",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const emulator = await boardEmulator();
    try {
      const args = ["check", ...deviceArgs(emulator)];
      const binary = (await build({ targets: ["x64"], log: () => {} })).targets[0].path;
      const fromBinary = await runFleetprov(args, { home: deviceHome(), bin: binary });
      assertEquals(fromBinary.code, 0, fromBinary.stderr);
      assertEquals(builtTimeOf(fromBinary.stdout), (await buildTimeIso()).replace(/\.\d+Z$/, "Z"));
      const source = (await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", join(ROOT, "main.ts"), ...args],
        env: fleetprovEnv(deviceHome()),
        stdout: "piped",
      }).output()).stdout;
      assertEquals(builtTimeOf(new TextDecoder().decode(source)), SOURCE_BUILD_TIME);
      const commit = new Deno.Command("git", {
        args: ["log", "-1", "--format=%cI"],
        cwd: ROOT,
        stdout: "piped",
      }).outputSync();
      const last = Date.parse(new TextDecoder().decode(commit.stdout).trim());
      assert(!commit.success || Date.parse(SOURCE_BUILD_TIME) <= last, "the source floor is old");
    } finally {
      await emulator.close();
    }
  },
});
