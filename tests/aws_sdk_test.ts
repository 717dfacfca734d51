// SPDX-License-Identifier: Apache-2.0
/**
 * Conformance: AWS's own JavaScript SDK (aws-iot-device-sdk-v2 1.28.0, native
 * aws-crt) runs the fleet provisioning flows of AWS's published samples
 * against the emulator, over MQTT 5 (Mqtt5Client + IotIdentityClientv2
 * .newFromMqtt5, as the current samples) and MQTT 3.1.1 (newFromMqtt311):
 * the keys path (RSA 2048 keys the SDK's TLS stack then connects with), the
 * CSR path, and the rejections AWS documents (a bogus ownership token, a
 * garbage CSR, an unknown template). The SDK installs at test time (see
 * tests/support/aws_sdk.ts) and runs under the Node.js the build pins.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  awsSdk,
  awsSdkMissing,
  boardEmulator,
  concurrentSteps,
  runAwsSample,
  type SdkStep,
  skipWhenMissing,
  tempDir,
  TEMPLATE_NAME,
  type TestEmulator,
} from "./support/mod.ts";
import { createCsr, generateKeyPair } from "../src/pki/mod.ts";
import type { EmulatorOptions } from "../src/emulator/mod.ts";

const ARN = "arn:aws:iot:us-east-1:123456789012:";

/** The sample's arguments against an emulator: its endpoint, port, root CA and claim. */
function sampleArgs(emulator: TestEmulator, mqtt: 3 | 5, extra: Record<string, unknown>) {
  return {
    mqtt,
    endpoint: emulator.endpoint,
    port: emulator.port,
    ca: emulator.caPath,
    cert: emulator.claim.certPath,
    key: emulator.claim.keyPath,
    clientId: `aws-sdk-${mqtt}-${crypto.randomUUID().slice(0, 8)}`,
    templateName: TEMPLATE_NAME,
    ...extra,
  };
}

function step(steps: SdkStep[], name: SdkStep["step"]): SdkStep {
  const found = steps.find((s) => s.step === name);
  assert(found, `no "${name}" step in ${JSON.stringify(steps)}`);
  return found;
}

async function sample(
  options: Partial<EmulatorOptions>,
  run: (emulator: TestEmulator) => Record<string, unknown>,
): Promise<{ steps: SdkStep[]; emulator: TestEmulator }> {
  const sdk = await awsSdk();
  const emulator = await boardEmulator(options);
  try {
    const result = await runAwsSample(sdk, run(emulator));
    assertEquals(result.code, 0, `${JSON.stringify(result.steps)}\n${result.stderr}`);
    return { steps: result.steps, emulator };
  } finally {
    await emulator.close();
  }
}

