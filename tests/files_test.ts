// SPDX-License-Identifier: Apache-2.0
/** Atomic writes with strict modes, the journal and the lock. */
import { assert, assertEquals, assertMatch, assertThrows } from "./support/assert.ts";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { ensureDirectory, sweepTemporaries, writeFileAtomic } from "../src/secure_files/mod.ts";
import { acquireLock } from "../src/lock/mod.ts";
import { ExitCode, FleetprovError } from "../src/errors.ts";
import {
  clearJournal,
  readJournal,
  TOKEN_REUSE_WINDOW_MS,
  tokenStillValid,
  writeJournal,
} from "../src/provisioning/journal.ts";
import { modeOf, tempDir } from "./support/mod.ts";

Deno.test("writeFileAtomic creates the file with its mode and leaves no temporary file", () => {
  const dir = tempDir();
  const path = join(dir, "key.pem");
  const oldMask = Deno.umask(0o077);
  try {
    writeFileAtomic(path, "secret", { mode: 0o644 });
  } finally {
    Deno.umask(oldMask);
  }
  assertEquals(modeOf(path), "644");
  writeFileAtomic(path, "secret2", { mode: 0o600 });
  assertEquals(modeOf(path), "600");
  assertEquals(readFileSync(path, "utf8"), "secret2");
  assertEquals(readdirSync(dir), ["key.pem"]);
});

Deno.test("writeFileAtomic never follows a symlink to overwrite another file", () => {
  const dir = tempDir();
  const victim = join(dir, "victim");
  writeFileSync(victim, "keep");
  symlinkSync(victim, join(dir, "link"));
  assertThrows(() => writeFileAtomic(join(dir, "link"), "evil", { mode: 0o600 }), /symbolic link/);
  assertEquals(readFileSync(victim, "utf8"), "keep");
});

Deno.test("ensureDirectory creates and tightens a directory; refuses a file", () => {
  const dir = join(tempDir(), "a", "keys");
  ensureDirectory(dir, 0o700);
  assertEquals(modeOf(dir), "700");
  const file = join(tempDir(), "f");
  writeFileSync(file, "");
  assertThrows(() => ensureDirectory(file, 0o700), /not a directory/);
});

Deno.test("journal: written 0600, read back, expiry window, damaged file ignored", () => {
  const dir = tempDir();
  const entry = {
    step: "certificate-created" as const,
    endpoint: "localhost",
    templateName: "T",
    certificateId: "a".repeat(64),
    certificatePem: "pem",
    keySource: "service" as const,
    privateKeyPem: "key",
    ownershipToken: "token",
    issuedAt: 1_000_000,
  };
  writeJournal(dir, entry);
  assertEquals(modeOf(join(dir, "fleetprov-journal.json")), "600");
  assertEquals(readJournal(dir), entry);
  assert(tokenStillValid(entry, entry.issuedAt + TOKEN_REUSE_WINDOW_MS - 1));
  assert(!tokenStillValid(entry, entry.issuedAt + TOKEN_REUSE_WINDOW_MS));
  writeFileSync(join(dir, "fleetprov-journal.json"), '{"step":"registered", "cert');
  assertEquals(readJournal(dir), undefined);
  clearJournal(dir);
  assert(!existsSync(join(dir, "fleetprov-journal.json")));
});

Deno.test("lock: a live holder refuses a second instance with exit code 75; a stale lock is taken over", async () => {
  const dir = tempDir();
  const path = join(dir, "devicecl.lock");
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    writeFileSync(path, `${child.pid}\n`);
    const error = assertThrows(() => acquireLock(path), FleetprovError);
    assertEquals(error.exitCode, ExitCode.TempFail);
    assertMatch(error.message, new RegExp(`PID ${child.pid}`));
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
  const lock = acquireLock(path);
  assertEquals(readFileSync(path, "utf8").trim(), String(Deno.pid));
  lock.release();
  assert(!existsSync(path));
});

Deno.test("sweepTemporaries removes only writeFileAtomic's temporary files of dead processes", async () => {
  const dir = tempDir();
  // A process that has exited: its PID is free.
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  const live = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const stale = `.fleetprov-journal.json.${gone.pid}-lz1k2m3-1.tmp`;
    const keep = [
      `.aws-iot-device-client-runtime.conf.${live.pid}-lz1k2m3-1.tmp`, // a live writer's
      `.key.pem.${Deno.pid}-lz1k2m3-7.tmp`, // this process's own
      ".notes.tmp", // not our naming
      "backup.tmp",
      `.x.${gone.pid}-lz1k2m3-1.tmp.orig`,
      "aws-iot-device-client-runtime.conf",
    ];
    for (const name of [stale, ...keep]) writeFileSync(join(dir, name), "x");
    // A link or a directory under our naming is not ours to remove.
    const victim = join(tempDir(), "victim");
    writeFileSync(victim, "keep");
    symlinkSync(victim, join(dir, `.link.${gone.pid}-lz1k2m3-2.tmp`));
    mkdirSync(join(dir, `.dir.${gone.pid}-lz1k2m3-3.tmp`));
    assertEquals(sweepTemporaries(dir), [stale]);
    assertEquals(
      readdirSync(dir).sort(),
      [...keep, `.dir.${gone.pid}-lz1k2m3-3.tmp`, `.link.${gone.pid}-lz1k2m3-2.tmp`].sort(),
    );
    assertEquals(readFileSync(victim, "utf8"), "keep");
    assertEquals(sweepTemporaries(join(dir, "absent")), []);
    // A directory reached through a link is not swept.
    writeFileSync(join(dir, stale), "x");
    const link = join(tempDir(), "keys");
    symlinkSync(dir, link);
    assertEquals(sweepTemporaries(link), []);
    assert(existsSync(join(dir, stale)));
  } finally {
    live.kill("SIGKILL");
    await live.status;
  }
});
