// SPDX-License-Identifier: Apache-2.0
/**
 * The board's storage, with real tmpfs mounts (CI runs as root): a disk that
 * fills after RegisterThing (exit 75, one line naming the path, the journal
 * intact; freed, the next run resumes without a new certificate) and a
 * read-only home (exit 73 before any request, with how to move the state;
 * made writable, the next run provisions), on the Deno source and the x64
 * binary.
 *
 * @module
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { build } from "../build/mod.ts";
import { ExitCode } from "../src/errors.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  assertProvisioned,
  boardEmulator,
  canMount,
  configDirOf,
  deviceArgs,
  fillDisk,
  mountTmpfs,
  oneLineError,
  runFleetprov,
  tempDir,
} from "./support/mod.ts";

const mayMount = canMount();

/** A device home on a fresh tmpfs, its lock dir outside (as /run/lock is on a board). */
function homeOn(path: string): { home: string; env: Record<string, string> } {
  const home = join(path, "home");
  mkdirSync(home, { mode: 0o700 });
  return { home, env: { LOCK_FILE_PATH: tempDir("fleetprov-lock-") } };
}

Deno.test({
  name:
    "disk full after RegisterThing: exit 75 naming the path, journal intact; freed, the rerun resumes with the same certificate",
  ignore: !mayMount,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const disk = mountTmpfs(1024);
    let filler: string | undefined;
    const emulator = await boardEmulator({
      // In the emulator's process, before the answer leaves: the disk fills up.
      log: (line) => {
        if (/^RegisterThing request/.test(line) && filler === undefined) {
          filler = fillDisk(disk.path);
        }
      },
    });
    try {
      const { home, env } = homeOn(disk.path);
      const args = deviceArgs(emulator, { serial: "SN-FULL" });
      const full = await runFleetprov(args, { home, env });
      assertEquals(full.code, ExitCode.TempFail, full.stderr);
      const line = oneLineError(full, true);
      const journal = join(configDirOf(home), "fleetprov-journal.json");
      assertMatch(
        line,
        new RegExp(
          `Cannot write ${journal}: no space left on the device \\(ENOSPC\\); free space there; .*The journal keeps step certificate-created with certificate [0-9a-f]{64}; the next run resumes there without a new certificate\\.`,
        ),
      );
      const kept = JSON.parse(readFileSync(journal, "utf8"));
      assertEquals(kept.step, "certificate-created");

      rmSync(filler!);
      const rerun = await runFleetprov(args, { home, env });
      assertEquals(rerun.code, ExitCode.Ok, rerun.stderr);
      assertMatch(rerun.stdout, /Resuming provisioning at step certificate-created/);
      assertEquals(emulator.counters.CreateKeysAndCertificate.requests, 1);
      const { certificatePem } = assertProvisioned(home);
      assertEquals(certificatePem, kept.certificatePem);
    } finally {
      await emulator.close();
      disk.unmount();
    }
  },
});

for (const runner of ["Deno source", "x64 binary"]) {
  Deno.test({
    name:
      `read-only home (${runner}): exit 73 before any request, saying how to move the state; writable, the rerun provisions`,
    ignore: !mayMount,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const bin = runner === "x64 binary"
        ? (await build({ targets: ["x64"], log: () => {} })).targets[0].path
        : undefined;
      const disk = mountTmpfs(1024);
      const emulator = await boardEmulator();
      try {
        const { home, env } = homeOn(disk.path);
        disk.setReadOnly(true);
        const args = deviceArgs(emulator, { serial: "SN-RO" });
        const result = await runFleetprov(args, { home, env, bin });
        assertEquals(result.code, ExitCode.CantCreate, result.stderr);
        assertMatch(
          oneLineError(result, true),
          new RegExp(
            `Cannot write ${
              configDirOf(home)
            }: the file system is read-only \\(EROFS\\); .*point HOME to a writable persistent partition \\(systemd: Environment=HOME=/var/lib/fleetprov`,
          ),
        );
        assertEquals(emulator.counters.connect.requests, 0, "no request with nowhere to write");

        disk.setReadOnly(false);
        const healed = await runFleetprov(args, { home, env, bin });
        assertEquals(healed.code, ExitCode.Ok, healed.stderr);
        assertProvisioned(home);
        assert(emulator.registry.thing("board-SN-RO"));
      } finally {
        await emulator.close();
        disk.unmount();
      }
    },
  });
}
