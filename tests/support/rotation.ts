// SPDX-License-Identifier: Apache-2.0
/**
 * Rotation in tests, against the emulator as it is (its options only): one
 * template serves provisioning and rotation (the thing is named by the
 * SerialNumber parameter both send; the rotation's own parameters land in
 * the device configuration), and the device policy (FPCertPolicy, which the
 * template attaches) lets a device use the rotation topics as its own thing.
 *
 * @module
 */
import { createHash, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Emulator, EmulatorOptions } from "../../src/emulator/mod.ts";
import type { CrashPoint } from "../../src/failpoints.ts";
import { topicStatements } from "../../src/policy/mod.ts";
import { assert, assertEquals } from "./assert.ts";
import { deviceArgs, type RunResult, runToCrashPoint } from "./cli.ts";
import { configDirOf, runtimeConfigOf } from "./device.ts";
import { TEMPLATE_NAME, type TestEmulator, testEmulator } from "./emulator.ts";
import { connect } from "./mqtt.ts";

/** ARN prefix of the test policies (the emulator matches the resource part). */
const ARN = "arn:aws:iot:us-east-1:123456789012:";

/**
 * A template for provisioning and rotation: the thing is `board-<SerialNumber>`;
 * `ThingName` and `OldCertificateId` (what a rotation adds) default to "none"
 * and are echoed in the device configuration.
 */
export const ROTATION_TEST_TEMPLATE = {
  Parameters: {
    SerialNumber: { Type: "String" },
    ThingName: { Type: "String", Default: "none" },
    OldCertificateId: { Type: "String", Default: "none" },
    "AWS::IoT::Certificate::Id": { Type: "String" },
  },
  Resources: {
    certificate: {
      Type: "AWS::IoT::Certificate",
      Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "Active" },
    },
    policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "FPCertPolicy" } },
    thing: {
      Type: "AWS::IoT::Thing",
      Properties: { ThingName: { "Fn::Join": ["", ["board-", { Ref: "SerialNumber" }]] } },
    },
  },
  DeviceConfiguration: {
    Foo: "Bar",
    RotatedThing: { Ref: "ThingName" },
    RotatedFrom: { Ref: "OldCertificateId" },
  },
};

/**
 * The device policy of the README's rotation section: connect only as its
 * own thing; the sample's thing topics; CreateCertificateFromCsr,
 * CreateKeysAndCertificate and the rotation template's topics.
 */
export function rotatingDevicePolicy(templateName = TEMPLATE_NAME): Record<string, unknown> {
  const topics = [
    "$aws/things/${iot:Connection.Thing.ThingName}/*",
    "$aws/certificates/create-from-csr/*",
    "$aws/certificates/create/*",
    `$aws/provisioning-templates/${templateName}/provision/*`,
  ];
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: `${ARN}client/\${iot:Connection.Thing.ThingName}`,
      },
      ...topicStatements(ARN, topics),
    ],
  };
}

/** The emulator options of a fleet that rotates (the default FPCertPolicy replaced). */
export const ROTATING: Partial<EmulatorOptions> = {
  templateName: TEMPLATE_NAME,
  template: ROTATION_TEST_TEMPLATE,
  policies: { FPCertPolicy: rotatingDevicePolicy() },
};

/** An emulator serving {@linkcode ROTATION_TEST_TEMPLATE} with the rotating device policy. */
export function rotationEmulator(options: Partial<EmulatorOptions> = {}): Promise<TestEmulator> {
  return testEmulator({ ...ROTATING, ...options });
}

/**
 * `fleetprov rotate --force` on the board in `options.home`, killed by
 * itself at crash point `options.point` as a power cut would; asserts it
 * died there (SIGKILL) and returns the run.
 */
export async function cutRotation(
  emulator: Emulator,
  options: { home: string; point: CrashPoint },
): Promise<RunResult> {
  const cut = await runToCrashPoint(rotateArgs(emulator, { extra: ["--force"] }), options);
  assertEquals(cut.signal, "SIGKILL", `${options.point}: killed\n${cut.stdout}${cut.stderr}`);
  return cut;
}

/** Arguments of `fleetprov rotate` against `emulator`, the same template rotating. */
export function rotateArgs(
  emulator: Emulator,
  options: { serial?: string; extra?: string[]; retry?: string[]; template?: string } = {},
): string[] {
  return [
    "rotate",
    ...deviceArgs(emulator, {
      ...options,
      serial: options.serial ?? "SN-ROT",
      extra: [
        "--rotation-template-name",
        options.template ?? TEMPLATE_NAME,
        ...(options.extra ?? []),
      ],
    }),
  ];
}

/** The certificate id (hex SHA-256 of the DER) of a PEM certificate. */
export function certificateIdOfPem(pem: string): string {
  const der = new X509Certificate(pem).raw;
  return createHash("sha256").update(der).digest("hex");
}

/** The certificate id the device's runtime config points at. */
export function activeCertificateId(home: string): string {
  return certificateIdOfPem(readFileSync(String(runtimeConfigOf(home).cert), "utf8"));
}

/**
 * Asserts the runtime config's identity connects to the emulator as its
 * thing (a real mqtt.js client over mutual TLS), and returns its certificate id.
 */
export async function assertConnects(emulator: Emulator, home: string): Promise<string> {
  const rc = runtimeConfigOf(home);
  const client = await connect(emulator, {
    cert: readFileSync(String(rc.cert), "utf8"),
    key: readFileSync(String(rc.key), "utf8"),
  }, String(rc["thing-name"]));
  await client.endAsync();
  return activeCertificateId(home);
}

/** Asserts the identity is refused (the emulator hangs up or says no). */
export async function assertRefused(
  emulator: Emulator,
  credentials: { cert: string; key: string },
  clientId: string,
): Promise<void> {
  let connected = false;
  try {
    const client = await connect(emulator, credentials, clientId);
    connected = true;
    await client.endAsync();
  } catch {
    // refused, as expected
  }
  assert(!connected, `${clientId} connected with a certificate that should be refused`);
}

/** The rotation journal's record, if any. */
export function rotationRecord(home: string): Record<string, unknown> | undefined {
  const path = join(configDirOf(home), "fleetprov-rotation.json");
  return existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : undefined;
}

/** Asserts the journal records a finished rotation from `oldId` to the active certificate. */
export function assertRotated(home: string, oldId: string): string {
  const active = activeCertificateId(home);
  assert(active !== oldId, "the active certificate changed");
  const record = rotationRecord(home);
  assertEquals(record?.step, "done", JSON.stringify(record));
  assertEquals(record?.certificateId, active);
  assertEquals((record?.replaces as { certificateId: string }).certificateId, oldId);
  assert(!JSON.stringify(record).includes("PRIVATE KEY"), "the done record holds no key");
  assert(!("ownershipToken" in record!), "the done record holds no token");
  return active;
}
