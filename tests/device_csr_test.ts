// SPDX-License-Identifier: Apache-2.0
/**
 * The device's own key pairs and PKCS#10 CSRs (src/pki/csr.ts, node:crypto
 * and fleetprov's DER, no X.509 library) against an independent reader: the
 * emulator's CSR check (@peculiar/x509, which verifies the signature), for
 * every key algorithm `--generate-key` offers; and the public key read back
 * from a CSR, which must be the key pair's, and garbage refused.
 */
import { Buffer } from "node:buffer";
import { createPublicKey } from "node:crypto";
import { parseCsr } from "../src/emulator/ca.ts";
import { KEY_ALGORITHMS } from "../src/pki/algorithms.ts";
import { createDeviceCsr, csrPublicKey, generateDeviceKey } from "../src/pki/csr.ts";
import { assertEquals, assertMatch, assertRejects, assertThrows } from "./support/assert.ts";

for (const algorithm of KEY_ALGORITHMS) {
  Deno.test(`device CSR (${algorithm}): the emulator's X.509 library reads it and verifies its signature`, async () => {
    const key = await generateDeviceKey(algorithm);
    assertMatch(key.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const csrPem = createDeviceCsr("board-ü-1", key, algorithm);
    assertMatch(
      csrPem,
      /^-----BEGIN CERTIFICATE REQUEST-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE REQUEST-----\n$/,
    );
    const csr = await parseCsr(csrPem);
    assertEquals(csr.subject, "CN=board-ü-1");
    assertEquals(new Uint8Array(csr.publicKey.rawData), key.spki);
    assertEquals(
      new Uint8Array(createPublicKey(key.privateKeyPem).export({ type: "spki", format: "der" })),
      key.spki,
    );
    assertEquals(csrPublicKey(csrPem), key.spki);
  });
}

Deno.test("device CSR: another key's signature is refused by the reader; garbage is not a CSR", async () => {
  const key = await generateDeviceKey("ec-p256");
  const other = await generateDeviceKey("ec-p256");
  const forged = createDeviceCsr("board-1", { ...key, privateKey: other.privateKey }, "ec-p256");
  await assertRejects(parseCsr(forged), /signature does not match/);
  assertThrows(() => csrPublicKey("not a CSR"), /no -----BEGIN CERTIFICATE REQUEST-----/);
  const body = createDeviceCsr("board-1", key, "ec-p256").split("\n").slice(1, -2).join("");
  const der = Buffer.from(body, "base64");
  const cut = `-----BEGIN CERTIFICATE REQUEST-----\n${
    der.subarray(0, der.length - 20).toString("base64")
  }\n-----END CERTIFICATE REQUEST-----\n`;
  assertThrows(() => csrPublicKey(cut), /runs past its container/);
  assertThrows(
    () =>
      csrPublicKey(
        "-----BEGIN CERTIFICATE REQUEST-----\nAgEA\n-----END CERTIFICATE REQUEST-----\n",
      ),
    Error,
  );
});
