// SPDX-License-Identifier: Apache-2.0
// Drives the emulator's control plane with AWS's SDK for JavaScript v3
// (@aws-sdk/client-iot), as a user's script would: an IoTClient with
// `endpoint` set and any credentials. Argument: JSON
//   {"endpoint": URL, "steps": [{"op": "DescribeCertificate", "input": {...}}, ...]}
// prints one JSON line per step: {"op", "ok": true, "output"} or
// {"op", "ok": false, "name", "status", "message"};
//   {"endpoint": URL, "bench": {"op", "input", "count"}}
// sends `count` requests one after another and prints their latencies in ms.
"use strict";
const iot = require("@aws-sdk/client-iot");
const { performance } = require("node:perf_hooks");

const args = JSON.parse(process.argv[2]);
const client = new iot.IoTClient({
  endpoint: args.endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "AKIDEMULATOR", secretAccessKey: "any-secret-works" },
  maxAttempts: 1,
});

function command(op, input) {
  const Command = iot[`${op}Command`];
  if (!Command) throw new Error(`@aws-sdk/client-iot has no ${op}Command`);
  return new Command(input ?? {});
}

async function steps() {
  for (const { op, input } of args.steps) {
    try {
      const output = await client.send(command(op, input));
      delete output.$metadata;
      console.log(JSON.stringify({ op, ok: true, output }));
    } catch (error) {
      console.log(JSON.stringify({
        op,
        ok: false,
        name: error.name,
        status: error.$metadata?.httpStatusCode,
        message: error.message,
      }));
    }
  }
}

async function bench() {
  const { op, input, count } = args.bench;
  const latencies = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await client.send(command(op, input));
    latencies.push(performance.now() - started);
  }
  console.log(JSON.stringify({ op, latencies }));
}

(args.bench ? bench() : steps()).then(
  () => client.destroy(),
  (error) => {
    console.error(error.stack);
    process.exit(1);
  },
);
