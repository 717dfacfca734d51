// SPDX-License-Identifier: Apache-2.0
/**
 * The control plane over plain HTTP: what a hostile or broken client can send
 * (oversized, malformed, unsigned, unknown), the errors AWS-shaped, paging,
 * and certificate status enforced on the MQTT side (AWS IoT's rules: only an
 * ACTIVE certificate connects; one leaving ACTIVE is disconnected; a deleted
 * one is unknown).
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { MAX_REQUEST_BYTES } from "../src/emulator/mod.ts";
import {
  claimCredentials,
  closed,
  connect,
  type MqttVersion,
  request,
  type TestEmulator,
  withEmulator,
} from "./support/mod.ts";

/** One control-plane call: status, error type, JSON body. */
async function call(
  emulator: TestEmulator,
  method: string,
  path: string,
  init: { body?: BodyInit; headers?: Record<string, string> } = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; type: string | null; json: any }> {
  const response = await fetch(`${emulator.control!.url}${path}`, { method, ...init });
  const text = await response.text();
  return {
    status: response.status,
    type: response.headers.get("x-amzn-ErrorType"),
    json: text ? JSON.parse(text) : undefined,
  };
}

const CONTROL = { controlPort: 0, keyType: "ec-p256" as const, keyPoolSize: 0 };

Deno.test("control plane: only with controlPort, on 127.0.0.1 by default, any credentials or none", async () => {
  await withEmulator({}, (emulator) => assertEquals(emulator.control, undefined));
  await withEmulator(CONTROL, async (emulator) => {
    assertEquals(emulator.control?.host, "127.0.0.1");
    assertEquals(emulator.control?.url, `http://127.0.0.1:${emulator.control?.port}`);
    const unsigned = await call(emulator, "GET", "/things");
    assertEquals(unsigned, { status: 200, type: null, json: { things: [] } });
    const forged = await call(emulator, "GET", "/things", {
      headers: {
        Authorization:
          "AWS4-HMAC-SHA256 Credential=NOBODY/20200101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00",
        "X-Amz-Date": "20200101T000000Z",
      },
    });
    assertEquals(forged.status, 200);
  });
});

Deno.test("control plane: bodies are capped at 1 MiB (413); bad JSON and non-objects are SerializationException", async () => {
  assertEquals(MAX_REQUEST_BYTES, 1_048_576);
  await withEmulator(CONTROL, async (emulator) => {
    const padded = (bytes: number) => {
      const head = '{"policyDocument": "';
      return head + "x".repeat(bytes - head.length - 2) + '"}';
    };
    const exact = await call(emulator, "POST", "/policies/Big", {
      body: padded(MAX_REQUEST_BYTES),
    });
    // Read and judged: too long a policy for AWS's shape, not too big a request.
    assertEquals([exact.status, exact.type], [400, "InvalidRequestException"]);
    assertMatch(exact.json.message, /at 'policyDocument' failed to satisfy constraint/);
    const over = await call(emulator, "POST", "/policies/Big", {
      body: padded(MAX_REQUEST_BYTES + 1),
    });
    assertEquals([over.status, over.type], [413, "InvalidRequestException"]);
    assertEquals(
      over.json.message,
      `The request body is ${
        MAX_REQUEST_BYTES + 1
      } bytes; the emulator accepts at most ${MAX_REQUEST_BYTES}.`,
    );
    for (const body of ["{not json", "[1]", '"text"']) {
      const bad = await call(emulator, "POST", "/policies/P", { body });
      assertEquals([bad.status, bad.type], [400, "SerializationException"], body);
    }
    // Still serving, nothing half-created.
    assertEquals((await call(emulator, "GET", "/policies/Big")).status, 404);
  });
});

