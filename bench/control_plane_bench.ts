// SPDX-License-Identifier: Apache-2.0
/**
 * `deno task bench:control`: the emulator's control plane and its
 * pre-provisioning hooks, timed from outside. The emulator runs in its own
 * process (the x64 release binary when built, else `--deno`: Deno on
 * main.ts).
 *
 * - Control-plane latency: AWS's SDK for JavaScript v3 (`@aws-sdk/client-iot`
 *   under the pinned Node.js) sends `--requests` DescribeCertificate (a read)
 *   and UpdateCertificate (a write, fsynced before the answer) one after
 *   another, after 50 of each to warm up; request to answer, in the SDK.
 * - Hook overhead: RegisterThing (request published to answer received, one
 *   claim connection, EC keys) on three templates alike but for their hook:
 *   none, a `file:` shell script, an `http:` endpoint in this process;
 *   `--registers` rounds, the three interleaved.
 *
 *   deno run -A bench/control_plane_bench.ts [--requests 1000] [--registers 200] [--deno]
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchIotSdk, iotSdk } from "../tests/support/aws_iot.ts";
import { SERIAL_TEMPLATE, spawnEmulator } from "../tests/support/emulator.ts";
import { tempDir } from "../tests/support/fs.ts";
import { claimCredentials, connect, request } from "../tests/support/mqtt.ts";
import { certificateId } from "../src/pki/mod.ts";
import { topicStatements } from "../src/policy/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    requests: { type: "string", default: "1000" },
    registers: { type: "string", default: "200" },
    deno: { type: "boolean", default: false },
  },
});
const ROOT = new URL("../", import.meta.url).pathname;
const BINARY = join(ROOT, "dist", "fleetprov-linux-x64");
const bin = values.deno || !existsSync(BINARY) ? undefined : BINARY;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

function row(label: string, samples: number[], extra = ""): string {
  const s = [...samples].sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(2).padStart(7);
  return `| ${label.padEnd(36)} | ${String(s.length).padStart(5)} | ${f(percentile(s, 0.5))} | ${
    f(percentile(s, 0.9))
  } | ${f(percentile(s, 0.99))} | ${f(s[s.length - 1])} |${extra}`;
}

/** A claim policy allowing every template's topics (the bench creates two). */
function wideClaimPolicy(dir: string): string {
  const path = join(dir, "claim-policy.json");
  const topics = ["$aws/certificates/create/*", "$aws/provisioning-templates/*"];
  Deno.writeTextFileSync(
    path,
    JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Action: "iot:Connect", Resource: "*" },
        ...topicStatements("arn:aws:iot:us-east-1:123456789012:", topics),
      ],
    }),
  );
  return path;
}

/** Creates a template like the board template with `hook` (or none) through the control plane. */
async function createTemplate(url: string, name: string, hook?: string): Promise<void> {
  const response = await fetch(`${url}/provisioning-templates`, {
    method: "POST",
    body: JSON.stringify({
      templateName: name,
      templateBody: JSON.stringify(SERIAL_TEMPLATE),
      provisioningRoleArn: "arn:aws:iam::123456789012:role/Bench",
      enabled: true,
      ...(hook ? { preProvisioningHook: { targetArn: hook } } : {}),
    }),
  });
  if (response.status !== 200) throw new Error(`${name}: ${await response.text()}`);
}

