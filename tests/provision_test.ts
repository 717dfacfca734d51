// SPDX-License-Identifier: Apache-2.0
/**
 * End-to-end provisioning through the real CLI against the real emulator over
 * mutual TLS.
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "./support/assert.ts";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { createCsr, generateKeyPair } from "../src/pki/mod.ts";
import type { Emulator } from "../src/emulator/mod.ts";
import {
  BOARD,
  deviceArgs,
  deviceHome,
  leakedTokens,
  modeOf,
  runFleetprov,
  type RunResult,
  runtimeConfigOf,
  tempDir,
  withEmulator,
  writeWithMode,
} from "./support/mod.ts";

/** Provisioning arguments with the given serial and no retry settings of the test's own. */
function provisionArgs(emulator: Emulator, serial: string, extra: string[] = []): string[] {
  return deviceArgs(emulator, { serial, extra, retry: [] });
}

function assertNoSecrets(result: RunResult, secrets: string[]): void {
  const all = result.stdout + result.stderr;
  assert(!all.includes("PRIVATE KEY"), "output mentions a PEM private key");
  for (const secret of secrets) assert(!all.includes(secret.trim()), "output contains a secret");
}

Deno.test("keys path: provisions, writes DC's files with strict modes, then skips", () =>
  withEmulator(BOARD, async (emulator) => {
    const home = deviceHome();
    const first = await runFleetprov(provisionArgs(emulator, "SN-0001"), { home });
    assertEquals(first.code, 0, first.stderr);

    const rc = runtimeConfigOf(home);
    const configDir = join(home, ".aws-iot-device-client");
    const keysDir = join(configDir, "keys");
    assertEquals(rc["completed-fp"], true);
    assertEquals(rc["thing-name"], "board-SN-0001");
    assertEquals(rc.cert, join(keysDir, "active-certificate.pem.crt"));
    assertEquals(rc.key, join(keysDir, "active-private.pem.key"));
    assertEquals(rc["device-config"], {
      Foo: "Bar",
      Site: "factory-1",
      Tricky: 'quote " backslash \\ é',
    });

    const thing = emulator.registry.thing("board-SN-0001");
    assert(thing, "thing registered");
    assertEquals(thing.attributes, { serial: "SN-0001", location: "factory-1" });
    assertEquals(thing.principals.length, 1);
    const certificateId = thing.principals[0];
    const cert = emulator.registry.certificate(certificateId);
    assertEquals(cert?.status, "ACTIVE");
    assertEquals(emulator.registry.policiesOf(certificateId), ["FPCertPolicy"]);

    assertEquals(modeOf(keysDir), "700");
    assertEquals(modeOf(join(keysDir, `${certificateId}-certificate.pem.crt`)), "644");
    assertEquals(modeOf(join(keysDir, `${certificateId}-private.pem.key`)), "600");
    assertEquals(modeOf(join(keysDir, "active-certificate.pem.crt")), "644");
    assertEquals(modeOf(join(keysDir, "active-private.pem.key")), "600");
    assertEquals(modeOf(join(configDir, "aws-iot-device-client-runtime.conf")), "640");
    assert(!existsSync(join(configDir, "fleetprov-journal.json")), "journal removed after commit");
    assertEquals(
      readFileSync(join(keysDir, "active-certificate.pem.crt"), "utf8").trim(),
      cert!.certificatePem.trim(),
    );

    const key = readFileSync(join(keysDir, "active-private.pem.key"), "utf8");
    assertNoSecrets(first, [key]);
    assertMatch(first.stdout, /Connected with the new certificate as board-SN-0001/);

    const second = await runFleetprov(provisionArgs(emulator, "SN-0001"), { home });
    assertEquals(second.code, 0, second.stderr);
    assertMatch(second.stdout, /Already provisioned as thing board-SN-0001/);
    assertEquals(emulator.registry.things().length, 1);
    assertEquals(emulator.registry.certificates().filter((c) => !c.claim).length, 1);
    await emulator.close(); // writes registry.json, where the token hashes are
    assertEquals(leakedTokens(first.stdout + first.stderr, emulator), []);
  }));

