// SPDX-License-Identifier: Apache-2.0
/**
 * `--output json`: one JSON object on stdout at the end of every provisioning
 * run (provisioned, already provisioned, config error, rejection, network
 * failure at the deadline), logs on stderr only, no secrets. Runs the real CLI
 * against the real emulator.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { X509Certificate } from "node:crypto";
import { createServer } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ExitCode, FleetprovError } from "../src/errors.ts";
import { causeOf, type ResultLine } from "../src/result_line.ts";
import { VERSION } from "../src/version.ts";
import {
  deviceHome,
  FAST_RETRY,
  runFleetprov,
  type RunResult,
  SERIAL_TEMPLATE,
  tempDir,
  TEMPLATE_NAME,
  testEmulator,
} from "./support/mod.ts";

/** The cause the result line must give for an exit code: its ExitCode name, kebab-cased. */
function expectedCause(code: number): string {
  const name = Object.entries(ExitCode).find(([, value]) => value === code)?.[0];
  assert(name, `no ExitCode named ${code}`);
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

/** Parses stdout, which must be exactly one line holding one JSON object. */
function resultOf(result: RunResult): ResultLine {
  const lines = result.stdout.split("\n");
  assertEquals(lines.length, 2, `stdout is not one line:\n${result.stdout}`);
  assertEquals(lines[1], "");
  const line = JSON.parse(lines[0]);
  assertEquals(typeof line, "object");
  assertEquals(line.fleetprov, VERSION);
  assertEquals(line.exitCode, result.code, "exitCode is the process exit code");
  assertEquals(typeof line.timings.totalMs, "number");
  assert(line.timings.totalMs > 0);
  return line;
}

function certificateIdOf(path: string): string {
  return new X509Certificate(readFileSync(path)).fingerprint256.replaceAll(":", "").toLowerCase();
}

function args(configPath: string, serial: string, extra: string[] = []): string[] {
  return [
    "--config-file",
    configPath,
    "--fleet-provisioning-template-parameters",
    JSON.stringify({ SerialNumber: serial }),
    "--output",
    "json",
    ...extra,
  ];
}

Deno.test({
  name: "--output json: provisioned, then already provisioned; logs on stderr, no secrets",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const emulator = await testEmulator({ templateName: TEMPLATE_NAME, template: SERIAL_TEMPLATE });
    try {
      const home = deviceHome();
      // Logging to STDOUT: its INFO lines would land on stdout without --output json.
      const first = await runFleetprov(
        args(emulator.configPath, "SN-JSON-1", ["--log-level", "DEBUG", "--log-type", "STDOUT"]),
        { home },
      );
      assertEquals(first.code, ExitCode.Ok, first.stderr);
      const line = resultOf(first);
      const keys = join(home, ".aws-iot-device-client", "keys");
      const runtimeConfigPath = join(
        home,
        ".aws-iot-device-client",
        "aws-iot-device-client-runtime.conf",
      );
      assertEquals(line.outcome, "provisioned");
      assertEquals(line.thingName, "board-SN-JSON-1");
      assertEquals(line.files, {
        certificate: join(keys, "active-certificate.pem.crt"),
        privateKey: join(keys, "active-private.pem.key"),
        runtimeConfig: runtimeConfigPath,
      });
      assertEquals(line.certificateId, certificateIdOf(line.files.certificate!));
      assert(emulator.registry.certificate(line.certificateId!), "the emulator knows the cert");
      assertEquals(line.retries, 0);
      assertEquals(line.error, null);
      const { runtimeConfigWrittenMs, verifiedMs, totalMs } = line.timings;
      assert(runtimeConfigWrittenMs !== null && verifiedMs !== null);
      assert(runtimeConfigWrittenMs <= verifiedMs && verifiedMs <= totalMs, JSON.stringify(line));
      // The logs went to stderr, all of them.
      assertMatch(first.stderr, /\[INFO\] Provisioned thing board-SN-JSON-1/);
      assert(!first.stdout.includes("PRIVATE KEY"), "the result line holds a private key");
      assert(!/ownershipToken/i.test(first.stdout), "the result line mentions the token");
      const keyBody = readFileSync(line.files.privateKey!, "utf8").split("\n")[1];
      assert(!first.stdout.includes(keyBody), "the result line holds key material");

      const second = await runFleetprov(args(emulator.configPath, "SN-JSON-1"), { home });
      assertEquals(second.code, ExitCode.Ok, second.stderr);
      const again = resultOf(second);
      assertEquals(again.outcome, "already-provisioned");
      assertEquals(again.thingName, line.thingName);
      assertEquals(again.certificateId, line.certificateId);
      assertEquals(again.files, line.files);
      assertEquals(again.timings.runtimeConfigWrittenMs, null);
      assertEquals(again.error, null);
      assertMatch(second.stderr, /Already provisioned/);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test("--output json: a config error is a failed result with the config cause", async () => {
  const home = deviceHome();
  const missing = join(tempDir(), "missing.conf");
  const result = await runFleetprov(["--config-file", missing, "--output=json"], { home });
  assertEquals(result.code, ExitCode.Config);
  const line = resultOf(result);
  assertEquals(line.outcome, "failed");
  assertEquals(line.error?.cause, expectedCause(ExitCode.Config));
  assert(line.error?.message.includes(missing), line.error?.message);
  assertEquals(line.thingName, null);
  assertEquals(line.certificateId, null);
  assertEquals(line.files, { certificate: null, privateKey: null, runtimeConfig: null });
  assertMatch(result.stderr, /^fleetprov: Config file .* does not exist\.$/m);
});

Deno.test("--output json: several problems stay apart (error.problems, one line each in message); a newline in a path stays inside its problem", async () => {
  const home = deviceHome();
  const dir = tempDir();
  const result = await runFleetprov([
    "--endpoint",
    "localhost",
    "--cert",
    join(dir, "a\nfleetprov: forged.crt"),
    "--key",
    join(dir, "missing.key"),
    "--enable-fleet-provisioning",
    "true",
    "--output",
    "json",
  ], { home });
  assertEquals(result.code, ExitCode.Config, result.stderr);
  const line = resultOf(result);
  const problems = line.error!.problems;
  assertEquals(problems.length, 3, problems.join("\n"));
  assertMatch(problems[0], /^The template name is missing/);
  assertEquals(
    problems[1],
    `Certificate ${dir}/a\\nfleetprov: forged.crt (from --cert) does not exist.`,
  );
  assertEquals(problems[2], `Private key ${dir}/missing.key (from --key) does not exist.`);
  // message: the same problems, one per line, as stderr prints them.
  assertEquals(line.error!.message, problems.join("\n"));
  const stderr = result.stderr.trim().split("\n");
  assertEquals(stderr, problems.map((p) => `fleetprov: ${p}`));
});

Deno.test("--output json: commands other than a provisioning run refuse it, in JSON", async () => {
  const home = deviceHome();
  for (const extra of [["check"], ["--help"], ["--version"], ["--third-party-notices"]]) {
    const result = await runFleetprov([...extra, "--output", "json"], { home });
    assertEquals(result.code, ExitCode.Config, extra.join(" "));
    const line = resultOf(result);
    assertEquals(line.error?.cause, expectedCause(ExitCode.Config));
    assertMatch(
      line.error!.message,
      /--output json is for provisioning, rotate, status and lint runs/,
    );
  }
  // An unknown format is an error in text: the caller did not ask for JSON.
  const yaml = await runFleetprov(["--output", "yaml"], { home });
  assertEquals(yaml.code, ExitCode.Config);
  assertEquals(yaml.stdout, "");
  assertMatch(yaml.stderr, /--output is "yaml"; use --output json/);
  const twice = await runFleetprov(["--output", "json", "--output=json"], { home });
  assertEquals(twice.code, ExitCode.Config);
  assertMatch(twice.stderr, /--output is given more than once/);
});

Deno.test({
  name: "--output json: a final rejection is a failed result with the rejected cause",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const emulator = await testEmulator({
      templateName: TEMPLATE_NAME,
      template: SERIAL_TEMPLATE,
      faults: [{
        operation: "RegisterThing",
        reject: { statusCode: 400, errorCode: "InvalidParameters", errorMessage: "no serial" },
      }],
    });
    try {
      const result = await runFleetprov(args(emulator.configPath, "SN-JSON-R", FAST_RETRY), {
        home: deviceHome(),
      });
      assertEquals(result.code, ExitCode.Rejected, result.stderr);
      const line = resultOf(result);
      assertEquals(line.outcome, "failed");
      assertEquals(line.error?.cause, expectedCause(ExitCode.Rejected));
      assertMatch(line.error!.message, /RegisterThing/);
      assertMatch(line.error!.message, /InvalidParameters/);
      assertEquals(line.retries, 0);
      assertEquals(line.files.runtimeConfig, null);
    } finally {
      await emulator.close();
    }
  },
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

Deno.test({
  name: "--output json: a network failure at the deadline counts its retries",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const emulator = await testEmulator({ templateName: TEMPLATE_NAME, template: SERIAL_TEMPLATE });
    const configPath = emulator.configPath;
    await emulator.close();
    const result = await runFleetprov(
      args(configPath, "SN-JSON-N", [
        "--port",
        String(await closedPort()),
        "--step-timeout",
        "1",
        "--deadline",
        "1.5",
        "--retry-base-delay",
        "0.02",
        "--retry-max-delay",
        "0.1",
      ]),
      { home: deviceHome() },
    );
    assertEquals(result.code, ExitCode.TempFail, result.stderr);
    const line = resultOf(result);
    assertEquals(line.outcome, "failed");
    assertEquals(line.error?.cause, expectedCause(ExitCode.TempFail));
    assertMatch(line.error!.message, /deadline/);
    const warned = result.stderr.match(/Retrying in \d+ ms/g)?.length ?? 0;
    assert(warned >= 1, result.stderr);
    assertEquals(line.retries, warned, "retries = the retry warnings on stderr");
    assertEquals(line.thingName, null);
  },
});

Deno.test("result line: the cause follows the error's kind, else its exit code's name", () => {
  for (const code of Object.values(ExitCode)) {
    assertEquals(causeOf(undefined, code), expectedCause(code));
  }
  assertEquals(causeOf(new Error("boom"), ExitCode.Software), expectedCause(ExitCode.Software));
  const withKind = Object.assign(new Error("x"), { kind: "clock" });
  // Only fleetprov's own errors carry a kind worth reporting.
  assertEquals(causeOf(withKind, ExitCode.Software), expectedCause(ExitCode.Software));
  const ours = Object.assign(new FleetprovError("clock", ExitCode.TempFail), { kind: "clock" });
  assertEquals(causeOf(ours, ExitCode.TempFail), "clock");
});