Deno.test("control plane: an unknown operation is a 4xx naming it; bad names get AWS's validation message", async () => {
  await withEmulator(CONTROL, async (emulator) => {
    const create = await call(emulator, "POST", "/things/board-1", { body: "{}" });
    assertEquals([create.status, create.type], [404, "UnknownOperationException"]);
    assertMatch(
      create.json.message,
      /^The emulator does not implement CreateThing \(POST \/things\/board-1\); it implements .*DescribeThing/,
    );
    const nowhere = await call(emulator, "DELETE", "/nowhere/at/all");
    assertEquals(nowhere.status, 404);
    assertMatch(
      nowhere.json.message,
      /No AWS IoT operation the emulator knows is at DELETE \/nowhere\/at\/all/,
    );
    const bad = await call(emulator, "GET", "/things/bad%20name");
    assertEquals([bad.status, bad.type], [400, "InvalidRequestException"]);
    assertEquals(
      bad.json.message,
      "1 validation error detected: Value 'bad name' at 'thingName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+",
    );
    const missing = await call(emulator, "GET", `/certificates/${"0".repeat(64)}`);
    assertEquals([missing.status, missing.type], [404, "ResourceNotFoundException"]);
    // A file: hook runs a command: not from a request unless the emulator allows it.
    const hooked = await call(emulator, "PATCH", "/provisioning-templates/FleetprovTemplate", {
      body: JSON.stringify({ preProvisioningHook: { targetArn: "file:/bin/true" } }),
    });
    assertEquals([hooked.status, hooked.type], [400, "InvalidRequestException"]);
    assertMatch(
      hooked.json.message,
      /only when the emulator was started with --allow-command-hooks/,
    );
    const status = await call(
      emulator,
      "PUT",
      `/certificates/${emulator.claim.certificateId}?newStatus=BROKEN`,
    );
    assertMatch(
      status.json.message,
      /Member must satisfy enum value set: \[ACTIVE, INACTIVE, REVOKED/,
    );
  });
});

Deno.test("control plane: names that are Object.prototype's (constructor, toString, __proto__) are names like any other", async () => {
  await withEmulator(CONTROL, async (emulator) => {
    for (
      const path of [
        "/things/constructor",
        "/provisioning-templates/toString",
        "/policies/__proto__",
      ]
    ) {
      const missing = await call(emulator, "GET", path);
      assertEquals([missing.status, missing.type], [404, "ResourceNotFoundException"], path);
    }
    const body = JSON.stringify(emulator.registry.template("FleetprovTemplate")!.templateBody);
    for (const templateName of ["constructor", "__proto__"]) {
      const created = await call(emulator, "POST", "/provisioning-templates", {
        body: JSON.stringify({
          templateName,
          templateBody: JSON.parse(body),
          provisioningRoleArn: "arn:aws:iam::123456789012:role/FleetProvisioningRole",
        }),
      });
      assertEquals(created.status, 200, JSON.stringify(created.json));
      const described = await call(emulator, "GET", `/provisioning-templates/${templateName}`);
      assertEquals([described.status, described.json.templateName], [200, templateName]);
    }
    const listed = await call(emulator, "GET", "/provisioning-templates");
    const names = listed.json.templates.map((t: { templateName: string }) => t.templateName);
    assert(names.includes("constructor") && names.includes("__proto__"), names.join(", "));
  });
});

Deno.test("control plane: lists are paged with the tokens AWS's clients follow", async () => {
  await withEmulator(CONTROL, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator));
    for (let i = 0; i < 3; i++) await request(claim, "CreateKeysAndCertificate", {});
    await claim.endAsync();
    const ids: string[] = [];
    let marker: string | undefined;
    do {
      const page = await call(
        emulator,
        "GET",
        `/certificates?pageSize=2${marker ? `&marker=${encodeURIComponent(marker)}` : ""}`,
      );
      assertEquals(page.status, 200);
      assert(page.json.certificates.length <= 2);
      ids.push(...page.json.certificates.map((c: { certificateId: string }) => c.certificateId));
      marker = page.json.nextMarker;
    } while (marker);
    assertEquals(new Set(ids).size, 4, "the claim and three new certificates, each once");
    assertEquals((await call(emulator, "GET", "/certificates?marker=bogus!")).status, 400);
    assertEquals((await call(emulator, "GET", "/certificates?pageSize=251")).status, 400);
    // ListThingTypes --thing-type-name filters before paging: the page holds the type asked for.
    for (const name of ["Alpha", "Beta", "Gamma"]) {
      assertEquals(
        (await call(emulator, "POST", `/thing-types/${name}`, { body: "{}" })).status,
        200,
      );
    }
    const one = await call(emulator, "GET", "/thing-types?thingTypeName=Gamma&maxResults=1");
    assertEquals(
      [
        one.json.thingTypes.map((t: { thingTypeName: string }) => t.thingTypeName),
        one.json.nextToken,
      ],
      [["Gamma"], undefined],
    );
  });
});

/** Provisions a board over MQTT; returns its certificate, key and thing name. */
async function board(emulator: TestEmulator) {
  const claim = await connect(emulator, claimCredentials(emulator));
  const created = await request(claim, "CreateKeysAndCertificate", {});
  const { certificateId, certificatePem, privateKey, certificateOwnershipToken } = created
    .body as Record<string, string>;
  const registered = await request(claim, "RegisterThing", { certificateOwnershipToken });
  await claim.endAsync();
  return {
    certificateId,
    credentials: { cert: certificatePem, key: privateKey },
    thingName: registered.body.thingName as string,
  };
}