Deno.test("CSR path: the key never leaves the board and stays where it is", () =>
  withEmulator(BOARD, async (emulator) => {
    const home = deviceHome();
    const secrets = join(tempDir("fleetprov-keys-"), "secrets");
    Deno.mkdirSync(secrets, { mode: 0o700 });
    const { keys, privateKeyPem } = await generateKeyPair("ec-p256");
    const csrPath = join(secrets, "device.csr");
    const keyPath = join(secrets, "device.key");
    writeWithMode(csrPath, await createCsr("board-csr", keys), 0o600);
    writeWithMode(keyPath, privateKeyPem, 0o600);

    const result = await runFleetprov(
      provisionArgs(emulator, "SN-CSR", ["--csr-file", csrPath, "--device-key", keyPath]),
      { home },
    );
    assertEquals(result.code, 0, result.stderr);
    const rc = runtimeConfigOf(home);
    assertEquals(rc.key, keyPath);
    assertEquals(rc["thing-name"], "board-SN-CSR");
    const keysDir = join(home, ".aws-iot-device-client", "keys");
    assert(
      !existsSync(join(keysDir, "active-private.pem.key")),
      "no private key written for the CSR path",
    );
    assertEquals(readFileSync(keyPath, "utf8"), privateKeyPem);
    assertMatch(result.stdout, /CreateCertificateFromCsr/);
    assertNoSecrets(result, [privateKeyPem]);
  }));

Deno.test("a CSR without a device key falls back to CreateKeysAndCertificate, as DC does", () =>
  withEmulator(BOARD, async (emulator) => {
    const home = deviceHome();
    const secrets = join(tempDir("fleetprov-keys-"), "secrets");
    Deno.mkdirSync(secrets, { mode: 0o700 });
    const { keys } = await generateKeyPair("ec-p256");
    const csrPath = join(secrets, "device.csr");
    writeWithMode(csrPath, await createCsr("board", keys), 0o600);
    const result = await runFleetprov(
      provisionArgs(emulator, "SN-FALLBACK", ["--csr-file", csrPath]),
      { home },
    );
    assertEquals(result.code, 0, result.stderr);
    assertMatch(result.stdout + result.stderr, /without fleet-provisioning.device-key/);
    assertEquals(
      runtimeConfigOf(home).key,
      join(home, ".aws-iot-device-client", "keys", "active-private.pem.key"),
    );
  }));

Deno.test("a missing template parameter is a rejection: exit 1 and one line with the reason", () =>
  withEmulator(BOARD, async (emulator) => {
    const home = deviceHome();
    const result = await runFleetprov(["--config-file", emulator.configPath], { home });
    assertEquals(result.code, 1, result.stderr);
    const lines = result.stderr.trim().split("\n").filter((line) => line.startsWith("fleetprov:"));
    assertEquals(lines.length, 1, result.stderr);
    assertMatch(
      lines[0],
      /RegisterThing was rejected: statusCode=400 errorCode=\S+ errorMessage=".*SerialNumber.*"/,
    );
    assertMatch(lines[0], /Hint:/);
    assert(!existsSync(join(home, ".aws-iot-device-client", "aws-iot-device-client-runtime.conf")));
    assertEquals(emulator.registry.things().length, 0);
  }));

