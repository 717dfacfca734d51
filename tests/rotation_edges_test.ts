// SPDX-License-Identifier: Apache-2.0
/**
 * A rotation at the edges a provisioning run already handles (issue 21), on
 * the real CLI against the real emulator: SIGTERM from the first moment of
 * `fleetprov rotate` (while the settings load, and mid-rotation) and while
 * the boot's run finishes a pending rotation ends the run with 75, one line
 * and the result line, its locks released; a write a kill cut is swept by the
 * next `rotate`; and whatever a rotation decides by the clock (is the
 * certificate due, is a journaled ownership token still fresh) waits for a
 * trusted clock: a board without an RTC booting at 1970 neither skips a due
 * rotation nor mints a second certificate (libfaketime moves the clock).
 *
 * @module
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Emulator } from "../src/emulator/mod.ts";
import { ExitCode } from "../src/errors.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
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
  libfaketime,
  listFiles,
  oneLineError,
  rotateArgs,
  rotationEmulator,
  runFleetprov,
  spawnFleetprov,
  tempDir,
  type TestEmulator,
  watchFleetprov,
} from "./support/mod.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };

/** The lock every run that rotates takes (beside devicecl.lock, under LOCK_FILE_PATH). */
const ROTATION_LOCK = "fleetprov-rotate.lock";

/** A board provisioned against `emulator` (serial SN-ROT): its home and certificate id. */
async function provisionedBoard(emulator: TestEmulator): Promise<{ home: string; id: string }> {
  const home = deviceHome();
  const result = await runFleetprov(deviceArgs(emulator, { serial: "SN-ROT" }), { home });
  assertEquals(result.code, ExitCode.Ok, result.stderr);
  return { home, id: await assertConnects(emulator, home) };
}

/** The last stdout line of a `--output json` run, parsed. */
function resultOf(stdout: string): Record<string, unknown> & { error: { cause: string } | null } {
  const lines = stdout.trim().split("\n");
  assertEquals(lines.length, 1, stdout);
  return JSON.parse(lines[0]);
}

/** The rotation journal, parsed, or undefined. */
function rotationJournal(home: string): Record<string, unknown> | undefined {
  const path = join(configDirOf(home), "fleetprov-rotation.json");
  return existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : undefined;
}

/** Holds the CONNECT that follows an accepted RegisterThing (the new certificate's proof). */
function holdProof(emulator: Emulator): {
  held: Promise<unknown>;
  release: () => void;
} {
  let pause: ReturnType<Emulator["faults"]["pause"]> | undefined;
  let reached!: (value: unknown) => void;
  const held = new Promise((resolve) => reached = resolve);
  const off = emulator.events.on("answer", (event) => {
    if (event.operation === "RegisterThing" && event.accepted && !pause) {
      pause = emulator.faults.pause("connect", "before");
      pause.reached.then(reached);
    }
  });
  return {
    held,
    release: () => {
      off();
      pause?.release();
    },
  };
}

