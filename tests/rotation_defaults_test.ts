// SPDX-License-Identifier: Apache-2.0
/**
 * Rotation against the emulator out of the box (the setup `fleetprov
 * emulator` and the demo use): its rotation template FleetprovRotationTemplate
 * with the emulator's rotation check as its pre-provisioning hook, FPCertPolicy
 * (the Device Client's sample plus the rotation topics), and a
 * device-client.conf that names the rotation template, so `fleetprov rotate
 * --force` works on a board it provisioned with no other flag; and a device
 * cannot use that template to put a certificate on another thing.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import {
  deviceClientCertPolicy,
  type Emulator,
  fpCertPolicy,
  ROTATION_CHECK_ARN,
  rotationTemplate,
  startEmulator,
} from "../src/emulator/mod.ts";
import { ExitCode } from "../src/errors.ts";
import { isAllowed } from "../src/policy/mod.ts";
import { DEFAULT_ROTATION_TEMPLATE_NAME } from "../src/protocol/mod.ts";
import { checkTemplate } from "../src/template/mod.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  activeCertificateId,
  assertConnects,
  assertRotated,
  claimCredentials,
  closed,
  connect,
  type Credentials,
  deviceHome,
  oneLineError,
  request,
  ROOT,
  runFleetprov,
  runtimeConfigOf,
  runtimeConfigPathOf,
  tempDir,
  type TestAnswer,
  testEmulator,
} from "./support/mod.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };
const ROTATION = DEFAULT_ROTATION_TEMPLATE_NAME;

/** A board provisioned with the emulator's own device-client.conf: home, thing, certificate. */
async function board(emulator: Emulator): Promise<{ home: string; thing: string; id: string }> {
  const home = deviceHome();
  const result = await runFleetprov(["--config-file", emulator.configPath], { home });
  assertEquals(result.code, ExitCode.Ok, result.stderr);
  const id = await assertConnects(emulator, home);
  return { home, thing: String(runtimeConfigOf(home)["thing-name"]), id };
}

/** The credentials the board's runtime config names. */
function credentialsOf(home: string): Credentials {
  const rc = runtimeConfigOf(home);
  return { cert: readFileSync(String(rc.cert), "utf8"), key: readFileSync(String(rc.key), "utf8") };
}

Deno.test("emulator defaults: the rotation template (AWS accepts it; the rotation check as its hook), FPCertPolicy with the rotation topics for the device's own thing, device-client.conf naming the template", async () => {
  const stateDir = join(tempDir("fleetprov-emu-"), "state");
  let emulator = await startEmulator({ stateDir, port: 0 });
  try {
    const template = emulator.registry.template(ROTATION)!;
    assertEquals(JSON.parse(template.templateBody), rotationTemplate());
    assertEquals([template.enabled, template.preProvisioningHook?.targetArn], [
      true,
      ROTATION_CHECK_ARN,
    ]);
    assertEquals(checkTemplate({ name: ROTATION, body: template.templateBody }), []);
    const config = JSON.parse(readFileSync(emulator.configPath, "utf8"));
    assertEquals(config["fleet-provisioning"]["rotation-template-name"], ROTATION);

    const policy = emulator.registry.policy("FPCertPolicy") as { Statement: unknown[] };
    assertEquals(policy, fpCertPolicy());
    // Everything the Device Client's sample allows, it still allows.
    for (const statement of (deviceClientCertPolicy() as { Statement: unknown[] }).Statement) {
      assert(policy.Statement.some((s) => JSON.stringify(s) === JSON.stringify(statement)));
    }
    const as = { clientId: "board-1", thingName: "board-1" };
    const ok = (action: "iot:Connect" | "iot:Publish" | "iot:Subscribe", name: string) =>
      isAllowed([policy], { action, name }, as);
    assert(ok("iot:Connect", "board-1"));
    assert(!ok("iot:Connect", "board-2"), "connect as another thing");
    assert(
      !isAllowed([policy], { action: "iot:Connect", name: "board-1" }, { clientId: "board-1" }),
      "connect without an attached thing",
    );
    for (const topic of ["json", "cbor/accepted", "json/rejected"]) {
      assert(ok("iot:Publish", `$aws/provisioning-templates/${ROTATION}/provision/${topic}`));
      assert(ok("iot:Subscribe", `$aws/provisioning-templates/${ROTATION}/provision/${topic}`));
    }
    assert(ok("iot:Publish", "$aws/certificates/create-from-csr/json"));
    assert(ok("iot:Subscribe", "$aws/certificates/create/json/accepted"));
    assert(ok("iot:Publish", "$aws/things/board-1/shadow/update"));
    assert(!ok("iot:Publish", "$aws/things/board-2/shadow/update"));
    assert(
      !ok("iot:Publish", "$aws/provisioning-templates/FleetprovTemplate/provision/json"),
      "a device certificate does not provision through the claim's template",
    );
    await emulator.close();

    // A state directory of an emulator without rotation holds the sample verbatim: it is replaced.
    const registryPath = join(stateDir, "registry.json");
    const setPolicy = (document: unknown) => {
      const registry = JSON.parse(readFileSync(registryPath, "utf8"));
      registry.policies.FPCertPolicy = document;
      writeFileSync(registryPath, JSON.stringify(registry));
    };
    setPolicy(deviceClientCertPolicy());
    emulator = await startEmulator({ stateDir, port: 0 });
    assertEquals(emulator.registry.policy("FPCertPolicy"), fpCertPolicy());
    await emulator.close();
    // One somebody changed stays.
    const own = {
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: "iot:*", Resource: "*" }],
    };
    setPolicy(own);
    emulator = await startEmulator({ stateDir, port: 0 });
    assertEquals(emulator.registry.policy("FPCertPolicy"), own);
  } finally {
    await emulator.close();
  }
});