Deno.test("completed-fp false re-provisions with a new certificate", () =>
  withEmulator(BOARD, async (emulator) => {
    const home = deviceHome();
    assertEquals((await runFleetprov(provisionArgs(emulator, "SN-RE"), { home })).code, 0);
    const path = join(home, ".aws-iot-device-client", "aws-iot-device-client-runtime.conf");
    const before = JSON.parse(readFileSync(path, "utf8"));
    before["runtime-config"]["completed-fp"] = false;
    writeFileSync(path, JSON.stringify(before));

    const again = await runFleetprov(provisionArgs(emulator, "SN-RE"), { home });
    assertEquals(again.code, 0, again.stderr);
    assertMatch(again.stdout, /Provisioning: .*completed-fp/);
    const after = runtimeConfigOf(home);
    assertEquals(after["completed-fp"], true);
    const principals = emulator.registry.thing("board-SN-RE")!.principals;
    assertEquals(principals.length, 2, "the thing now has the second certificate too");
  }));

Deno.test("two devices provisioning at the same time each get their own certificate", () =>
  withEmulator(BOARD, async (emulator) => {
    const homes = [deviceHome(), deviceHome()];
    const results = await Promise.all(
      homes.map((home, i) => runFleetprov(provisionArgs(emulator, `SN-PAR-${i}`), { home })),
    );
    for (const result of results) assertEquals(result.code, 0, result.stderr);
    const configs = homes.map(runtimeConfigOf);
    assertEquals(configs.map((c) => c["thing-name"]), ["board-SN-PAR-0", "board-SN-PAR-1"]);
    const certs = homes.map((home) =>
      readFileSync(
        join(home, ".aws-iot-device-client", "keys", "active-certificate.pem.crt"),
        "utf8",
      )
    );
    assertNotEquals(certs[0], certs[1]);
    for (const [i, home] of homes.entries()) {
      const principal = emulator.registry.thing(`board-SN-PAR-${i}`)!.principals[0];
      assertEquals(
        emulator.registry.certificate(principal)!.certificatePem.trim(),
        certs[i].trim(),
      );
      assert(
        existsSync(join(home, ".aws-iot-device-client", "keys", `${principal}-private.pem.key`)),
      );
    }
  }));

Deno.test("the sample template of the Device Client docs provisions with its defaults", () =>
  withEmulator({}, async (emulator) => {
    const home = deviceHome();
    const result = await runFleetprov(["--config-file", emulator.configPath], { home });
    assertEquals(result.code, 0, result.stderr);
    const rc = runtimeConfigOf(home);
    assertMatch(String(rc["thing-name"]), /^FPTemplateName-[0-9a-f]{64}$/);
  }));

Deno.test("on-device key: fleetprov generates the key and CSR; only the CSR crosses the network", () =>
  withEmulator(BOARD, async (emulator) => {
    for (const algorithm of ["ec-p256", "ec-p384", "rsa-2048"]) {
      const home = deviceHome();
      const operations: string[] = [];
      const off = emulator.events.on("request", (event) => operations.push(event.operation));
      const result = await runFleetprov(
        provisionArgs(emulator, `SN-GEN-${algorithm}`, [
          "--generate-key",
          algorithm,
          "--client-id",
          `dev-${algorithm}`,
        ]),
        { home },
      );
      off();
      assertEquals(result.code, 0, result.stderr);
      assertEquals(operations, ["CreateCertificateFromCsr", "RegisterThing"]);
      const keysDir = join(home, ".aws-iot-device-client", "keys");
      const rc = runtimeConfigOf(home);
      assertEquals(rc.key, join(keysDir, "active-private.pem.key"));
      assertEquals(modeOf(rc.key as string), "600");
      const key = createPrivateKey(readFileSync(rc.key as string, "utf8"));
      const cert = new X509Certificate(readFileSync(rc.cert as string, "utf8"));
      assert(
        cert.checkPrivateKey(key),
        `${algorithm}: the certificate belongs to the generated key`,
      );
      assertEquals(key.asymmetricKeyType, algorithm === "rsa-2048" ? "rsa" : "ec");
      assertMatch(cert.subject, new RegExp(`CN=dev-${algorithm}`));
      assertNoSecrets(result, [readFileSync(rc.key as string, "utf8")]);
    }
  }));
