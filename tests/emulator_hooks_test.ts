// SPDX-License-Identifier: Apache-2.0
/**
 * Pre-provisioning hooks inside the emulator: RegisterThing over MQTT with a
 * hook on the template, as AWS IoT runs it (payload, allow, deny, overrides,
 * failures, the 5-second limit), and templates changed through the control
 * plane taking effect for the next RegisterThing.
 *
 * @module
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import { MAX_CONCURRENT_HOOKS } from "../src/emulator/mod.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  BOARD,
  claimCredentials,
  connect,
  request,
  tempDir,
  TEMPLATE_NAME,
  type TestAnswer,
  type TestEmulator,
  withEmulator,
} from "./support/mod.ts";

/** Writes an executable hook script; returns its file: target. */
function hookScript(body: string): string {
  const path = join(tempDir("fleetprov-hook-"), "hook.sh");
  Deno.writeTextFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  Deno.chmodSync(path, 0o755);
  return `file:${path}`;
}

/** A hook that records its input in `dir` and decides by serial number. */
function serialHook(dir: string): string {
  return hookScript(`input=$(cat)
printf '%s' "$input" > ${dir}/input.json
case "$input" in
  *'"SerialNumber":"SN-DENIED"'*) echo '{"allowProvisioning": false}' ;;
  *'"SerialNumber":"SN-OVERRIDE"'*) echo '{"allowProvisioning": true, "parameterOverrides": {"Location": "hook-lab"}}' ;;
  *'"SerialNumber":"SN-FAIL"'*) echo 'crashed' >&2; exit 1 ;;
  *'"SerialNumber":"SN-GARBAGE"'*) echo '<html>' ;;
  *'"SerialNumber":"SN-FLOOD"'*) exec yes ;;
  *'"SerialNumber":"SN-SLOW"'*) sleep 30 ;;
  *) echo '{"allowProvisioning": true}' ;;
esac`);
}

/** CreateKeysAndCertificate then RegisterThing on the board template; both answers. */
async function provision(
  claim: MqttClient,
  parameters: Record<string, string>,
): Promise<{ certificateId: string; certificatePem: string; registered: TestAnswer }> {
  const created = await request(claim, "CreateKeysAndCertificate", {});
  assert(created.accepted, JSON.stringify(created.body));
  const { certificateId, certificatePem, certificateOwnershipToken } = created.body as Record<
    string,
    string
  >;
  const registered = await request(claim, "RegisterThing", {
    certificateOwnershipToken,
    parameters,
  }, {
    templateName: TEMPLATE_NAME,
  });
  return { certificateId, certificatePem, registered };
}

/** A board emulator (EC keys, fast) whose template has `hook`. */
function hooked<T>(
  hook: string,
  fn: (emulator: TestEmulator, claim: MqttClient) => Promise<T>,
  options: {
    hookTimeoutMs?: number;
    hookConcurrency?: number;
    controlPort?: number;
    allowCommandHooks?: boolean;
  } = {},
): Promise<T> {
  return withEmulator(
    { ...BOARD, keyType: "ec-p256", keyPoolSize: 0, preProvisioningHook: hook, ...options },
    async (emulator) => {
      const claim = await connect(emulator, claimCredentials(emulator), "factory-station-1");
      try {
        return await fn(emulator, claim);
      } finally {
        await claim.endAsync();
      }
    },
  );
}