Deno.test({
  ...TEST,
  name:
    "rotate: SIGTERM while the settings load (before any lock): exit 75 with one line and the result line, not a signal death",
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const { home, id } = await provisionedBoard(emulator);
      const before = emulator.counters.connect.requests;
      const run = watchFleetprov([...rotateArgs(emulator), "--output", "json"], {
        home,
        env: { FLEETPROV_PAUSE_AT: "loading-settings" },
      });
      await run.until(/paused at loading-settings/);
      run.child.kill("SIGTERM");
      const ended = await run.result;
      assertEquals([ended.code, ended.signal], [ExitCode.TempFail, null], ended.stderr);
      assertMatch(
        ended.stderr,
        /^fleetprov: Stopped by SIGTERM while loading the settings; nothing was started, and the next start begins again \(exit 75\)\.$/m,
      );
      const line = resultOf(ended.stdout);
      assertEquals([line.outcome, line.exitCode, line.error?.cause], ["failed", 75, "stopped"]);
      assertEquals(emulator.counters.connect.requests, before, "nothing was started");
      assert(!existsSync(join(home, "lock", ROTATION_LOCK)), "no lock was taken");
      assertEquals(activeCertificateId(home), id);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "rotate: SIGTERM mid-rotation (the proof's CONNECT held): exit 75 within a second naming the rotation's step, the lock released, the old identity active; the next rotate proves that certificate only",
  async fn() {
    const emulator = await rotationEmulator();
    let proof: ReturnType<typeof holdProof> | undefined;
    try {
      const { home, id } = await provisionedBoard(emulator);
      proof = holdProof(emulator);
      const { child, result } = spawnFleetprov(
        rotateArgs(emulator, {
          extra: ["--force", "--output", "json", "--step-timeout", "15", "--deadline", "30"],
        }),
        { home },
      );
      await Promise.race([proof.held, result]);
      assertEquals(rotationJournal(home)?.step, "registered");
      const sent = performance.now();
      child.kill("SIGTERM");
      const ended = await result;
      const took = performance.now() - sent;
      assertEquals([ended.code, ended.signal], [ExitCode.TempFail, null], ended.stderr);
      assert(took < 1000, `SIGTERM took ${Math.round(took)} ms`);
      assertMatch(
        ended.stderr,
        /Stopped by SIGTERM at rotation step registered; the journal keeps the progress and the next run resumes \(exit 75\)\./,
      );
      const line = resultOf(ended.stdout);
      assertEquals([line.exitCode, line.error?.cause], [75, "stopped"]);
      assertEquals((line.rotation as { oldCertificateId: string }).oldCertificateId, id);
      assert(!existsSync(join(home, "lock", ROTATION_LOCK)), "the rotation lock was released");
      assertEquals(activeCertificateId(home), id, "the old identity stays active");
      proof.release();
      const minted = emulator.counters.CreateCertificateFromCsr.accepted;
      const again = await runFleetprov(rotateArgs(emulator), { home });
      assertEquals(again.code, ExitCode.Ok, again.stderr);
      assertMatch(again.stdout, /\(finished from step registered\)/);
      assertEquals(emulator.counters.CreateCertificateFromCsr.accepted, minted, "no new one");
      assertEquals(await assertConnects(emulator, home), assertRotated(home, id));
    } finally {
      proof?.release();
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "the boot's run: SIGTERM while it finishes a pending rotation (the proof's CONNECT held): exit 75 naming the rotation's step, both locks free, the old identity active; the next boot switches",
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const { home, id } = await provisionedBoard(emulator);
      await cutRotation(emulator, { home, point: "after-journal-registered" });
      // The boot's first connection is the pending rotation's proof: hold it.
      const pause = emulator.faults.pause("connect", "before");
      const boot = [...deviceArgs(emulator, { serial: "SN-ROT" }), "--output", "json"];
      const { child, result } = spawnFleetprov(boot, { home });
      try {
        const held = await Promise.race([pause.reached, result]);
        assert("clientId" in held, "the boot's run ended before the proof");
        child.kill("SIGTERM");
        const ended = await result;
        assertEquals([ended.code, ended.signal], [ExitCode.TempFail, null], ended.stderr);
        assertMatch(
          ended.stderr,
          /Stopped by SIGTERM at rotation step registered; the journal keeps the progress and the next run resumes \(exit 75\)\./,
        );
        assertEquals(resultOf(ended.stdout).error?.cause, "stopped");
      } finally {
        pause.release();
      }
      assert(!existsSync(join(home, "lock", ROTATION_LOCK)), "the rotation lock was released");
      assert(!existsSync(join(home, "lock", "devicecl.lock")), "no provisioning lock is held");
      assertEquals(activeCertificateId(home), id, "the old identity stays active");
      const again = await runFleetprov(deviceArgs(emulator, { serial: "SN-ROT" }), { home });
      assertEquals(again.code, ExitCode.Ok, again.stderr);
      assertEquals(await assertConnects(emulator, home), assertRotated(home, id));
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "rotate: the temporary file a kill mid-write left is swept by the next rotate, before anything else",
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const { home, id } = await provisionedBoard(emulator);
      await cutRotation(emulator, { home, point: "mid-write" });
      const temporaries = listFiles(configDirOf(home)).filter((f) => /(^|\/)\.[^/]*\.tmp$/.test(f));
      assertEquals(temporaries.length, 1, "the cut write left its temporary file");
      // Not forced: a young certificate, nothing to rotate; the leftover goes all the same.
      const next = await runFleetprov(rotateArgs(emulator), { home });
      assertEquals(next.code, ExitCode.Ok, next.stderr);
      const name = temporaries[0].split("/").at(-1)!;
      assertMatch(
        next.stdout,
        new RegExp(
          `Removed 1 temporary file\\(s\\) an interrupted write left in \\S+: ${
            name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
          }\\.`,
        ),
      );
      assertNoTempFiles(home);
      assertEquals(activeCertificateId(home), id);
    } finally {
      await emulator.close();
    }
  },
});

