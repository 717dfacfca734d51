// SPDX-License-Identifier: Apache-2.0
/**
 * A kill -9 in the middle of control-plane writes: `fleetprov emulator` is
 * SIGKILLed while clients create and attach policies and flip a certificate's
 * status as fast as it answers. Afterwards registry.json is readable and
 * consistent, every write the emulator acknowledged is in it (it writes
 * before it answers), and the emulator starts again on it.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals } from "./support/assert.ts";
import { type EmulatorProcess, spawnEmulator, tempDir } from "./support/mod.ts";

interface Registry {
  version: number;
  certificates: Record<string, { policyNames: string[]; thingNames: string[]; status: string }>;
  things: Record<string, { principals: string[] }>;
  policies: Record<string, unknown>;
}

/** Asserts the registry's cross-references hold; returns it. */
function consistent(path: string): Registry {
  const registry = JSON.parse(Deno.readTextFileSync(path)) as Registry;
  assertEquals(registry.version, 1);
  for (const [id, cert] of Object.entries(registry.certificates)) {
    for (const name of cert.policyNames) {
      assert(name in registry.policies, `${id} has policy ${name}`);
    }
    for (const name of cert.thingNames) {
      assert(registry.things[name]?.principals.includes(id), `${name} lists ${id}`);
    }
  }
  return registry;
}

/** Sends writes from `workers` clients until the emulator dies; returns what it acknowledged. */
function hammer(
  emulator: EmulatorProcess,
  round: number,
  claimId: string,
): {
  acknowledged: { policies: string[]; attached: string[]; count: number };
  done: Promise<void[]>;
} {
  const url = emulator.control!.url;
  const acknowledged = { policies: [] as string[], attached: [] as string[], count: 0 };
  const worker = async (w: number) => {
    for (let i = 0;; i++) {
      const name = `r${round}-w${w}-p${i}`;
      try {
        const created = await fetch(`${url}/policies/${name}`, {
          method: "POST",
          body: JSON.stringify({
            policyDocument: JSON.stringify({
              Version: "2012-10-17",
              Statement: [{
                Effect: "Allow",
                Action: "iot:Connect",
                Resource: `arn:aws:iot:us-east-1:123456789012:client/${name}`,
              }],
            }),
          }),
        });
        await created.body?.cancel();
        if (created.status !== 200) throw new Error(`CreatePolicy ${created.status}`);
        acknowledged.policies.push(name);
        acknowledged.count++;
        const attached = await fetch(`${url}/target-policies/${name}`, {
          method: "PUT",
          body: JSON.stringify({ target: `arn:aws:iot:us-east-1:123456789012:cert/${claimId}` }),
        });
        await attached.body?.cancel();
        if (attached.status !== 200) throw new Error(`AttachPolicy ${attached.status}`);
        acknowledged.attached.push(name);
        acknowledged.count++;
      } catch {
        return; // the emulator is gone
      }
    }
  };
  return { acknowledged, done: Promise.all([0, 1, 2, 3, 4, 5].map(worker)) };
}

Deno.test("control plane: kill -9 during writes leaves registry.json readable, consistent, with every acknowledged write", async () => {
  const stateDir = join(tempDir("fleetprov-crash-"), "state");
  const registryPath = join(stateDir, "registry.json");
  let emulator = await spawnEmulator(["--control-port", "0"], { stateDir });
  const claimId = Object.entries(consistent(registryPath).certificates)[0][0];
  let total = 0;
  for (let round = 0; round < 4; round++) {
    const { acknowledged, done } = hammer(emulator, round, claimId);
    // Kill at a different point each round, while writes are in flight.
    const killAfter = 40 + round * 37;
    while (acknowledged.count < killAfter) await new Promise((r) => setTimeout(r, 5));
    emulator.child.kill("SIGKILL");
    const status = await emulator.child.status;
    assertEquals(status.signal, "SIGKILL");
    await done;
    await emulator.child.stdout.cancel().catch(() => {});
    const registry = consistent(registryPath);
    for (const name of acknowledged.policies) {
      assert(name in registry.policies, `acknowledged ${name} is there`);
    }
    for (const name of acknowledged.attached) {
      assert(
        registry.certificates[claimId].policyNames.includes(name),
        `acknowledged attachment of ${name}`,
      );
    }
    total += acknowledged.count;
    emulator = await spawnEmulator(["--control-port", "0"], { stateDir });
    const listed = await fetch(`${emulator.control!.url}/policies?pageSize=250`).then((r) =>
      r.json()
    );
    assert(listed.policies.length >= 2, "the restarted emulator serves the registry");
  }
  const stopped = await emulator.stop();
  assertEquals(stopped.code, 0);
  assert(total > 0);
});