Deno.test("hook in RegisterThing: AWS's payload goes in; its overrides replace the device's parameters", async () => {
  const dir = tempDir("fleetprov-hook-in-");
  await hooked(serialHook(dir), async (emulator, claim) => {
    const { certificateId, certificatePem, registered } = await provision(claim, {
      SerialNumber: "SN-OVERRIDE",
      Location: "factory-2",
    });
    assert(registered.accepted, JSON.stringify(registered.body));
    assertEquals(JSON.parse(Deno.readTextFileSync(join(dir, "input.json"))), {
      claimCertificateId: emulator.claim.certificateId,
      certificateId,
      certificatePem,
      templateArn: `arn:aws:iot:us-east-1:123456789012:provisioningtemplate/${TEMPLATE_NAME}`,
      clientId: "factory-station-1",
      parameters: { SerialNumber: "SN-OVERRIDE", Location: "factory-2" },
    });
    const thing = emulator.registry.thing("board-SN-OVERRIDE")!;
    assertEquals(thing.attributes, { serial: "SN-OVERRIDE", location: "hook-lab" });
    assertEquals(registered.body.deviceConfiguration, {
      Foo: "Bar",
      Site: "hook-lab",
      Tricky: 'quote " backslash \\ é',
    });
    // A serial the hook allows without overrides keeps the device's parameters.
    const plain = await provision(claim, { SerialNumber: "SN-2", Location: "factory-2" });
    assert(plain.registered.accepted);
    assertEquals(emulator.registry.thing("board-SN-2")?.attributes.location, "factory-2");
  });
});

Deno.test("hook in RegisterThing: a denial is 403 ACCESS_DENIED; nothing is registered, the certificate stays pending", async () => {
  await hooked(serialHook(tempDir()), async (emulator, claim) => {
    const { certificateId, registered } = await provision(claim, { SerialNumber: "SN-DENIED" });
    assertEquals(registered, {
      accepted: false,
      body: {
        statusCode: 403,
        errorCode: "ACCESS_DENIED",
        errorMessage: "The pre-provisioning hook did not allow provisioning.",
      },
    });
    assertEquals(emulator.registry.certificate(certificateId)?.status, "PENDING_ACTIVATION");
    assertEquals(emulator.registry.thing("board-SN-DENIED"), undefined);
    assert(
      emulator.lines.some((l) => /hook .* denied RegisterThing for factory-station-1/.test(l)),
    );
  });
});

Deno.test("hook in RegisterThing: failing, garbage and flooding hooks are 403 ACCESS_DENIED; a slow one costs only its request", async () => {
  await hooked(serialHook(tempDir()), async (emulator, claim) => {
    for (const serial of ["SN-FAIL", "SN-GARBAGE", "SN-FLOOD"]) {
      const { registered } = await provision(claim, { SerialNumber: serial });
      assertEquals(registered.body, {
        statusCode: 403,
        errorCode: "ACCESS_DENIED",
        errorMessage: "The pre-provisioning hook failed.",
      }, serial);
    }
    assert(emulator.lines.some((l) => /hook .* failed .*exited with status 1: crashed/.test(l)));
    // While one hook hangs, another device (its own connection) provisions.
    let settled = false;
    const slow = provision(claim, { SerialNumber: "SN-SLOW" }).finally(() => settled = true);
    await emulator.events.waitFor("request", (e) => e.operation === "RegisterThing");
    const other = await connect(emulator, claimCredentials(emulator), "factory-station-2");
    const fast = await provision(other, { SerialNumber: "SN-FAST" });
    await other.endAsync();
    assert(fast.registered.accepted, JSON.stringify(fast.registered.body));
    assert(!settled, "the slow hook's request was still waiting");
    assertEquals((await slow).registered.body, {
      statusCode: 403,
      errorCode: "ACCESS_DENIED",
      errorMessage: "The pre-provisioning hook did not answer within 1500 ms.",
    });
  }, { hookTimeoutMs: 1500 });
});

Deno.test("hook in RegisterThing: the default time limit is AWS's 5 seconds", async () => {
  await hooked(serialHook(tempDir()), async (_emulator, claim) => {
    const started = Date.now();
    const { registered } = await provision(claim, { SerialNumber: "SN-SLOW" });
    const elapsed = Date.now() - started;
    assertEquals(
      registered.body.errorMessage,
      "The pre-provisioning hook did not answer within 5000 ms.",
    );
    assert(elapsed >= 5000 && elapsed < 20_000, `rejected after ${elapsed} ms`);
  });
});

/**
 * An http: hook that holds every request until released; `running` is how
 * many it holds, `most` the most it ever held at once.
 */
