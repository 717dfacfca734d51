// SPDX-License-Identifier: Apache-2.0
/**
 * No secret in any output: runs at DEBUG (STDOUT and FILE), then every byte
 * of stdout, stderr and the log file is searched for the private key (each
 * PEM body line), the ownership token (exactly, when known from the journal;
 * else by hashing every word against the hashes the emulator stores) and the
 * PKCS#11 PIN.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  BOARD,
  type ChildResult,
  configDirOf,
  deviceArgs,
  deviceHome,
  leakedTokens,
  modeOf,
  runFleetprov,
  runToCrashPoint,
  tempDir,
  withEmulator,
  writeWithMode,
} from "./support/mod.ts";
import { createCsr, generateKeyPair } from "../src/pki/mod.ts";

const PIN = "Zq9-PIN-48213";

/** The base64 body lines of a PEM (the parts that identify the key). */
function pemBodyLines(pem: string): string[] {
  return pem.split("\n").map((l) => l.trim()).filter((l) =>
    l.length >= 16 && !l.startsWith("-----")
  );
}

/** Asserts none of `secrets` (nor a 24-character piece of one) occurs in `text`. */
function assertAbsent(text: string, secrets: Record<string, string[]>): void {
  for (const [what, values] of Object.entries(secrets)) {
    for (const value of values) {
      assert(value.length >= 8, `${what}: a secret to look for`);
      assert(!text.includes(value), `the output contains the ${what}`);
      for (let i = 0; i + 24 <= value.length; i += 12) {
        assert(!text.includes(value.slice(i, i + 24)), `the output contains part of the ${what}`);
      }
    }
  }
  assert(!/PRIVATE KEY-----/.test(text), "the output contains a PEM private key");
}

function everything(result: ChildResult, logFile?: string): string {
  return result.stdout + result.stderr + (logFile ? readFileSync(logFile, "utf8") : "");
}

Deno.test("DEBUG to STDOUT and to FILE: no private key, ownership token or PIN in any byte", () =>
  withEmulator(BOARD, async (emulator) => {
    // 1. A run killed after journaling: the journal gives us the exact token and key.
    const home = deviceHome();
    const crashed = await runToCrashPoint(
      deviceArgs(emulator, {
        serial: "SN-SECRET",
        extra: ["--log-level", "DEBUG", "--secure-element-pin", PIN],
      }),
      { home, point: "after-journal-created" },
    );
    assertEquals(crashed.signal, "SIGKILL");
    const journal = JSON.parse(
      readFileSync(join(configDirOf(home), "fleetprov-journal.json"), "utf8"),
    );
    const token: string = journal.ownershipToken;
    const key: string = journal.privateKeyPem;
    const secrets = { "ownership token": [token], "private key": pemBodyLines(key), PIN: [PIN] };
    assertAbsent(everything(crashed), secrets);

    // 2. The resumed run, which sends that token, logs at DEBUG to a file.
    const logFile = join(home, "fleetprov.log");
    const resumed = await runFleetprov(
      deviceArgs(emulator, {
        serial: "SN-SECRET",
        extra: [
          "--log-level",
          "DEBUG",
          "--log-type",
          "FILE",
          "--log-file",
          logFile,
          "--secure-element-pin",
          PIN,
        ],
      }),
      { home },
    );
    assertEquals(resumed.code, 0, resumed.stderr);
    assertEquals(modeOf(logFile), "600");
    const logged = readFileSync(logFile, "utf8");
    assertMatch(logged, /Resuming provisioning at step certificate-created/);
    assertMatch(logged, /Registered thing board-SN-SECRET/);
    assertEquals(
      readFileSync(join(configDirOf(home), "keys", "active-private.pem.key"), "utf8"),
      key,
      "the journaled key is the one in use",
    );
    assertAbsent(everything(resumed, logFile), secrets);

    // 3. A fresh device at DEBUG on STDOUT; its token is found by hash.
    const other = deviceHome();
    const fresh = await runFleetprov(
      deviceArgs(emulator, {
        serial: "SN-SECRET-2",
        extra: ["--log-level", "DEBUG", "--secure-element-pin", PIN],
      }),
      { home: other },
    );
    assertEquals(fresh.code, 0, fresh.stderr);
    assertMatch(fresh.stdout, /\[INFO\] Provisioned thing board-SN-SECRET-2/);
    const otherKey = readFileSync(
      join(configDirOf(other), "keys", "active-private.pem.key"),
      "utf8",
    );
    assertAbsent(everything(fresh), { "private key": pemBodyLines(otherKey), PIN: [PIN] });

    await emulator.close(); // writes registry.json with the token hashes
    const all = everything(crashed) + everything(resumed, logFile) + everything(fresh);
    assertEquals(leakedTokens(all, emulator), []);
    // The hash check can find a token: the journal's token is one the emulator recorded.
    assertEquals(leakedTokens(`x ${token} y`, emulator), [token]);
  }));

Deno.test("the PIN stays out of check output and of errors", () =>
  withEmulator(BOARD, async (emulator) => {
    const home = deviceHome();
    // check shows the settings: the PIN is redacted.
    const checked = await runFleetprov(
      [
        "check",
        ...deviceArgs(emulator, { serial: "SN-PIN", extra: ["--secure-element-pin", PIN] }),
      ],
      { home },
    );
    assertEquals(checked.code, 0, checked.stderr);
    assert(!everything(checked).includes(PIN), "check prints the PIN");

    // With the secure element on (a library file and a CSR in place), check shows "PIN <redacted>".
    const dir = join(tempDir("fleetprov-se-"), "se");
    mkdirSync(dir, { mode: 0o700 });
    writeWithMode(join(dir, "libfake-pkcs11.so"), "not really a library\n", 0o640);
    const { keys } = await generateKeyPair("ec-p256");
    writeWithMode(join(dir, "device.csr"), await createCsr("board", keys), 0o600);
    const enabled = await runFleetprov(
      [
        "check",
        ...deviceArgs(emulator, {
          serial: "SN-PIN",
          extra: [
            "--enable-secure-element",
            "true",
            "--pkcs11-lib",
            join(dir, "libfake-pkcs11.so"),
            "--csr-file",
            join(dir, "device.csr"),
            "--secure-element-key-label",
            "devkey",
            "--secure-element-pin",
            PIN,
          ],
        }),
      ],
      { home },
    );
    assertMatch(enabled.stdout, /PIN <redacted>/, enabled.stdout + enabled.stderr);
    assert(!everything(enabled).includes(PIN), "check prints the PIN");

    // A secure element run that cannot start (no PKCS#11 library, no CSR): errors only.
    const failed = await runFleetprov(
      deviceArgs(emulator, {
        serial: "SN-PIN",
        extra: ["--enable-secure-element", "true", "--secure-element-pin", PIN],
      }),
      { home },
    );
    assertEquals(failed.code, 2, failed.stderr);
    assertMatch(failed.stderr, /^fleetprov: The PKCS#11 library is missing/m);
    assert(!everything(failed).includes(PIN), "an error prints the PIN");

    // The same through check.
    const checkedFailing = await runFleetprov(
      [
        "check",
        ...deviceArgs(emulator, {
          serial: "SN-PIN",
          extra: ["--enable-secure-element", "true", "--secure-element-pin", PIN],
        }),
      ],
      { home },
    );
    assertEquals(checkedFailing.code, 2);
    assert(!everything(checkedFailing).includes(PIN), "check with errors prints the PIN");
  }));
