// SPDX-License-Identifier: Apache-2.0
/**
 * The board's clock, moved with libfaketime (Debian package `faketime`), on
 * the Deno source and on the x64 binary: at 1970 (no RTC, before NTP) and at
 * 2090 the run says what the clock reads, what it should read and what sets
 * it, waits within the deadline and exits 75 (systemd retries); a clock that
 * is set during the run (NTP arriving late) provisions without a restart.
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "../build/mod.ts";
import { ExitCode } from "../src/errors.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  assertProvisioned,
  boardEmulator,
  deviceArgs,
  deviceHome,
  findTool,
  oneLineError,
  runFleetprov,
  tempDir,
  watchFleetprov,
} from "./support/mod.ts";

const libfaketime = findTool([
  "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
  "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
], "faketime");

/** The environment that runs a child at the time in `file` ("@1970-01-01 00:00:00", "+0"). */
function fakeTime(file: string): Record<string, string> {
  return {
    LD_PRELOAD: libfaketime!,
    FAKETIME_TIMESTAMP_FILE: file,
    // Re-read the file at every clock read (so the figure below is fleetprov's own
    // latency); timers keep the real monotonic clock.
    FAKETIME_NO_CACHE: "1",
    FAKETIME_DONT_FAKE_MONOTONIC: "1",
  };
}

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
        for (
          const [at, side] of [["@1970-01-01 00:00:00", "before"], [
            "@2090-06-01 00:00:00",
            "after",
          ]]
        ) {
          const home = deviceHome();
          const result = await runFleetprov(
            deviceArgs(emulator, { retry: ["--deadline", "2", "--step-timeout", "1"] }),
            { home, bin, env: fakeTime(timeFile(at)) },
          );
          assertEquals(result.code, ExitCode.TempFail, result.stderr);
          const line = oneLineError(result, true);
          assertMatch(
            line,
            new RegExp(
              `The system clock reads ${
                at.slice(1, 5)
              }-\\d\\d-\\d\\dT[\\d:]+Z, ${side} the validity of the claim certificate and the root CA; it should read after \\d{4}-.*Z and before \\d{4}-.*Z\\. .*NTP \\(systemd-timesyncd.*RTC.* Gave up at the 2 s deadline`,
            ),
          );
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
          { home, bin, env: fakeTime(file) },
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
}