async function holdingHook(): Promise<{
  url: string;
  running: () => number;
  most: () => number;
  arrived: (n: number) => Promise<void>;
  release: () => void;
  close: () => Promise<void>;
}> {
  const held: ServerResponse[] = [];
  let most = 0;
  let waiting: { n: number; resolve: () => void } | undefined;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      held.push(res);
      most = Math.max(most, held.length);
      if (waiting && held.length >= waiting.n) waiting.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    running: () => held.length,
    most: () => most,
    arrived: (n) =>
      held.length >= n ? Promise.resolve() : new Promise((resolve) => waiting = { n, resolve }),
    release: () => {
      for (const res of held.splice(0)) res.end('{"allowProvisioning": true}');
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

Deno.test(`hooks: at most ${MAX_CONCURRENT_HOOKS} run at once by default; one more RegisterThing is throttled (429), then goes through`, async () => {
  assertEquals(MAX_CONCURRENT_HOOKS, 32, "the README promises 32");
  const hook = await holdingHook();
  try {
    // A limit of 2 shows the rule; the default is the same code with 32.
    await hooked(hook.url, async (emulator, first) => {
      const second = await connect(emulator, claimCredentials(emulator), "factory-station-2");
      const third = await connect(emulator, claimCredentials(emulator), "factory-station-3");
      try {
        const held = [
          provision(first, { SerialNumber: "SN-H1" }),
          provision(second, { SerialNumber: "SN-H2" }),
        ];
        await hook.arrived(2);
        const created = await request(third, "CreateKeysAndCertificate", {});
        const register = () =>
          request(third, "RegisterThing", {
            certificateOwnershipToken: created.body.certificateOwnershipToken,
            parameters: { SerialNumber: "SN-H3" },
          }, { templateName: TEMPLATE_NAME });
        assertEquals(await register(), {
          accepted: false,
          body: {
            statusCode: 429,
            errorCode: "ThrottlingException",
            errorMessage: "Rate exceeded.",
          },
        });
        assertEquals(hook.running(), 2, "the throttled request started no hook");
        assert(
          emulator.lines.some((l) =>
            /hook .* throttled RegisterThing for factory-station-3: 2 hooks already running/.test(l)
          ),
        );
        hook.release();
        for (const done of await Promise.all(held)) {
          assert(done.registered.accepted, JSON.stringify(done.registered.body));
        }
        // With the hooks done, the throttled device's retry (the same token) goes through.
        const retried = register();
        await hook.arrived(1);
        hook.release();
        assert((await retried).accepted);
        assertEquals(hook.most(), 2, "never more than the limit at once");
      } finally {
        await second.endAsync();
        await third.endAsync();
      }
    }, { hookConcurrency: 2 });
  } finally {
    await hook.close();
  }
});

Deno.test("templates changed through the control plane take effect for the next RegisterThing", async () => {
  const dir = tempDir("fleetprov-hook-in-");
  await hooked(serialHook(dir), async (emulator, claim) => {
    const patch = (body: unknown) =>
      fetch(`${emulator.control!.url}/provisioning-templates/${TEMPLATE_NAME}`, {
        method: "PATCH",
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, text: await r.text() }));
    assertEquals((await patch({ enabled: false })).status, 200);
    const disabled = await provision(claim, { SerialNumber: "SN-3" });
    assertEquals(disabled.registered.accepted, false);
    assertMatch(String(disabled.registered.body.errorMessage), /is disabled; enable it/);
    assertEquals((await patch({ enabled: true, removePreProvisioningHook: true })).status, 200);
    const unhooked = await provision(claim, { SerialNumber: "SN-DENIED" });
    assert(unhooked.registered.accepted, "without its hook the template lets SN-DENIED through");
    assertEquals(
      (await patch({ preProvisioningHook: { targetArn: `file:${dir}/missing-hook` } })).status,
      200,
    );
    const broken = await provision(claim, { SerialNumber: "SN-4" });
    assertEquals(broken.registered.body.errorCode, "ACCESS_DENIED");
    const lambda = await patch({
      preProvisioningHook: { targetArn: "arn:aws:lambda:us-east-1:123456789012:function:hook" },
    });
    assertEquals(lambda.status, 400);
    assertMatch(lambda.text, /cannot invoke a Lambda function/);
  }, { controlPort: 0, allowCommandHooks: true });
});
