// SPDX-License-Identifier: Apache-2.0
/**
 * End-to-end tests of the release artifacts: each single binary in dist/
 * (built here when stale) runs its own emulator (`fleetprov emulator`) and
 * provisions a device against it through the keys path and the CSR path, then
 * runs again and reports already provisioned. x64 runs natively, arm64 under
 * qemu-aarch64-static, armv7 under qemu-arm-static.
 *
 * Without QEMU the ARM tests are skipped loudly; FLEETPROV_REQUIRE_QEMU=1 (set
 * by .ci/run) makes that a failure.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { join } from "node:path";
import { build, type BuildReport, versionPattern } from "../build/mod.ts";
import { hostRunner } from "../build/host.ts";
import { TARGET_IDS, type TargetId } from "../build/targets.ts";
import { appendedBundles } from "../src/embedded.ts";
import { createCsr, generateKeyPair } from "../src/pki/mod.ts";
import { VERSION } from "../src/version.ts";
import {
  deviceHome,
  modeOf,
  runtimeConfigOf,
  SERIAL_TEMPLATE,
  tempDir,
  writeWithMode,
} from "./support/mod.ts";

const REQUIRE_QEMU = Deno.env.get("FLEETPROV_REQUIRE_QEMU") === "1";
/** Generous: ARM Node.js under QEMU takes seconds to start. */
const COMMAND_TIMEOUT_MS = 180_000;

const runnable = TARGET_IDS.filter((id) => hostRunner(id).ok);
for (const id of TARGET_IDS) {
  const runner = hostRunner(id);
  if (!runner.ok && !REQUIRE_QEMU) {
    console.error(
      `\n*** SKIPPING the linux-${id} binary tests: ${runner.reason}. Install ` +
        `qemu-user-static and the cross libraries (see .ci/run) to run them. ***\n`,
    );
  }
}

let built: Promise<BuildReport> | undefined;
/** Builds (or reuses, when up to date) the binaries this host can run. */
function binaries(): Promise<BuildReport> {
  built ??= build({ targets: runnable, log: () => {} });
  return built;
}

async function binaryFor(id: TargetId): Promise<string> {
  const report = await binaries();
  const target = report.targets.find((t) => t.id === id);
  assert(target, `the build produced no ${id} binary`);
  return target.path;
}

