// SPDX-License-Identifier: Apache-2.0
/**
 * The board images' cache (tests/support/board/image.ts) does not grow
 * without end: an entry of another key that no run has used for an hour,
 * and a partial build whose process is gone, are removed; the entry in use,
 * recently used ones, other architectures and live partial builds stay.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { IDLE_ENTRY_MS, pruneEntries } from "./support/board/image.ts";
import { assertEquals } from "./support/assert.ts";
import { tempDir } from "./support/mod.ts";

Deno.test("board cache: unused entries of another key and dead partial builds are pruned, nothing else", () => {
  assertEquals(IDLE_ENTRY_MS, 3_600_000, "the module says an hour");
  const root = tempDir("fleetprov-board-cache-");
  const now = Date.now();
  const entry = (name: string, usedMsAgo: number | undefined) => {
    Deno.mkdirSync(join(root, name));
    Deno.writeTextFileSync(join(root, name, "disk.qcow2"), "x");
    if (usedMsAgo === undefined) return;
    const lock = join(root, `${name}.lock`);
    Deno.writeTextFileSync(lock, "");
    const at = new Date(now - usedMsAgo);
    Deno.utimeSync(lock, at, at);
  };
  entry("arm64-bookworm-current", 5 * IDLE_ENTRY_MS);
  entry("arm64-bookworm-old", IDLE_ENTRY_MS + 1000);
  entry("arm64-bookworm-in-use", IDLE_ENTRY_MS - 60_000);
  entry("armhf-bookworm-other-arch", 5 * IDLE_ENTRY_MS);
  // An entry without a lock file (an older layout) goes by its directory's time.
  entry("arm64-bookworm-no-lock", undefined);
  const old = new Date(now - 2 * IDLE_ENTRY_MS);
  Deno.utimeSync(join(root, "arm64-bookworm-no-lock"), old, old);
  entry(`arm64-bookworm-current.partial-${Deno.pid}`, undefined);
  entry("arm64-bookworm-current.partial-999999999", undefined);

  const removed = pruneEntries(root, { arch: "arm64", keep: "arm64-bookworm-current", now });
  assertEquals(removed.sort(), [
    "arm64-bookworm-current.partial-999999999",
    "arm64-bookworm-no-lock",
    "arm64-bookworm-old",
  ]);
  assertEquals([...Deno.readDirSync(root)].map((e) => e.name).sort(), [
    "arm64-bookworm-current",
    `arm64-bookworm-current.lock`,
    `arm64-bookworm-current.partial-${Deno.pid}`,
    "arm64-bookworm-in-use",
    "arm64-bookworm-in-use.lock",
    "armhf-bookworm-other-arch",
    "armhf-bookworm-other-arch.lock",
  ]);
  assertEquals(existsSync(join(root, "arm64-bookworm-old.lock")), false);
});