/** The environment that runs a child at the time in `file`, re-read at every clock read. */
function timeFile(content: string): string {
  const file = join(tempDir("fleetprov-faketime-"), "faketime");
  writeFileSync(file, `${content}\n`);
  return file;
}

Deno.test({
  ...TEST,
  name:
    "rotate judges a certificate's age only by a trusted clock: at 1970 it waits (75 at the deadline, no connection); set during the run to a year on, it rotates",
  ignore: libfaketime === undefined,
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const { home, id } = await provisionedBoard(emulator);
      const before = emulator.counters.connect.requests;
      const early = await runFleetprov(
        rotateArgs(emulator, { retry: ["--deadline", "2", "--step-timeout", "1"] }),
        { home, env: fakeTimeEnv({ file: timeFile("@1970-01-01 00:00:00") }) },
      );
      assertEquals(early.code, ExitCode.TempFail, early.stderr);
      assertMatch(
        oneLineError(early, true),
        /The system clock reads 1970-\S+, before fleetprov was built \(\S+\), so it is not set yet\. .* Gave up at the 2 s deadline/,
      );
      assert(!/days old/.test(early.stdout), "no age was judged by an untrusted clock");
      assertEquals(emulator.counters.connect.requests, before, "no connection");
      assertEquals(activeCertificateId(home), id);
      // NTP arrives during the run; the emulator issued the certificate a day back: 366 days old.
      const file = timeFile("@1970-01-01 00:00:00");
      const run = watchFleetprov(rotateArgs(emulator, { retry: ["--deadline", "60"] }), {
        home,
        env: fakeTimeEnv({ file }),
      });
      await run.until(/The system clock reads 1970-.*Waiting up to \d+ s for it\./);
      writeFileSync(file, "+365d\n");
      const result = await run.result;
      assertEquals(result.code, ExitCode.Ok, result.stderr);
      assertMatch(result.stdout, /The system clock is now plausible/);
      assertMatch(result.stdout, /is 366 days old .*: older than 365 days \(--if-older-than\)/);
      assertEquals(await assertConnects(emulator, home), assertRotated(home, id));
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "a power cut after the rotation's create answer, then rotate at 1970 (no RTC): the journaled token is judged once the clock is set, and reused (one certificate, not two)",
  ignore: libfaketime === undefined,
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const { home, id } = await provisionedBoard(emulator);
      await cutRotation(emulator, { home, point: "after-journal-created" });
      const journal = rotationJournal(home)!;
      assertEquals(journal.step, "certificate-created");
      const requests: string[] = [];
      emulator.events.on("request", (event) => requests.push(event.operation));
      const file = timeFile("@1970-01-01 00:00:00");
      // The timer's run, not forced: a pending rotation is finished whatever the age says.
      const run = watchFleetprov(rotateArgs(emulator, { retry: ["--deadline", "60"] }), {
        home,
        env: fakeTimeEnv({ file }),
      });
      await run.until(/The system clock reads 1970-.*Waiting up to \d+ s for it\./);
      assertEquals(requests, [], "nothing asked before the clock is trusted");
      writeFileSync(file, "+0\n");
      const result = await run.result;
      assertEquals(result.code, ExitCode.Ok, result.stderr);
      assertMatch(
        result.stdout,
        new RegExp(
          `Resuming the rotation of certificate ${id} at step certificate-created with certificate ${journal.certificateId}`,
        ),
      );
      assert(!/ownership token/.test(result.stdout + result.stderr), result.stderr);
      // The token was reused: no second create; one certificate minted by the rotation.
      assertEquals(requests, ["RegisterThing"]);
      assertEquals(emulator.registry.certificates().filter((c) => !c.claim).length, 2);
      assertEquals(certificateStatuses(emulator).PENDING_ACTIVATION ?? 0, 0);
      const newId = await assertConnects(emulator, home);
      assertEquals(newId, assertRotated(home, id));
      assertEquals(newId, journal.certificateId);
    } finally {
      await emulator.close();
    }
  },
});
