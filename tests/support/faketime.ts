// SPDX-License-Identifier: Apache-2.0
/**
 * libfaketime (Debian's `faketime` package) for the tests that move a child's
 * clock: one place for its path and the environment that preloads it.
 *
 * @module
 */
import { findTool } from "./fs.ts";

/** libfaketime's path, or undefined (the tests skip loudly; under FLEETPROV_REQUIRE_TOOLS=1 a failure). */
export const libfaketime: string | undefined = findTool([
  "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
  "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
], "faketime");

/**
 * The environment that runs a child at a faked time: `offset` ("+400d") or
 * `file` (a FAKETIME_TIMESTAMP_FILE such as "@1970-01-01 00:00:00", re-read
 * at every clock read so a test can set the clock during the run). Timers keep
 * the real monotonic clock. `NO_FAKE_STAT=1`: libfaketime 0.9.10 unmaps its
 * stat() semaphore in its exit handler while another thread may still be in
 * stat(), which crashed about one Deno child in three with SIGSEGV after its
 * last line (exit 139; Node's were never seen to); fleetprov reads no time a
 * test fakes from stat(), so file times stay real.
 */
export function fakeTimeEnv(at: { offset: string } | { file: string }): Record<string, string> {
  if (libfaketime === undefined) {
    throw new Error("libfaketime is missing: apt-get install faketime.");
  }
  return {
    LD_PRELOAD: libfaketime,
    ...("offset" in at
      ? { FAKETIME: at.offset }
      : { FAKETIME_TIMESTAMP_FILE: at.file, FAKETIME_NO_CACHE: "1" }),
    FAKETIME_DONT_FAKE_MONOTONIC: "1",
    NO_FAKE_STAT: "1",
  };
}
