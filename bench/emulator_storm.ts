// SPDX-License-Identifier: Apache-2.0
/**
 * Storm benchmark of the emulator: N devices provision themselves (claim
 * CONNECT, CreateKeysAndCertificate or CreateCertificateFromCsr, RegisterThing,
 * disconnect, CONNECT with the new certificate) with C in flight at a time.
 * The emulator runs in its own process; this one plays the devices. Prints
 * provisions per second, latency percentiles and the emulator's RSS after
 * each round (flat RSS across rounds = no per-device leak).
 *
 *   deno run -A bench/emulator_storm.ts [--devices 500] [--concurrency 50] [--rounds 3] [--csr]
 *     [--no-reconnect] [--node]
 *
 * `--node` runs the emulator as the release does: main.ts bundled by
 * build/bundle.ts, under the `node` on PATH (`fleetprov emulator`).
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import mqtt, { type MqttClient } from "mqtt";
import { startEmulator } from "../src/emulator/mod.ts";
import { createCsr, generateKeyPair } from "../src/pki/mod.ts";
import { operationTopics } from "../src/protocol/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    devices: { type: "string", default: "500" },
    concurrency: { type: "string", default: "50" },
    rounds: { type: "string", default: "3" },
    csr: { type: "boolean", default: false },
    "no-reconnect": { type: "boolean", default: false },
    node: { type: "boolean", default: false },
    "serve-emulator": { type: "string" },
  },
});

if (values["serve-emulator"]) {
  // Child mode: run the emulator, print its port, serve until stdin closes.
  // EC keys, the fast path: this measures the emulator, not RSA key generation.
  const emulator = await startEmulator({
    stateDir: values["serve-emulator"],
    port: 0,
    keyType: "ec-p256",
  });
  console.log(`listening: ${emulator.host}:${emulator.port}`);
  for await (const _ of Deno.stdin.readable) { /* wait for EOF */ }
  await emulator.close();
  Deno.exit(0);
}

const devices = Number(values.devices);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
const stateDir = await Deno.makeTempDir({ prefix: "fleetprov-storm-" });
let command: Deno.Command;
if (values.node) {
  const { bundle } = await import("../build/bundle.ts");
  const root = new URL("../", import.meta.url).pathname;
  const bundled = await bundle(`${root}main.ts`, root, { nodeMajor: 20 });
  const file = `${stateDir}/fleetprov.cjs`;
  await Deno.writeFile(file, bundled.code);
  command = new Deno.Command("node", {
    args: [
      ...(Deno.env.get("STORM_NODE_FLAGS")?.split(" ") ?? []),
      file,
      "emulator",
      "--state-dir",
      `${stateDir}/state`,
      "--port",
      "0",
      "--key-type",
      "ec-p256",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  });
} else {
  command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(Deno.env.get("STORM_V8_FLAGS") ? [`--v8-flags=${Deno.env.get("STORM_V8_FLAGS")}`] : []),
      new URL(import.meta.url).pathname,
      "--serve-emulator",
      `${stateDir}/state`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  });
}
const child = command.spawn();
const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
let first = "";
while (!/listening: .*:(\d+)\n/.test(first)) {
  const { value, done } = await reader.read();
  if (done) throw new Error(`the emulator exited before listening: ${first}`);
  first += value;
}
const port = Number(/listening: .*:(\d+)\n/.exec(first)![1]);
const conf = JSON.parse(readFileSync(`${stateDir}/state/device-client.conf`, "utf8"));
const ca = readFileSync(conf["root-ca"], "utf8");
const claim = { cert: readFileSync(conf.cert, "utf8"), key: readFileSync(conf.key, "utf8") };
const templateName = conf["fleet-provisioning"]["template-name"];

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** CPU time (user + system) of a process in ms, from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
}

function open(cert: string, key: string, clientId: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({
      protocol: "mqtts",
      host: "localhost",
      port,
      ca,
      cert,
      key,
      clientId,
      reconnectPeriod: 0,
      connectTimeout: 30_000,
    });
    client.once("connect", () => resolve(client));
    client.once("error", (e) => {
      client.end(true);
      reject(e);
    });
  });
}