Deno.test({
  ...TEST,
  name:
    "a board provisioned with the emulator's device-client.conf rotates with 'fleetprov rotate --config-file device-client.conf --force' alone: the same thing, FPCertPolicy on the new certificate",
  async fn() {
    const emulator = await testEmulator({ keyType: "ec-p256" });
    try {
      const b = await board(emulator);
      const result = await runFleetprov(
        ["rotate", "--config-file", emulator.configPath, "--force"],
        { home: b.home },
      );
      assertEquals(result.code, ExitCode.Ok, result.stdout + result.stderr);
      assertMatch(
        result.stdout,
        new RegExp(`template ${ROTATION} and parameters ThingName, OldCertificateId`),
      );
      const newId = assertRotated(b.home, b.id);
      assertEquals(await assertConnects(emulator, b.home), newId);
      assertEquals(runtimeConfigOf(b.home)["thing-name"], b.thing);
      assertEquals(emulator.registry.things().length, 1, "no thing was created");
      assertEquals(emulator.registry.thing(b.thing)!.principals.sort(), [b.id, newId].sort());
      const minted = emulator.registry.certificate(newId)!;
      assertEquals([minted.status, minted.policyNames], ["ACTIVE", ["FPCertPolicy"]]);
      assert(!emulator.lines.some((l) => /hook .* denied/.test(l)), emulator.lines.join("\n"));
    } finally {
      await emulator.close();
    }
  },
});

/** UpdateProvisioningTemplate of the rotation template over the control plane (plain HTTP). */
async function updateTemplate(emulator: Emulator, body: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${emulator.control!.url}/provisioning-templates/${ROTATION}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assertEquals(response.status, 200, await response.text());
}

/** A new certificate asked for on `client`, then RegisterThing with the rotation template. */
async function rotateOver(
  client: MqttClient,
  parameters: Record<string, string>,
): Promise<{ certificateId: string; registered: TestAnswer }> {
  const created = await request(client, "CreateKeysAndCertificate", {});
  assert(created.accepted, JSON.stringify(created.body));
  const { certificateId, certificateOwnershipToken } = created.body as Record<string, string>;
  const registered = await request(client, "RegisterThing", {
    certificateOwnershipToken,
    parameters,
  }, { templateName: ROTATION });
  return { certificateId, registered };
}