/** The sample flows, each over MQTT 5 and MQTT 3.1.1. */
function flows(mqtt: 3 | 5): { name: string; fn: () => Promise<void> }[] {
  const v = mqtt === 5 ? "MQTT 5" : "MQTT 3.1.1";
  return [
    {
      name: `${v}: keys path, RSA 2048 key in PKCS#1 PEM, then the SDK connects with it`,
      fn: async () => {
        const { steps, emulator } = await sample({}, (e) =>
          sampleArgs(e, mqtt, {
            flow: "keys",
            parameters: { SerialNumber: `SN-SDK-KEYS-${mqtt}` },
            verify: true,
          }));
        assertEquals(steps.map((s) => s.step), ["connected", "created", "registered", "verified"]);
        assertEquals(step(steps, "created").privateKeyHeader, "-----BEGIN RSA PRIVATE KEY-----");
        const thingName = step(steps, "registered").thingName as string;
        assertEquals(thingName, `board-SN-SDK-KEYS-${mqtt}`);
        assertEquals(step(steps, "registered").deviceConfiguration, {
          Foo: "Bar",
          Site: "factory-1",
          Tricky: 'quote " backslash \\ é',
        });
        const id = step(steps, "created").certificateId as string;
        assertEquals(emulator.registry.certificate(id)?.status, "ACTIVE");
        assertEquals(emulator.registry.thing(thingName)?.principals, [id]);
      },
    },
    {
      name: `${v}: CSR path, the certificate carries the CSR's key`,
      fn: async () => {
        const dir = tempDir();
        const pair = await generateKeyPair("ec-p256");
        const csr = join(dir, "device.csr");
        const deviceKey = join(dir, "device.key");
        writeFileSync(csr, await createCsr("sdk-device", pair.keys));
        writeFileSync(deviceKey, pair.privateKeyPem, { mode: 0o600 });
        const { steps } = await sample({ keyPoolSize: 0 }, (e) =>
          sampleArgs(e, mqtt, {
            flow: "csr",
            csr,
            deviceKey,
            parameters: { SerialNumber: `SN-SDK-CSR-${mqtt}` },
            verify: true,
          }));
        assertEquals(steps.map((s) => s.step), ["connected", "created", "registered", "verified"]);
        const pem = step(steps, "created").certificatePem as string;
        assert(new X509Certificate(pem).checkPrivateKey(createPrivateKey(pair.privateKeyPem)));
      },
    },
    {
      name: `${v}: a bogus ownership token is rejected with 400 InvalidCertificateOwnershipToken`,
      fn: async () => {
        const { steps, emulator } = await sample(
          { keyType: "ec-p256" },
          (e) =>
            sampleArgs(e, mqtt, {
              flow: "bogus-token",
              parameters: { SerialNumber: "SN-SDK-BOGUS" },
            }),
        );
        const failed = step(steps, "failed");
        assertEquals(failed.operation, "RegisterThing");
        assertEquals(failed.modeledError, {
          statusCode: 400,
          errorCode: "InvalidCertificateOwnershipToken",
          errorMessage: "Certificate ownership token is invalid or has expired.",
        });
        assertEquals(emulator.registry.things(), []);
      },
    },
    {
      name: `${v}: a garbage CSR is rejected with 400 InvalidCsr`,
      fn: async () => {
        const { steps } = await sample(
          { keyPoolSize: 0 },
          (e) => sampleArgs(e, mqtt, { flow: "bad-csr" }),
        );
        const failed = step(steps, "failed");
        assertEquals(failed.operation, "CreateCertificateFromCsr");
        const error = failed.modeledError as Record<string, unknown>;
        assertEquals([error.statusCode, error.errorCode], [400, "InvalidCsr"]);
      },
    },
    {
      name:
        `${v}: an unknown template the claim policy allows is rejected with 404 ResourceNotFound`,
      fn: async () => {
        const anyTemplate = {
          Statement: [
            { Effect: "Allow", Action: "iot:Connect", Resource: "*" },
            {
              Effect: "Allow",
              Action: ["iot:Publish", "iot:Receive", "iot:Subscribe"],
              Resource: [
                `${ARN}topic/$aws/certificates/create/*`,
                `${ARN}topic/$aws/provisioning-templates/*/provision/*`,
                `${ARN}topicfilter/$aws/certificates/create/*`,
                `${ARN}topicfilter/$aws/provisioning-templates/*/provision/*`,
              ],
            },
          ],
        };
        const { steps } = await sample(
          { claimPolicy: anyTemplate, keyType: "ec-p256" },
          (e) => sampleArgs(e, mqtt, { flow: "unknown-template" }),
        );
        const failed = step(steps, "failed");
        assertEquals(failed.operation, "RegisterThing");
        const error = failed.modeledError as Record<string, unknown>;
        assertEquals([error.statusCode, error.errorCode], [404, "ResourceNotFound"]);
        assertMatch(String(error.errorMessage), /NoSuchTemplate/);
      },
    },
  ];
}

Deno.test({
  name: "AWS IoT Device SDK v2 (JavaScript) runs the fleet provisioning sample flows",
  ignore: skipWhenMissing(awsSdkMissing(), {
    require: "FLEETPROV_REQUIRE_TOOLS",
    what: "the AWS SDK conformance tests",
  }),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await awsSdk(); // install once, before the steps run side by side
    await concurrentSteps(t, [...flows(5), ...flows(3)], 2);
  },
});
