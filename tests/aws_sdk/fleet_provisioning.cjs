// SPDX-License-Identifier: Apache-2.0
// AWS's fleet provisioning sample flows, run with AWS's own JavaScript SDK
// (aws-iot-device-sdk-v2, native aws-crt) under Node.js against the emulator.
// Written for fleetprov's conformance tests (tests/aws_sdk_test.ts) from the
// SDK's API as AWS's published samples use it (service_clients/
// fleet_provisioning/{basic,csr}): an Mqtt5Client (or an MQTT 3.1.1
// connection) with mutual TLS, IotIdentityClientv2, createKeysAndCertificate
// or createCertificateFromCsr, then registerThing. Two departures, as any
// user of the emulator makes them: the port, and the emulator's root CA.
//
// Usage: node fleet_provisioning.cjs '<json>' with
//   { mqtt: 5 | 3, flow: "keys" | "csr" | "bogus-token" | "bad-csr" | "unknown-template",
//     endpoint, port, ca, cert, key, clientId, templateName, parameters?, csr?, verify? }
// Prints one JSON line per step on stdout: {"step": "connected"}, {"step": "created", ...},
// {"step": "registered", ...}, {"step": "verified"}, or {"step": "failed", "operation",
// "modeledError"?, "message"}; exits 0 when the flow ran to its end (a rejection included).
"use strict";

const { once } = require("node:events");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { iot, iotidentity, mqtt, mqtt5 } = require("aws-iot-device-sdk-v2");

const args = JSON.parse(process.argv[2]);
const TIMEOUT_MS = 15000;

function print(record) {
  process.stdout.write(JSON.stringify(record) + "\n");
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer in ${TIMEOUT_MS} ms`)),
      TIMEOUT_MS,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** An MQTT 5 client as AWS's samples build it; resolves once connected. */
async function connect5(cert, key, clientId) {
  const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
    args.endpoint,
    cert,
    key,
  );
  builder.withPort(args.port);
  builder.withCertificateAuthorityFromPath(undefined, args.ca);
  builder.withConnectProperties({ clientId, keepAliveIntervalSeconds: 1200 });
  const client = new mqtt5.Mqtt5Client(builder.build());
  const failed = once(client, "connectionFailure").then(([event]) => {
    throw new Error(`connection failure: ${event.error} ${JSON.stringify(event.connack ?? {})}`);
  });
  const connected = once(client, "connectionSuccess");
  client.start();
  await withTimeout(Promise.race([connected, failed]), "CONNACK");
  return {
    client,
    identity: () => iotidentity.IotIdentityClientv2.newFromMqtt5(client, rrOptions()),
    close: async () => {
      const stopped = once(client, "stopped");
      client.stop();
      await stopped;
      client.close();
    },
  };
}

/** An MQTT 3.1.1 connection as AWS's samples build it; resolves once connected. */
async function connect311(cert, key, clientId) {
  const builder = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(cert, key);
  builder.with_certificate_authority_from_path(undefined, args.ca);
  builder.with_endpoint(args.endpoint);
  builder.with_port(args.port);
  builder.with_client_id(clientId);
  builder.with_clean_session(true);
  const connection = new mqtt.MqttClient().new_connection(builder.build());
  await withTimeout(connection.connect(), "CONNACK");
  return {
    client: connection,
    identity: () => iotidentity.IotIdentityClientv2.newFromMqtt311(connection, rrOptions()),
    close: () => connection.disconnect(),
  };
}

function rrOptions() {
  return {
    maxRequestResponseSubscriptions: 2,
    maxStreamingSubscriptions: 0,
    operationTimeoutInSeconds: 10,
  };
}

const connect = args.mqtt === 5 ? connect5 : connect311;

/** Runs one operation; a rejection is printed as {"step": "failed"} and ends the flow. */
async function operation(name, run) {
  try {
    return await withTimeout(run(), name);
  } catch (error) {
    print({
      step: "failed",
      operation: name,
      message: String(error && error.message),
      modeledError: error && error.modeledError,
    });
    return undefined;
  }
}

async function createCertificate(identity) {
  switch (args.flow) {
    case "csr":
      return await operation("CreateCertificateFromCsr", () =>
        identity.createCertificateFromCsr({
          certificateSigningRequest: fs.readFileSync(args.csr, "utf8"),
        }));
    case "bad-csr":
      return await operation(
        "CreateCertificateFromCsr",
        () => identity.createCertificateFromCsr({ certificateSigningRequest: "not a CSR" }),
      );
    default:
      return await operation(
        "CreateKeysAndCertificate",
        () => identity.createKeysAndCertificate({}),
      );
  }
}

/** Connects with the new certificate (and key) as the new thing, as a provisioned device does. */
async function verify(created, thingName) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "aws-sdk-verify-"));
  const cert = path.join(dir, "certificate.pem.crt");
  const key = path.join(dir, "private.pem.key");
  fs.writeFileSync(cert, created.certificatePem);
  fs.writeFileSync(key, created.privateKey ?? fs.readFileSync(args.deviceKey), { mode: 0o600 });
  const session = await connect(cert, key, thingName);
  print({ step: "verified" });
  await session.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

async function main() {
  const session = await connect(args.cert, args.key, args.clientId);
  print({ step: "connected" });
  const identity = session.identity();
  const created = await createCertificate(identity);
  if (created) {
    print({
      step: "created",
      certificateId: created.certificateId,
      certificatePem: created.certificatePem,
      privateKeyHeader: created.privateKey ? created.privateKey.split("\n")[0] : undefined,
    });
    const request = {
      templateName: args.flow === "unknown-template" ? "NoSuchTemplate" : args.templateName,
      certificateOwnershipToken: args.flow === "bogus-token"
        ? "bogus-ownership-token"
        : created.certificateOwnershipToken,
    };
    if (args.parameters) request.parameters = args.parameters;
    const registered = await operation("RegisterThing", () => identity.registerThing(request));
    if (registered) {
      print({ step: "registered", ...registered });
      identity.close();
      await session.close();
      if (args.verify) await verify(created, registered.thingName);
      return;
    }
  }
  identity.close();
  await session.close();
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error && error.stack || error}\n`);
    process.exit(1);
  },
);