for (const mqttVersion of [4, 5] as MqttVersion[]) {
  const refusal = mqttVersion === 5
    ? /CONNACK 135: certificate .* is (INACTIVE|REVOKED)/
    : /connection closed before CONNACK/;
  Deno.test(`certificate status (MQTT ${mqttVersion === 5 ? "5" : "3.1.1"}): INACTIVE disconnects and refuses, ACTIVE again connects, REVOKED is final`, async () => {
    await withEmulator(CONTROL, async (emulator) => {
      const device = await board(emulator);
      const live = await connect(emulator, device.credentials, device.thingName, { mqttVersion });
      const dropped = closed(live);
      const path = `/certificates/${device.certificateId}`;
      assertEquals((await call(emulator, "PUT", `${path}?newStatus=INACTIVE`)).status, 200);
      await dropped;
      assertEquals(emulator.registry.certificate(device.certificateId)?.status, "INACTIVE");
      await assertRejects(
        connect(emulator, device.credentials, device.thingName, { mqttVersion }),
        refusal,
      );
      assertEquals((await call(emulator, "PUT", `${path}?newStatus=ACTIVE`)).status, 200);
      await (await connect(emulator, device.credentials, device.thingName, { mqttVersion }))
        .endAsync();
      assertEquals((await call(emulator, "PUT", `${path}?newStatus=REVOKED`)).status, 200);
      await assertRejects(
        connect(emulator, device.credentials, device.thingName, { mqttVersion }),
        refusal,
      );
      const back = await call(emulator, "PUT", `${path}?newStatus=ACTIVE`);
      assertEquals([back.status, back.type], [406, "CertificateStateException"]);
      const internal = await call(emulator, "PUT", `${path}?newStatus=PENDING_ACTIVATION`);
      assertEquals(internal.status, 400);
      assertMatch(
        internal.json.message,
        /AWS IoT uses PENDING_TRANSFER and PENDING_ACTIVATION internally/,
      );
    });
  });
}

Deno.test("certificate deletion: refused while ACTIVE or attached, as AWS does; then the certificate is unknown", async () => {
  await withEmulator(CONTROL, async (emulator) => {
    const device = await board(emulator);
    const path = `/certificates/${device.certificateId}`;
    const active = await call(emulator, "DELETE", path);
    assertEquals([active.status, active.type], [406, "CertificateStateException"]);
    await call(emulator, "PUT", `${path}?newStatus=INACTIVE`);
    const attached = await call(emulator, "DELETE", path);
    assertEquals([attached.status, attached.type], [409, "DeleteConflictException"]);
    assertMatch(attached.json.message, new RegExp(`attached to thing ${device.thingName}`));
    const arn = `arn:aws:iot:us-east-1:123456789012:cert/${device.certificateId}`;
    const detached = await call(emulator, "DELETE", `/things/${device.thingName}/principals`, {
      headers: { "x-amzn-principal": arn },
    });
    assertEquals(detached.status, 200);
    assertEquals(emulator.registry.thing(device.thingName)?.principals, []);
    const policies = await call(emulator, "DELETE", path);
    assertEquals([policies.status, policies.type], [409, "DeleteConflictException"]);
    assertMatch(policies.json.message, /has policies attached \(FPCertPolicy\)/);
    assertEquals((await call(emulator, "DELETE", `${path}?forceDelete=true`)).status, 200);
    assertEquals(emulator.registry.certificate(device.certificateId), undefined);
    await call(emulator, "PUT", `${path}?newStatus=ACTIVE`);
    await assertRejects(
      connect(emulator, device.credentials, device.thingName),
      /connection closed before CONNACK/,
    );
    assert(
      emulator.lines.some((l) =>
        l.includes(`certificate ${device.certificateId} is not registered`)
      ),
    );
  });
});

Deno.test("RegisterThing needs the thing groups, thing type and billing group a template names (AWS: they must exist)", async () => {
  const template = {
    Parameters: { Serial: { Type: "String" } },
    Resources: {
      certificate: {
        Type: "AWS::IoT::Certificate",
        Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" } },
      },
      thing: {
        Type: "AWS::IoT::Thing",
        Properties: {
          ThingName: { Ref: "Serial" },
          ThingTypeName: "Gateway",
          ThingGroups: ["plant-7"],
          BillingGroup: "lab",
        },
      },
    },
  };
  await withEmulator({ ...CONTROL, templateName: "Grouped", template }, async (emulator) => {
    const claim = await connect(emulator, claimCredentials(emulator));
    const attempt = async () => {
      const created = await request(claim, "CreateKeysAndCertificate", {});
      const token = created.body.certificateOwnershipToken;
      return await request(claim, "RegisterThing", {
        certificateOwnershipToken: token,
        parameters: { Serial: "gw-1" },
      }, { templateName: "Grouped" });
    };
    for (
      const [missing, create] of [
        [
          /Thing type Gateway does not exist; create it first \(aws iot create-thing-type --thing-type-name Gateway\)/,
          "/thing-types/Gateway",
        ],
        [/Billing group lab does not exist/, "/billing-groups/lab"],
        [/Thing group plant-7 does not exist/, "/thing-groups/plant-7"],
      ] as const
    ) {
      const refused = await attempt();
      assertEquals(refused.body.errorCode, "ResourceRegistrationFailure");
      assertMatch(String(refused.body.errorMessage), missing);
      const made = await call(emulator, "POST", create, { body: "{}" });
      assertEquals(made.status, 200);
    }
    const accepted = await attempt();
    assert(accepted.accepted, JSON.stringify(accepted.body));
    assertEquals(emulator.registry.thing("gw-1")?.thingGroups, ["plant-7"]);
    await claim.endAsync();
  });
});