async function call(
  client: MqttClient,
  operation: "CreateKeysAndCertificate" | "CreateCertificateFromCsr" | "RegisterThing",
  body: unknown,
): Promise<Record<string, string>> {
  const topics = operationTopics(operation, { templateName });
  const answer = new Promise<Record<string, string>>((resolve, reject) => {
    const onMessage = (topic: string, payload: Uint8Array) => {
      if (topic !== topics.accepted && topic !== topics.rejected) return;
      client.off("message", onMessage);
      const parsed = JSON.parse(new TextDecoder().decode(payload));
      if (topic === topics.rejected) reject(new Error(`${operation}: ${JSON.stringify(parsed)}`));
      else resolve(parsed);
    };
    client.on("message", onMessage);
  });
  client.publish(topics.request, JSON.stringify(body), { qos: 1 });
  return await answer;
}

// CSRs are made before the clock starts: key generation is the device's cost.
const csrs: { csr: string; key: string }[] = [];
if (values.csr) {
  for (let i = 0; i < devices; i++) {
    const pair = await generateKeyPair("ec-p256");
    csrs.push({ csr: await createCsr(`d${i}`, pair.keys), key: pair.privateKeyPem });
  }
}

async function provision(index: number, round: number): Promise<number> {
  const started = performance.now();
  const client = await open(claim.cert, claim.key, `storm-${round}-${index}`);
  const create = values.csr ? "CreateCertificateFromCsr" : "CreateKeysAndCertificate";
  const createTopics = operationTopics(create, { templateName });
  const registerTopics = operationTopics("RegisterThing", { templateName });
  await client.subscribeAsync([
    createTopics.accepted,
    createTopics.rejected,
    registerTopics.accepted,
    registerTopics.rejected,
  ], { qos: 1 });
  const created = await call(
    client,
    create,
    values.csr ? { certificateSigningRequest: csrs[index].csr } : {},
  );
  const registered = await call(client, "RegisterThing", {
    certificateOwnershipToken: created.certificateOwnershipToken,
  });
  await client.endAsync();
  if (!values["no-reconnect"]) {
    const key = values.csr ? csrs[index].key : created.privateKey;
    const device = await open(created.certificatePem, key, registered.thingName);
    await device.endAsync();
  }
  return performance.now() - started;
}

console.log(
  `storm: ${devices} devices x ${rounds} rounds, ${concurrency} in flight, ` +
    `${values.csr ? "CSR" : "keys"} path, ${values["no-reconnect"] ? "no " : ""}reconnect, ` +
    `emulator under ${values.node ? "Node.js (bundled main.ts)" : "Deno"}; ` +
    `emulator RSS at start ${rssMiB(child.pid).toFixed(1)} MiB`,
);
for (let round = 1; round <= rounds; round++) {
  const latencies: number[] = [];
  let next = 0;
  const cpuBefore = cpuMs(child.pid);
  const selfBefore = cpuMs(Deno.pid);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < devices) {
        const index = next++;
        latencies.push(await provision(index, round));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const emulatorCpu = (cpuMs(child.pid) - cpuBefore) / devices;
  const devicesCpu = (cpuMs(Deno.pid) - selfBefore) / devices;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  console.log(
    `round ${round}: ${(devices / seconds).toFixed(1)} provisions/s (${seconds.toFixed(2)} s), ` +
      `latency p50 ${pct(0.5).toFixed(0)} ms p95 ${pct(0.95).toFixed(0)} ms max ${
        pct(1).toFixed(0)
      } ms; CPU per provision: emulator ${emulatorCpu.toFixed(2)} ms, devices ${
        devicesCpu.toFixed(2)
      } ms (emulator alone on one core: ~${(1000 / emulatorCpu).toFixed(0)}/s); emulator RSS ${
        rssMiB(child.pid).toFixed(1)
      } MiB`,
  );
}
if (values.node) child.kill("SIGTERM");
await child.stdin.close();
await child.status;
await Deno.remove(stateDir, { recursive: true });