const dir = tempDir("fleetprov-control-bench-");
const hookScript = join(dir, "hook.sh");
Deno.writeTextFileSync(
  hookScript,
  "#!/bin/sh\ncat > /dev/null\necho '{\"allowProvisioning\": true}'\n",
  {
    mode: 0o755,
  },
);
Deno.chmodSync(hookScript, 0o755);
const hookServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (r) => {
  await r.body?.cancel();
  return Response.json({ allowProvisioning: true });
});
const emulator = await spawnEmulator([
  "--control-port",
  "0",
  "--key-type",
  "ec-p256",
  "--key-pool",
  "0",
  "--claim-policy-file",
  wideClaimPolicy(dir),
  "--allow-command-hooks",
], { bin });
const url = emulator.control!.url;
const config = JSON.parse(readFileSync(emulator.configPath, "utf8"));
const claimId = certificateId(readFileSync(config.cert, "utf8"));
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
console.log(
  `Emulator: ${
    bin ? "x64 release binary" : `Deno ${Deno.version.deno} on main.ts`
  }, own process; ` +
    `${navigator.hardwareConcurrency} CPUs; load average ${load()} at the start.\n`,
);
try {
  const sdk = await iotSdk();
  if (!sdk) throw new Error("@aws-sdk/client-iot could not be installed (npm missing?).");
  const count = Number(values.requests);
  const describe = { op: "DescribeCertificate", input: { certificateId: claimId } };
  const update = {
    op: "UpdateCertificate",
    input: { certificateId: claimId, newStatus: "ACTIVE" },
  };
  await benchIotSdk(sdk, url, { ...describe, count: 50 });
  await benchIotSdk(sdk, url, { ...update, count: 50 });
  const reads = await benchIotSdk(sdk, url, { ...describe, count });
  const writes = await benchIotSdk(sdk, url, { ...update, count });
  console.log("Control plane, @aws-sdk/client-iot, one request at a time (ms):\n");
  console.log(
    "| request                              |     n |     p50 |     p90 |     p99 |     max |",
  );
  console.log(
    "| ------------------------------------ | ----- | ------- | ------- | ------- | ------- |",
  );
  console.log(row("DescribeCertificate (read)", reads));
  console.log(row("UpdateCertificate (write, fsynced)", writes));

  await createTemplate(url, "NoHook");
  await createTemplate(url, "FileHook", `file:${hookScript}`);
  await createTemplate(url, "HttpHook", `http://127.0.0.1:${hookServer.addr.port}/hook`);
  const endpoint = {
    endpoint: "localhost" as const,
    port: emulator.port,
    caCertPem: readFileSync(config["root-ca"], "utf8"),
  };
  const claim = await connect(
    endpoint,
    claimCredentials({
      claim: { certPath: config.cert, keyPath: config.key },
    }),
  );
  const templates = ["NoHook", "FileHook", "HttpHook"];
  const latencies: Record<string, number[]> = { NoHook: [], FileHook: [], HttpHook: [] };
  const rounds = Number(values.registers);
  for (let i = -5; i < rounds; i++) {
    for (const templateName of templates) {
      const created = await request(claim, "CreateKeysAndCertificate", {});
      const started = performance.now();
      const answer = await request(claim, "RegisterThing", {
        certificateOwnershipToken: created.body.certificateOwnershipToken,
        parameters: { SerialNumber: `${templateName}-${i}` },
      }, { templateName });
      const elapsed = performance.now() - started;
      if (!answer.accepted) throw new Error(JSON.stringify(answer.body));
      if (i >= 0) latencies[templateName].push(elapsed);
    }
  }
  await claim.endAsync();
  const base = [...latencies.NoHook].sort((a, b) => a - b);
  console.log("\nRegisterThing at the emulator, request to answer, by hook (ms):\n");
  console.log(
    "| template's hook                      |     n |     p50 |     p90 |     p99 |     max | p50 overhead |",
  );
  console.log(
    "| ------------------------------------ | ----- | ------- | ------- | ------- | ------- | ------------ |",
  );
  for (
    const [name, label] of [
      ["NoHook", "none"],
      ["FileHook", "file: (a /bin/sh script)"],
      ["HttpHook", "http: (127.0.0.1, this process)"],
    ]
  ) {
    const sorted = [...latencies[name]].sort((a, b) => a - b);
    const overhead = percentile(sorted, 0.5) - percentile(base, 0.5);
    console.log(row(label, sorted, ` ${overhead.toFixed(2).padStart(12)} |`));
  }
  console.log(`\nLoad average at the end: ${load()}.`);
} finally {
  await emulator.stop();
  await hookServer.shutdown();
}
