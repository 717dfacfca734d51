import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { certificateId, createCsr, generateKeyPair } from "../src/pki/mod.ts";
import { claimCredentials, connect, request, startTestEmulator } from "./emulator_helpers.ts";

Deno.test("keys path: CreateKeysAndCertificate, RegisterThing, registry, reconnect as the thing", async () => {
  const emulator = await startTestEmulator();
  try {
    const claim = await connect(emulator, claimCredentials(emulator));
    const created = await request(claim, "CreateKeysAndCertificate", {});
    assert.ok(created.accepted, JSON.stringify(created.body));
    const { certificateId: id, certificatePem, privateKey, certificateOwnershipToken } = created
      .body as Record<string, string>;
    assert.deepEqual(id, certificateId(certificatePem));
    assert.match(privateKey, /BEGIN PRIVATE KEY/);
    assert.deepEqual(emulator.registry.certificate(id)?.status, "PENDING_ACTIVATION");

    const registered = await request(claim, "RegisterThing", { certificateOwnershipToken });
    assert.ok(registered.accepted, JSON.stringify(registered.body));
    assert.deepEqual(registered.body, {
      thingName: `FPTemplateName-${id}`,
      deviceConfiguration: {},
    });
    await claim.endAsync();

    const cert = emulator.registry.certificate(id)!;
    assert.deepEqual(cert.status, "ACTIVE");
    assert.deepEqual(cert.thingNames, [`FPTemplateName-${id}`]);
    assert.deepEqual(emulator.registry.policiesOf(id), ["FPCertPolicy"]);
    const thing = emulator.registry.thing(`FPTemplateName-${id}`)!;
    assert.deepEqual(thing.principals, [id]);
    assert.deepEqual(thing.attributes, {});

    const device = await connect(
      emulator,
      { cert: certificatePem, key: privateKey },
      thing.thingName,
    );
    await device.endAsync();
    await assert.rejects(
      () => connect(emulator, { cert: certificatePem, key: privateKey }, "some-other-id"),
      /Not authorized/,
    );
    assert.ok(emulator.lines.some((l) => l.includes("may connect only with that client id")));
  } finally {
    await emulator.close();
  }
});

Deno.test("CSR path: EC and RSA CSRs are signed with their own keys", async () => {
  const emulator = await startTestEmulator();
  try {
    const claim = await connect(emulator, claimCredentials(emulator));
    for (const algorithm of ["ec-p256", "rsa-2048"] as const) {
      const pair = await generateKeyPair(algorithm);
      const csr = await createCsr("device-1", pair.keys, { algorithm });
      const created = await request(claim, "CreateCertificateFromCsr", {
        certificateSigningRequest: csr,
      });
      assert.ok(created.accepted, JSON.stringify(created.body));
      const body = created.body as Record<string, string>;
      assert.deepEqual(body.privateKey, undefined);
      const registered = await request(claim, "RegisterThing", {
        certificateOwnershipToken: body.certificateOwnershipToken,
      });
      assert.ok(registered.accepted);
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
    assert.deepEqual(bad.accepted, false);
    assert.deepEqual(bad.body.statusCode, 400);
    await claim.endAsync();
  } finally {
    await emulator.close();
  }
});

Deno.test("claim files and config have the Device Client's modes", async () => {
  const emulator = await startTestEmulator();
  try {
    const mode = (p: string) => statSync(p).mode & 0o777;
    assert.deepEqual(mode(emulator.claim.certPath), 0o644);
    assert.deepEqual(mode(emulator.claim.keyPath), 0o600);
    assert.deepEqual(mode(emulator.caPath), 0o644);
    assert.deepEqual(mode(emulator.configPath), 0o640);
    const config = JSON.parse(Deno.readTextFileSync(emulator.configPath));
    assert.deepEqual(config.port, emulator.port);
    assert.deepEqual(config["fleet-provisioning"], {
      enabled: true,
      "template-name": "FleetprovTemplate",
    });
    assert.deepEqual(config["thing-name"], undefined);
  } finally {
    await emulator.close();
  }
});
