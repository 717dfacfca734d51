// SPDX-License-Identifier: Apache-2.0
import { assert, assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { statSync } from "node:fs";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { certificateId, createCsr, generateKeyPair } from "../src/pki/mod.ts";
import { claimCredentials, connect, request, withEmulator } from "./support/mod.ts";

Deno.test("keys path: CreateKeysAndCertificate, RegisterThing, registry, reconnect as the thing", () =>
  withEmulator({}, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator));
    const created = await request(claim, "CreateKeysAndCertificate", {});
    assert(created.accepted, JSON.stringify(created.body));
    const { certificateId: id, certificatePem, privateKey, certificateOwnershipToken } = created
      .body as Record<string, string>;
    assertEquals(id, certificateId(certificatePem));
    // As AWS IoT sends it: an RSA 2048 key in PKCS#1 PEM, the certificate carrying its public key.
    assertMatch(
      privateKey,
      /^-----BEGIN RSA PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END RSA PRIVATE KEY-----\n$/,
    );
    const key = createPrivateKey(privateKey);
    assertEquals(key.asymmetricKeyType, "rsa");
    assertEquals(key.asymmetricKeyDetails?.modulusLength, 2048);
    assert(new X509Certificate(certificatePem).checkPrivateKey(key));
    assertEquals(emulator.registry.certificate(id)?.status, "PENDING_ACTIVATION");

    const registered = await request(claim, "RegisterThing", { certificateOwnershipToken });
    assert(registered.accepted, JSON.stringify(registered.body));
    assertEquals(registered.body, {
      thingName: `FPTemplateName-${id}`,
      deviceConfiguration: {},
    });
    await claim.endAsync();

    const cert = emulator.registry.certificate(id)!;
    assertEquals(cert.status, "ACTIVE");
    assertEquals(cert.thingNames, [`FPTemplateName-${id}`]);
    assertEquals(emulator.registry.policiesOf(id), ["FPCertPolicy"]);
    const thing = emulator.registry.thing(`FPTemplateName-${id}`)!;
    assertEquals(thing.principals, [id]);
    assertEquals(thing.attributes, {});

    const device = await connect(
      emulator,
      { cert: certificatePem, key: privateKey },
      thing.thingName,
    );
    await device.endAsync();
    await assertRejects(
      connect(emulator, { cert: certificatePem, key: privateKey }, "some-other-id"),
      /connection closed before CONNACK/,
    );
    assert(emulator.lines.some((l) => l.includes("may connect only with that client id")));
  }));

Deno.test("keyType ec-p256: CreateKeysAndCertificate hands out EC P-256 keys (PKCS#8), the fast path", () =>
  withEmulator({ keyType: "ec-p256", keyPoolSize: 0 }, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator));
    const created = await request(claim, "CreateKeysAndCertificate", {});
    const { certificatePem, privateKey } = created.body as Record<string, string>;
    assertMatch(privateKey, /^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(privateKey);
    assertEquals(key.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert(new X509Certificate(certificatePem).checkPrivateKey(key));
    await claim.endAsync();
  }));

Deno.test("CSR path: EC and RSA CSRs are signed with their own keys", () =>
  withEmulator({}, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator));
    for (const algorithm of ["ec-p256", "rsa-2048"] as const) {
      const pair = await generateKeyPair(algorithm);
      const csr = await createCsr("device-1", pair.keys, { algorithm });
      const created = await request(claim, "CreateCertificateFromCsr", {
        certificateSigningRequest: csr,
      });
      assert(created.accepted, JSON.stringify(created.body));
      const body = created.body as Record<string, string>;
      assertEquals(body.privateKey, undefined);
      const registered = await request(claim, "RegisterThing", {
        certificateOwnershipToken: body.certificateOwnershipToken,
      });
      assert(registered.accepted);
      const device = await connect(
        emulator,
        { cert: body.certificatePem, key: pair.privateKeyPem },
        registered.body.thingName as string,
      );
      await device.endAsync();
    }
    const bad = await request(claim, "CreateCertificateFromCsr", {
      certificateSigningRequest:
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    });
    assertEquals(bad.accepted, false);
    assertEquals(bad.body.statusCode, 400);
    await claim.endAsync();
  }));

Deno.test("claim files and config have the Device Client's modes", () =>
  withEmulator({}, (emulator) => {
    const mode = (p: string) => statSync(p).mode & 0o777;
    assertEquals(mode(emulator.claim.certPath), 0o644);
    assertEquals(mode(emulator.claim.keyPath), 0o600);
    assertEquals(mode(emulator.caPath), 0o644);
    assertEquals(mode(emulator.configPath), 0o640);
    const config = JSON.parse(Deno.readTextFileSync(emulator.configPath));
    assertEquals(config.port, emulator.port);
    assertEquals(config["fleet-provisioning"], {
      enabled: true,
      "template-name": "FleetprovTemplate",
      "rotation-template-name": "FleetprovRotationTemplate",
    });
    assertEquals(config["thing-name"], undefined);
  }));
