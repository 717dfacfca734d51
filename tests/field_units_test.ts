// SPDX-License-Identifier: Apache-2.0
/**
 * The pieces of the field-conditions work on their own: the sanitiser, the
 * framing guard, the clock's validity window and the OS-condition mapping.
 *
 * @module
 */
import { ExitCode, osFailure } from "../src/errors.ts";
import { FrameGuard, FramingError, MAX_INCOMING_PACKET_BYTES } from "../src/mqtt/framing.ts";
import { credentialWindow } from "../src/provisioning/clock.ts";
import { resumeFromJournal } from "../src/provisioning/resume.ts";
import { clockProblem, type ClockReading, credentialProblem } from "../src/clock/mod.ts";
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
  const window = credentialWindow(claim.toString("pem"), `${ca.toString("pem")}\n`);
  assert(window);
  assertEquals(window.from, "the claim certificate and the root CA");
  const at = (iso: string, synchronised = false): ClockReading => ({
    now: new Date(iso),
    built: new Date("2026-01-01T00:00:00Z"),
    synchronised,
  });
  assertEquals(clockProblem(at(new Date().toISOString()), { window }), undefined);
  // 1970: before fleetprov was built, whatever the certificates say.
  assertMatch(
    clockProblem(at("1970-01-01T00:00:00Z"), { window })!,
    /^The system clock reads 1970-01-01T00:00:00Z, before fleetprov was built \(2026-01-01T00:00:00Z\), so it is not set yet\. TLS cannot work .* NTP .* RTC/,
  );
  // After the build, outside the window, not synchronised: the clock is the suspect.
  assertMatch(
    clockProblem(at("2090-01-01T00:00:00Z"), { window })!,
    /^The system clock reads 2090-01-01T00:00:00Z, after the validity of the claim certificate and the root CA; it should read after \S+ and before \S+\. TLS cannot work/,
  );
  // Synchronised: the clock is right (the credentials are judged by the settings' checks).
  assertEquals(clockProblem(at("2090-01-01T00:00:00Z", true), { window }), undefined);
  // A journal's time is a floor too, unless NTP says the clock is right.
  const floors = [{ time: new Date("2030-01-01T00:00:00Z"), what: "this board journaled x" }];
  assertMatch(
    clockProblem(at("2027-01-01T00:00:00Z"), { floors })!,
    /reads 2027-01-01T00:00:00Z, before this board journaled x \(2030-01-01T00:00:00Z\)/,
  );
  assertEquals(clockProblem(at("2027-01-01T00:00:00Z", true), { floors }), undefined);
  assertEquals(credentialWindow("not a certificate"), undefined);
});

Deno.test("clock: credentials no clock can make valid are a configuration problem naming their dates", () => {
  const d = (iso: string) => new Date(iso);
  const clock = (now: string, synchronised = false): ClockReading => ({
    now: d(now),
    built: d("2026-12-01T00:00:00Z"),
    synchronised,
  });
  const names = { claim: "/etc/fp/claim.crt", ca: "/etc/fp/ca.pem" };
  const jan2020 = { notBefore: d("2020-01-01T00:00:00Z"), notAfter: d("2020-01-31T00:00:00Z") };
  const ca = [{ notBefore: d("2026-12-06T00:00:00Z"), notAfter: d("2046-12-06T00:00:00Z") }];
  // The case: valid only in January 2020, before fleetprov was built.
  assertEquals(
    credentialProblem({ claim: jan2020, ca }, clock("1970-01-01T00:00:00Z"), names),
    "The claim certificate /etc/fp/claim.crt expired on 2020-01-31T00:00:00Z (valid from 2020-01-01T00:00:00Z to 2020-01-31T00:00:00Z), before fleetprov was built (2026-12-01T00:00:00Z): no correct clock is inside it. Replace it with a valid one.",
  );
  // A root CA bundle all expired before the build.
  const valid = { notBefore: d("2025-01-01T00:00:00Z"), notAfter: d("2045-01-01T00:00:00Z") };
  assertMatch(
    credentialProblem({ claim: valid, ca: [jan2020] }, clock("2026-12-07T00:00:00Z"), names)!,
    /^The root CA \/etc\/fp\/ca\.pem expired on 2020-01-31T00:00:00Z/,
  );
  // Validities that never overlap.
  const later = [{ notBefore: d("2046-01-01T00:00:00Z"), notAfter: d("2066-01-01T00:00:00Z") }];
  assertMatch(
    credentialProblem({ claim: valid, ca: later }, clock("2026-12-07T00:00:00Z"), names)!,
    /are never valid at the same time, so no clock can make TLS work/,
  );
  // Expired after the build: the clock may be the wrong one, unless NTP synchronised it.
  const expired = { notBefore: d("2020-01-01T00:00:00Z"), notAfter: d("2026-12-03T00:00:00Z") };
  assertEquals(
    credentialProblem({ claim: expired }, clock("2026-12-07T00:00:00Z"), names),
    undefined,
  );
  assertMatch(
    credentialProblem({ claim: expired }, clock("2026-12-07T00:00:00Z", true), names)!,
    /^The claim certificate \/etc\/fp\/claim\.crt expired on 2026-12-03T00:00:00Z .*the clock \(2026-12-07T00:00:00Z\) is synchronised by NTP/,
  );
  // Not yet valid: only a synchronised clock can say so.
  const future = { notBefore: d("2080-01-01T00:00:00Z"), notAfter: d("2090-01-01T00:00:00Z") };
  assertEquals(
    credentialProblem({ claim: future }, clock("2026-12-07T00:00:00Z"), names),
    undefined,
  );
  assertMatch(
    credentialProblem({ claim: future }, clock("2026-12-07T00:00:00Z", true), names)!,
    /is not valid yet: valid from 2080-01-01T00:00:00Z to 2090-01-01T00:00:00Z/,
  );
  assertEquals(
    credentialProblem({ claim: valid, ca }, clock("2026-12-07T00:00:00Z", true), names),
    undefined,
  );
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

Deno.test("resume: a journaled token is reused while fresh; one issued after a synchronised clock, or stale, is not", () => {
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
  const entry = {
    step: "certificate-created" as const,
    endpoint: "e",
    templateName: "t",
    certificateId: "c".repeat(64),
    certificatePem: "pem",
    keySource: "service" as const,
    ownershipToken: "token",
    issuedAt: Date.parse("2026-12-07T10:00:00Z"),
  };
  assertEquals(resumeFromJournal(entry, entry.issuedAt + 6_000, logger), entry);
  assertEquals(resumeFromJournal(entry, entry.issuedAt + 56 * 60_000, logger), { step: "start" });
  assertMatch(warnings[0], /has an expired ownership token; starting over/);
  assertEquals(resumeFromJournal(entry, entry.issuedAt - 60_000, logger), { step: "start" });
  assertMatch(warnings[1], /issued at 2026-12-07T10:00:00\.000Z, after the clock NTP synchronised/);
  assertEquals(resumeFromJournal(undefined, entry.issuedAt, logger), { step: "start" });
});