Deno.test({
  ...TEST,
  name:
    "the default rotation template puts no certificate on another thing: the rotation check (the asking certificate is OldCertificateId and attached to ThingName) answers ACCESS_DENIED; no thing is created (without the hook, as AWS, the template obeys the device; the control plane sets the check again); the claim cannot reach the template; a runtime config naming another thing is refused",
  async fn() {
    const emulator = await testEmulator({ keyType: "ec-p256", keyPoolSize: 0, controlPort: 0 });
    try {
      const a = await board(emulator);
      const b = await board(emulator);
      const client = await connect(emulator, credentialsOf(a.home), a.thing);
      const minted: string[] = [];
      try {
        const attacks: [string, Record<string, string>, RegExp][] = [
          [
            "another thing",
            { ThingName: b.thing, OldCertificateId: a.id },
            /is not attached to thing/,
          ],
          [
            "another thing, its certificate named",
            { ThingName: b.thing, OldCertificateId: b.id },
            /is not OldCertificateId/,
          ],
          ["a new thing", { ThingName: "board-new", OldCertificateId: a.id }, /does not exist/],
          ["no parameters", {}, /needs the parameters ThingName and OldCertificateId/],
        ];
        for (const [what, parameters, reason] of attacks) {
          const { certificateId, registered } = await rotateOver(client, parameters);
          minted.push(certificateId);
          assertEquals(registered.accepted, false, what);
          assertEquals(
            [registered.body.statusCode, registered.body.errorCode],
            [403, "ACCESS_DENIED"],
            what,
          );
          assert(
            emulator.lines.some((l) => reason.test(l)),
            `${what}: ${emulator.lines.join("\n")}`,
          );
        }
        // Its own thing, as itself: allowed.
        const own = await rotateOver(client, { ThingName: a.thing, OldCertificateId: a.id });
        assert(own.registered.accepted, JSON.stringify(own.registered.body));
        assertEquals(own.registered.body.thingName, a.thing);
      } finally {
        await client.endAsync();
      }
      assertEquals(emulator.registry.thing(b.thing)!.principals, [b.id]);
      assertEquals(emulator.registry.thing("board-new"), undefined);
      assertEquals(emulator.registry.things().length, 2);
      for (const id of minted) {
        const record = emulator.registry.certificate(id)!;
        assertEquals([record.status, record.thingNames], ["PENDING_ACTIVATION", []], id);
      }

      // The hook is what stops it: AWS checks no parameter. Without it the template obeys the
      // device; the control plane puts the check back (an ARN: no --allow-command-hooks needed).
      await updateTemplate(emulator, { removePreProvisioningHook: true });
      const unchecked = await connect(emulator, credentialsOf(a.home), a.thing);
      try {
        const hijack = await rotateOver(unchecked, { ThingName: b.thing, OldCertificateId: a.id });
        assert(hijack.registered.accepted, JSON.stringify(hijack.registered.body));
        assert(emulator.registry.thing(b.thing)!.principals.includes(hijack.certificateId));
        await updateTemplate(emulator, { preProvisioningHook: { targetArn: ROTATION_CHECK_ARN } });
        const again = await rotateOver(unchecked, { ThingName: b.thing, OldCertificateId: a.id });
        assertEquals(again.registered.body.errorCode, "ACCESS_DENIED");
      } finally {
        await unchecked.endAsync();
      }

      // The claim certificate's policy covers the provisioning template only.
      const claim = await connect(emulator, claimCredentials(emulator));
      const violation = emulator.events.waitFor("violation");
      const gone = closed(claim);
      request(claim, "RegisterThing", {}, { templateName: ROTATION }).catch(() => {});
      assertMatch((await violation).name, new RegExp(`provisioning-templates/${ROTATION}/`));
      await gone;

      // A board whose runtime config names another thing is refused when it connects as that
      // thing (MQTT 5: CONNACK 0x87; MQTT 3.1.1 is a hang-up, retried to the deadline).
      const principals = emulator.registry.thing(b.thing)!.principals;
      const path = runtimeConfigPathOf(a.home);
      const runtime = JSON.parse(readFileSync(path, "utf8"));
      runtime["runtime-config"]["thing-name"] = b.thing;
      writeFileSync(path, JSON.stringify(runtime, null, 2));
      const result = await runFleetprov(
        ["rotate", "--config-file", emulator.configPath, "--force", "--mqtt-version", "5"],
        { home: a.home },
      );
      assertEquals(result.code, ExitCode.Rejected, result.stdout + result.stderr);
      const line = oneLineError(result, true);
      assertMatch(line, /CONNACK 0x87 Not authorized.*stays active\.$/);
      // The broker's whole reason, the thing it was refused as included.
      assert(
        line.includes(
          `(broker: "certificate ${a.id} belongs to thing ${a.thing} and may connect only with that client id, not ${b.thing}")`,
        ),
        line,
      );
      assertEquals(activeCertificateId(a.home), a.id);
      assertEquals(emulator.registry.thing(b.thing)!.principals, principals);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test("deno task demo: provisions, shows status, rotates with the default rotation template, retires the old certificate, shows status again", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", join(ROOT, "scripts", "demo.ts")],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  assertEquals(output.code, 0, text);
  assertMatch(text, new RegExp(`RegisterThing with template ${ROTATION} `));
  assertMatch(text, /\[INFO\] Rotated thing (\S+) from certificate (\w{64}) to (\w{64})/);
  const [, , oldId, newId] = /Rotated thing (\S+) from certificate (\w{64}) to (\w{64})/.exec(
    text,
  )!;
  assertMatch(text, new RegExp(`certificate ${oldId}: INACTIVE\\ncertificate ${newId}: ACTIVE`));
  const ids = [...text.matchAll(/^Certificate id: +(\w{64})$/gm)].map((m) => m[1]);
  assertEquals(ids, [oldId, newId], "status before and after");
  assertMatch(text, new RegExp(`Last rotation: .*\\(replaced certificate ${oldId}\\)`));
});