/** The command line that runs `binary` for `id` on this host. */
function commandLine(id: TargetId, binary: string, args: string[]): [string, string[]] {
  const runner = hostRunner(id);
  if (!runner.ok) throw new Error(`cannot run ${id} code here: ${runner.reason}`);
  const [command, ...rest] = [...runner.prefix, binary, ...args];
  return [command, rest];
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  id: TargetId,
  binary: string,
  args: string[],
  options: { home: string },
): Promise<Result> {
  const [command, fullArgs] = commandLine(id, binary, args);
  const output = await new Deno.Command(command, {
    args: fullArgs,
    env: { HOME: options.home, LOCK_FILE_PATH: join(options.home, "lock"), NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(COMMAND_TIMEOUT_MS),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A `fleetprov emulator` child process, started from the binary under test. */
interface RunningEmulator {
  configPath: string;
  stateDir: string;
  /** Its control plane's URL (`--control-port 0`). */
  controlUrl: string;
  /** Where its pre-provisioning hook (a shell script) appends each payload it gets. */
  hookLog: string;
  stop(): Promise<string>;
}

async function startBinaryEmulator(id: TargetId, binary: string): Promise<RunningEmulator> {
  const dir = tempDir("fleetprov-bin-emu-");
  const stateDir = join(dir, "state");
  const templateFile = join(dir, "template.json");
  await Deno.writeTextFile(templateFile, JSON.stringify(SERIAL_TEMPLATE));
  const hookLog = join(dir, "hook.log");
  const hook = join(dir, "hook.sh");
  await Deno.writeTextFile(
    hook,
    `#!/bin/sh\n{ cat; echo; } >> ${hookLog}\necho '{"allowProvisioning": true}'\n`,
    { mode: 0o755 },
  );
  const [command, args] = commandLine(id, binary, [
    "emulator",
    "--state-dir",
    stateDir,
    "--port",
    "0",
    "--template-file",
    templateFile,
    "--template-name",
    "BoardTemplate",
    "--control-port",
    "0",
    "--pre-provisioning-hook",
    `file:${hook}`,
  ]);
  const child = new Deno.Command(command, {
    args,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), COMMAND_TIMEOUT_MS);
  try {
    // Ready once it prints its addresses; its exit ends the loop too.
    while (!/^control: \S+:\d+$/m.test(stdout)) {
      const { value, done } = await reader.read();
      if (done) {
        const status = await child.status;
        throw new Error(
          `the ${id} emulator exited (${status.code}) before listening:\n${stdout}${await stderr}`,
        );
      }
      stdout += value;
    }
  } finally {
    clearTimeout(timer);
  }
  const configPath = join(stateDir, "device-client.conf");
  assert(stdout.includes(`config: ${configPath}`), `emulator output: ${stdout}`);
  const [, controlHost, controlPort] = /^control: (\S+):(\d+)$/m.exec(stdout)!;
  return {
    configPath,
    stateDir,
    controlUrl: `http://${controlHost}:${controlPort}`,
    hookLog,
    async stop() {
      child.kill("SIGTERM");
      const stopTimer = setTimeout(() => child.kill("SIGKILL"), COMMAND_TIMEOUT_MS);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        stdout += value;
      }
      const status = await child.status;
      clearTimeout(stopTimer);
      assertEquals(status.code, 0, `emulator exit; stderr: ${await stderr}`);
      return stdout;
    },
  };
}

/** Asserts the private key in `keyPem` belongs to the certificate in `certPem`. */
function assertKeyMatches(certPem: string, keyPem: string): void {
  const certKey = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" });
  const ownKey = createPublicKey(createPrivateKey(keyPem)).export({ type: "spki", format: "der" });
  assert(certKey.equals(ownKey), "the certificate is not for this private key");
}

/** AWS IoT's certificate id: hex SHA-256 of the DER certificate. */
function certificateIdOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256.replaceAll(":", "").toLowerCase();
}

interface RuntimeConfig {
  "completed-fp": boolean;
  cert: string;
  key: string;
  "thing-name": string;
  "device-config": Record<string, unknown>;
}

async function readRuntimeConfig(home: string): Promise<RuntimeConfig> {
  const path = join(home, ".aws-iot-device-client", "aws-iot-device-client-runtime.conf");
  assertEquals(modeOf(path), "640", "runtime config mode");
  return JSON.parse(await Deno.readTextFile(path))["runtime-config"];
}

async function provisionTwice(
  id: TargetId,
  binary: string,
  args: string[],
  options: { home: string },
): Promise<RuntimeConfig> {
  const first = await run(id, binary, args, options);
  assertEquals(first.code, 0, `first run failed:\n${first.stdout}${first.stderr}`);
  const config = await readRuntimeConfig(options.home);
  const certBefore = await Deno.readTextFile(config.cert);

  const second = await run(id, binary, args, options);
  assertEquals(second.code, 0, `second run failed:\n${second.stdout}${second.stderr}`);
  assertMatch(second.stdout + second.stderr, /already provisioned/i);
  assertEquals(await Deno.readTextFile(config.cert), certBefore, "second run changed the cert");
  return config;
}

for (const id of TARGET_IDS) {
  const runner = hostRunner(id);
  Deno.test({
    name:
      `binary linux-${id}: --version, emulator, keys, CSR and on-device key paths, then already provisioned`,
    ignore: !runner.ok && !REQUIRE_QEMU,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      if (!runner.ok) {
        throw new Error(`FLEETPROV_REQUIRE_QEMU=1 but ${runner.reason}: cannot test ${id}.`);
      }
      const binary = await binaryFor(id);

      await t.step("the artifact is executable and prints its version, no warnings", async () => {
        assertEquals(modeOf(binary), "755");
        const result = await run(id, binary, ["--version"], { home: tempDir() });
        assertEquals(result.code, 0);
        assertEquals(result.stderr, "");
        // fleetprov 0.1.0 (linux-arm64; Node.js 26.12.1, OpenSSL 3.5.9)
        const target = (await binaries()).targets.find((t) => t.id === id)!;
        assertMatch(result.stdout, versionPattern(id, target.nodeVersion));
        assert(result.stdout.startsWith(`fleetprov ${VERSION} `), result.stdout);
      });

      await t.step("--third-party-notices prints the notices embedded at build time", async () => {
        const result = await run(id, binary, ["--third-party-notices"], { home: tempDir() });
        const target = (await binaries()).targets.find((t) => t.id === id)!;
        assertEquals(result.code, 0, result.stderr);
        assertEquals(result.stdout, target.notices);
        assertMatch(
          result.stdout,
          new RegExp(`^  Node\\.js ${target.nodeVersion.replaceAll(".", "\\.")} `, "m"),
        );
        assertMatch(result.stdout, /^ {2}mqtt-packet 9\.\d+\.\d+ +MIT$/m);
      });

      await t.step(
        "lint runs from the bundle appended to the binary, not from its main script",
        async () => {
          const bundles = appendedBundles(binary);
          assertEquals(bundles.map((b) => b.name).sort(), ["FLEETPROV_EMULATOR", "FLEETPROV_LINT"]);
          // lint's own sentence is in its bundle only: the main script (every boot's) does not carry it.
          const bytes = await Deno.readFile(binary);
          const marker = new TextEncoder().encode("lint needs something to check");
          const at = indexOfBytes(bytes, marker);
          const lint = bundles.find((b) => b.name === "FLEETPROV_LINT")!;
          assert(at >= lint.offset && at < lint.offset + lint.length, `found at ${at}`);
          assertEquals(indexOfBytes(bytes.subarray(0, lint.offset), marker), -1);
          const dir = tempDir();
          const policy = join(dir, "claim.json");
          Deno.writeTextFileSync(
            policy,
            JSON.stringify({
              Version: "2012-10-17",
              Statement: [{ Effect: "Allow", Action: "iot:Connect", Resource: "*" }],
            }),
          );
          const result = await run(id, binary, [
            "lint",
            "--claim-policy",
            policy,
            "--endpoint",
            "a1b2c3-ats.iot.eu-west-1.amazonaws.com",
            "--cert",
            "/etc/fleetprov/claim.pem.crt",
            "--key",
            "/etc/fleetprov/claim.pem.key",
            "--root-ca",
            "/etc/fleetprov/AmazonRootCA1.pem",
            "--enable-fleet-provisioning",
            "true",
            "--fleet-provisioning-template-name",
            "BoardTemplate",
          ], { home: dir });
          assertEquals(result.code, 78, result.stdout + result.stderr);
          assertMatch(result.stdout, /needs iot:Subscribe, but no statement allows iot:Subscribe/);
          assertMatch(result.stdout, /^fleetprov lint: 8 errors, 2 warnings: .*\(exit 78\)\.$/m);
        },
      );

      const emulator = await startBinaryEmulator(id, binary);
      const issued: string[] = [];
      try {
        await t.step("keys path: the emulator mints the key pair", async () => {
          const home = deviceHome();
          const config = await provisionTwice(id, binary, [
            "--config-file",
            emulator.configPath,
            "--fleet-provisioning-template-parameters",
            `{"SerialNumber":"${id}-keys"}`,
          ], { home });
          const keys = join(home, ".aws-iot-device-client", "keys");
          assertEquals(modeOf(keys), "700");
          assertEquals(config["completed-fp"], true);
          assertEquals(config["thing-name"], `board-${id}-keys`);
          assertEquals(config.cert, join(keys, "active-certificate.pem.crt"));
          assertEquals(config.key, join(keys, "active-private.pem.key"));
          assertEquals(config["device-config"].Foo, "Bar");
          assertEquals(config["device-config"].Site, "factory-1");
          assertEquals(modeOf(config.cert), "644");
          assertEquals(modeOf(config.key), "600");
          const certPem = await Deno.readTextFile(config.cert);
          assertKeyMatches(certPem, await Deno.readTextFile(config.key));
          const certificateId = certificateIdOf(certPem);
          assertEquals(modeOf(join(keys, `${certificateId}-certificate.pem.crt`)), "644");
          assertEquals(modeOf(join(keys, `${certificateId}-private.pem.key`)), "600");
          issued.push(certificateId);
        });

        await t.step("CSR path: the private key never leaves the device", async () => {
          const home = deviceHome();
          const secrets = join(home, "secrets");
          await Deno.mkdir(secrets, { mode: 0o700 });
          const { keys, privateKeyPem } = await generateKeyPair("ec-p256");
          const keyPath = join(secrets, "device.key");
          const csrPath = join(secrets, "device.csr");
          writeWithMode(keyPath, privateKeyPem, 0o600);
          writeWithMode(csrPath, await createCsr(`${id}-csr`, keys), 0o600);
          const config = await provisionTwice(id, binary, [
            "--config-file",
            emulator.configPath,
            "--csr-file",
            csrPath,
            "--device-key",
            keyPath,
            "--fleet-provisioning-template-parameters",
            `{"SerialNumber":"${id}-csr"}`,
          ], { home });
          assertEquals(config["completed-fp"], true);
          assertEquals(config["thing-name"], `board-${id}-csr`);
          assertEquals(config.key, keyPath);
          assertEquals(modeOf(config.cert), "644");
          const certPem = await Deno.readTextFile(config.cert);
          assertKeyMatches(certPem, privateKeyPem);
          issued.push(certificateIdOf(certPem));
          const keyFiles = [...Deno.readDirSync(join(home, ".aws-iot-device-client", "keys"))]
            .filter((entry) => entry.name.endsWith(".key"));
          assertEquals(keyFiles, [], "the CSR path wrote a private key");
        });

        const generated = deviceHome();
        await t.step("on-device key: the board generates its key and CSR", async () => {
          const home = generated;
          const config = await provisionTwice(id, binary, [
            "--config-file",
            emulator.configPath,
            "--generate-key",
            "ec-p256",
            "--fleet-provisioning-template-parameters",
            `{"SerialNumber":"${id}-gen"}`,
          ], { home });
          const keys = join(home, ".aws-iot-device-client", "keys");
          assertEquals(config["thing-name"], `board-${id}-gen`);
          assertEquals(config.key, join(keys, "active-private.pem.key"));
          assertEquals(modeOf(config.key), "600");
          const certPem = await Deno.readTextFile(config.cert);
          assertKeyMatches(certPem, await Deno.readTextFile(config.key));
          issued.push(certificateIdOf(certPem));
        });

        await t.step(
          "rotate --force with the emulator's device-client.conf alone (its rotation template)",
          async () => {
            const before = certificateIdOf(
              await Deno.readTextFile(runtimeConfigOf(generated).cert as string),
            );
            const result = await run(id, binary, [
              "rotate",
              "--config-file",
              emulator.configPath,
              "--force",
            ], { home: generated });
            assertEquals(result.code, 0, result.stdout + result.stderr);
            assertMatch(
              result.stdout,
              new RegExp(`Rotated thing board-${id}-gen from certificate ${before} to \\w{64};`),
            );
            const after = certificateIdOf(
              await Deno.readTextFile(runtimeConfigOf(generated).cert as string),
            );
            assert(after !== before, "the certificate changed");
          },
        );

        await t.step("the control plane and the hook work in the binary's emulator", async () => {
          const payloads = (await Deno.readTextFile(emulator.hookLog)).trim().split("\n")
            .map((line) => JSON.parse(line));
          assertEquals(payloads.map((p) => p.parameters.SerialNumber), [
            `${id}-keys`,
            `${id}-csr`,
            `${id}-gen`,
          ]);
          assertEquals(payloads.map((p) => p.certificateId), issued);
          const call = async (method: string, path: string) => {
            const response = await fetch(`${emulator.controlUrl}${path}`, { method });
            const text = await response.text();
            return { status: response.status, json: text ? JSON.parse(text) : undefined };
          };
          const thing = await call("GET", `/things/board-${id}-keys`);
          assertEquals(thing.json.attributes, { serial: `${id}-keys`, location: "factory-1" });
          const path = `/certificates/${issued[0]}`;
          assertEquals((await call("PUT", `${path}?newStatus=INACTIVE`)).status, 200);
          assertEquals((await call("GET", path)).json.certificateDescription.status, "INACTIVE");
          const unknown = await call("POST", "/things/x");
          assertEquals(unknown.status, 404);
          assertMatch(unknown.json.message, /does not implement CreateThing/);
        });
      } finally {
        const output = await emulator.stop();
        assertMatch(output, /stopped \(SIGTERM\)/);
      }

      await t.step(
        "the emulator registered every certificate (registry written on stop)",
        async () => {
          const registry = await Deno.readTextFile(join(emulator.stateDir, "registry.json"));
          assertEquals(issued.length, 3);
          for (const certificateId of issued) {
            assert(registry.includes(certificateId), certificateId);
          }
        },
      );
    },
  });
}

/** Where `needle` first occurs in `haystack`, or -1. */
function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  const first = needle[0];
  for (let i = haystack.indexOf(first); i >= 0; i = haystack.indexOf(first, i + 1)) {
    if (i + needle.length > haystack.length) return -1;
    let match = true;
    for (let k = 1; k < needle.length && match; k++) match = haystack[i + k] === needle[k];
    if (match) return i;
  }
  return -1;
}
