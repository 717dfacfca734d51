// SPDX-License-Identifier: Apache-2.0
/**
 * The pieces of the field-conditions work on their own: the sanitiser, the
 * framing guard, the clock's validity window and the OS-condition mapping.
 *
 * @module
 */
import { ExitCode, osFailure } from "../src/errors.ts";
import { FrameGuard, FramingError, MAX_INCOMING_PACKET_BYTES } from "../src/mqtt/framing.ts";
import { clockProblem, validityWindow } from "../src/provisioning/clock.ts";
import { untrusted, UNTRUSTED_MAX_CHARS } from "../src/text.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "./support/assert.ts";
import { selfSignedCertificate } from "./support/mod.ts";

Deno.test("untrusted: every control, separator and bidi character escaped visibly", () => {
  assertEquals(untrusted("a\x1b[2Jb\r\nc\td\x00\x7f"), "a\\x1b[2Jb\\r\\nc\\td\\x00\\x7f");
  assertEquals(untrusted("\u0085\u009b"), "\\x85\\x9b");
  assertEquals(
    untrusted("\u2028\u2029\u202a\u202e\u2066\u2069\u200e\u200f\u061c\ufeff"),
    "\\u{2028}\\u{2029}\\u{202a}\\u{202e}\\u{2066}\\u{2069}\\u{200e}\\u{200f}\\u{061c}\\u{feff}",
  );
  // A backslash is doubled, so an escape in the output is always ours.
  assertEquals(untrusted("C:\\x1b"), "C:\\\\x1b");
  assertEquals(untrusted("lone \ud800 surrogate"), "lone \\u{d800} surrogate");
  assertEquals(untrusted("é 😀 ok"), "é 😀 ok");
  assertEquals(untrusted({ a: 1 }), '{"a":1}');
});

Deno.test("untrusted: capped with a marker saying how much was cut, never inside a pair", () => {
  const long = "A".repeat(60_000);
  const shown = untrusted(long);
  assertEquals(
    shown,
    `${"A".repeat(UNTRUSTED_MAX_CHARS)}…[${60_000 - UNTRUSTED_MAX_CHARS} more characters]`,
  );
  assertEquals(untrusted("😀😀😀", { maxChars: 2 }), "😀😀…[1 more characters]");
  assertEquals(untrusted("short"), "short");
});

function header(type: number, length: number): Uint8Array {
  const bytes = [type << 4];
  for (let rest = length;;) {
    const digit = rest % 128;
    rest = Math.floor(rest / 128);
    bytes.push(rest > 0 ? digit | 0x80 : digit);
    if (rest === 0) break;
  }
  return new Uint8Array(bytes);
}

Deno.test("frame guard: follows packets split anywhere, counts PUBLISH, knows a cut packet", () => {
  const guard = new FrameGuard();
  const stream = new Uint8Array([
    ...header(2, 2),
    0,
    0, // CONNACK
    ...header(9, 3),
    0,
    1,
    1, // SUBACK
    ...header(3, 200),
    ...new Uint8Array(200), // PUBLISH
    ...header(3, 20_000),
    ...new Uint8Array(20_000), // PUBLISH with a 3-byte length
  ]);
  for (let i = 0; i < stream.length; i += 7) guard.inspect(stream.subarray(i, i + 7));
  assertEquals([guard.publishes, guard.publishesStarted, guard.midPacket], [2, 2, false]);
  guard.inspect(new Uint8Array([...header(3, 100), 1, 2]));
  assertEquals([guard.publishes, guard.publishesStarted, guard.midPacket], [2, 3, true]);
});

Deno.test("frame guard: refuses a packet over 128 KiB at its header, and a 5-byte length", () => {
  new FrameGuard().inspect(header(3, MAX_INCOMING_PACKET_BYTES));
  const error = assertThrows(
    () => new FrameGuard().inspect(header(3, 250_000_000).subarray(0, 5)),
    FramingError,
  );
  assertMatch(error.message, /PUBLISH packet of 250000000 bytes, more than the 131072 bytes/);
  assertThrows(
    () => new FrameGuard().inspect(new Uint8Array([0x30, 0xff, 0xff, 0xff, 0xff])),
    FramingError,
    /more than 4 bytes/,
  );
});

Deno.test("clock: the window is the claim certificate's within the CA bundle's", async () => {
  const claim = (await selfSignedCertificate("claim")).certificate;
  const ca = (await selfSignedCertificate("ca", { ca: true })).certificate;
  const window = validityWindow(claim.toString("pem"), `${ca.toString("pem")}\n`);
  assert(window);
  assertEquals(window.from, "the claim certificate and the root CA");
  assertEquals(clockProblem(window, new Date()), undefined);
  assertMatch(
    clockProblem(window, new Date(0))!,
    /^The system clock reads 1970-01-01T00:00:00Z, before the validity .* NTP .* RTC/,
  );
  assertMatch(clockProblem(window, new Date("2090-01-01"))!, /reads 2090-01-01T00:00:00Z, after/);
  assertEquals(validityWindow("not a certificate"), undefined);
});

Deno.test("OS conditions: path, condition and the exit code that says whether time heals it", () => {
  const cases: [string, number, RegExp][] = [
    ["ENOSPC", ExitCode.TempFail, /no space left on the device \(ENOSPC\)/],
    ["EDQUOT", ExitCode.TempFail, /disk quota is exceeded \(EDQUOT\)/],
    ["EROFS", ExitCode.CantCreate, /read-only \(EROFS\); .*Environment=HOME=\/var\/lib\/fleetprov/],
    ["EACCES", ExitCode.NoPermission, /permission denied \(EACCES\)/],
    ["EPERM", ExitCode.NoPermission, /not permitted \(EPERM\)/],
    ["EIO", ExitCode.IoError, /I\/O error \(EIO\)/],
  ];
  for (const [code, exit, pattern] of cases) {
    const error = Object.assign(new Error(code), { code, path: "/data/x", syscall: "open" });
    const failure = osFailure(error, { note: "Kept." });
    assertEquals(failure?.exitCode, exit, code);
    assertMatch(failure!.message, /^Cannot write \/data\/x: /);
    assertMatch(failure!.message, pattern);
    assertMatch(failure!.message, / Kept\.$/);
  }
  assertEquals(osFailure(Object.assign(new Error("x"), { code: "ENOENT" })), undefined);
  assertEquals(osFailure(new Error("plain")), undefined);
});
