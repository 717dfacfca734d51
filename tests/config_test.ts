// SPDX-License-Identifier: Apache-2.0
/** loadSettings: every key and flag, precedence, defaults, expansion, parameters, runtime config. */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { MAX_UNKNOWN_KEYS_NAMED } from "../src/config/known_keys.ts";
import { MAX_WARNINGS, Problems } from "../src/config/problems.ts";
import { X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULTS, loadSettings } from "../src/config/mod.ts";
import type { Settings } from "../src/config/settings.ts";
import { allFlags, parseFlags } from "../src/config/flags.ts";
import { expandPath } from "../src/config/paths.ts";
import { parseTemplateParameters } from "../src/config/template_parameters.ts";
import { machineClientId } from "../src/config/system_info.ts";
import { ExitCode } from "../src/errors.ts";
import {
  formatRuntimeConfig,
  readRuntimeConfig,
  writeRuntimeConfig,
} from "../src/runtime_config/mod.ts";
import { ensureDirectory } from "../src/secure_files/mod.ts";
import {
  type Layout,
  loadOptions,
  makeLayout,
  secureElementFlags,
  settingsError,
  writeConfig,
  writeProvisioned,
} from "./support/mod.ts";

function load(layout: Layout, args: string[], env: Record<string, string> = {}) {
  return loadSettings(args, loadOptions(layout, env));
}

/** The flags of a complete command line, with one flag replaced or added. */
function withFlag(layout: Layout, flag: string, value?: string): string[] {
  const args = [...layout.args];
  const i = args.indexOf(flag);
  if (i >= 0) {
    args.splice(i, value === undefined ? 1 : 2, ...(value === undefined ? [] : [flag, value]));
  } else args.push(flag, ...(value === undefined ? [] : [value]));
  return args;
}

// ---------------------------------------------------------------- flag parsing

Deno.test("flag parsing: malformed command lines are fatal and name the flag", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["unknown flag", ["--endpont", "x"], /^Unknown flag --endpont; run fleetprov --help/],
    ["single-dash flag", ["-e", "x"], /^Unknown flag -e/],
    [
      "flag given twice",
      ["--endpoint", "a", "--endpoint", "b"],
      /^Flag --endpoint is given more than once/,
    ],
    [
      "foreign flag given twice",
      ["--enable-jobs", "true", "--enable-jobs", "true"],
      /--enable-jobs is given more than once/,
    ],
    ["flag without value at the end", ["--cert"], /^Flag --cert needs a value: --cert FILE\.$/],
    ["flag followed by another flag", ["--cert", "--key", "k"], /^Flag --cert needs a value/],
    [
      "--enable-… with yes",
      ["--enable-fleet-provisioning", "yes"],
      /--enable-fleet-provisioning is "yes"; expected true or false/,
    ],
    ["--enable-… with TRUE", ["--enable-secure-element", "TRUE"], /expected true or false/],
    [
      "foreign --enable-… with 1",
      ["--enable-jobs", "1"],
      /--enable-jobs is "1"; expected true or false/,
    ],
    ["stray argument", ["provision"], /^Unexpected argument "provision"/],
    ["value for a switch", ["--enable-sdk-logging=yes"], /--enable-sdk-logging takes no value/],
  ];
  for (const [name, args, pattern] of cases) {
    await t.step(name, () => {
      const parsed = parseFlags(args);
      assertEquals(parsed.errors.length, 1, parsed.errors.join("\n"));
      assertMatch(parsed.errors[0], pattern);
    });
  }
});

Deno.test("flag parsing: --flag=value, foreign flags and switches", () => {
  const parsed = parseFlags([
    "--endpoint=h",
    "--enable-jobs",
    "false",
    "--enable-sdk-logging",
    "--tunneling-disable-notification",
    "--jobs-handler-dir",
    "/x",
    "--dry-run",
  ]);
  assertEquals(parsed.errors, []);
  assertEquals(parsed.values.get("--endpoint"), "h");
  assertEquals(parsed.ignored, [
    "--enable-jobs",
    "--enable-sdk-logging",
    "--tunneling-disable-notification",
    "--jobs-handler-dir",
  ]);
});

Deno.test("every Device Client flag of other features is accepted and reported as ignored", async () => {
  const layout = await makeLayout();
  const foreign = allFlags().filter((f) => f.foreign);
  const args = [...layout.args];
  for (const f of foreign) {
    args.push(f.flag);
    if (f.value !== undefined) args.push(f.boolean ? "true" : "value");
  }
  const settings = await load(layout, args);
  assertEquals(settings.ignored.sort(), foreign.map((f) => f.flag).sort());
  for (
    const flag of [
      "--enable-jobs",
      "--jobs-handler-dir",
      "--enable-tunneling",
      "--tunneling-region",
      "--tunneling-service",
      "--tunneling-disable-notification",
      "--enable-device-defender",
      "--device-defender-interval",
      "--enable-sample-shadow",
      "--shadow-name",
      "--shadow-input-file",
      "--shadow-output-file",
      "--enable-config-shadow",
      "--enable-pub-sub",
      "--publish-topic",
      "--publish-file",
      "--subscribe-topic",
      "--subscribe-file",
      "--enable-sdk-logging",
      "--sdk-log-level",
      "--sdk-log-file",
      "--enable-sensor-publish",
    ]
  ) assert(settings.ignored.includes(flag), flag);
});

// ---------------------------------------------------------------- every key and flag

/** [flag, JSON key path, value given, expected setting, getter]. */
type Entry = [string, string, string | number | boolean, unknown, (s: Settings) => unknown];

async function entries(layout: Layout): Promise<Entry[]> {
  const other = join(layout.certsDir, "other.pem.crt");
  writeFileSync(other, readFileSync(layout.claimCert));
  await Deno.chmod(other, 0o644);
  const otherCa = join(layout.certsDir, "OtherCA.pem");
  writeFileSync(otherCa, readFileSync(layout.rootCa));
  await Deno.chmod(otherCa, 0o644);
  return [
    [
      "--endpoint",
      "endpoint",
      "other-ats.iot.eu-west-1.amazonaws.com",
      "other-ats.iot.eu-west-1.amazonaws.com",
      (s) => s.endpoint,
    ],
    ["--port", "port", 443, 443, (s) => s.port],
    ["--cert", "cert", other, other, (s) => s.cert],
    ["--key", "key", layout.claimKey, layout.claimKey, (s) => s.key],
    ["--root-ca", "root-ca", otherCa, otherCa, (s) => s.rootCa],
    ["--thing-name", "thing-name", "claim-thing", "claim-thing", (s) => s.thingName],
    ["--client-id", "client-id", "my-client", "my-client", (s) => s.clientId],
    ["--log-level", "logging.level", "DEBUG", "DEBUG", (s) => s.logging.level],
    ["--log-type", "logging.type", "FILE", "FILE", (s) => s.logging.type],
    [
      "--log-file",
      "logging.file",
      join(layout.root, "fp.log"),
      join(layout.root, "fp.log"),
      (s) => s.logging.file,
    ],
    [
      "--enable-fleet-provisioning",
      "fleet-provisioning.enabled",
      false,
      false,
      (s) => s.fleetProvisioning.enabled,
    ],
    [
      "--fleet-provisioning-template-name",
      "fleet-provisioning.template-name",
      "Other_Template-2",
      "Other_Template-2",
      (s) => s.fleetProvisioning.templateName,
    ],
    [
      "--fleet-provisioning-template-parameters",
      "fleet-provisioning.template-parameters",
      `{"SerialNumber": "SN-9"}`,
      { SerialNumber: "SN-9" },
      (s) => s.fleetProvisioning.templateParameters,
    ],
    [
      "--csr-file",
      "fleet-provisioning.csr-file",
      layout.csr,
      layout.csr,
      (s) => s.fleetProvisioning.csrFile,
    ],
    [
      "--device-key",
      "fleet-provisioning.device-key",
      layout.deviceKey,
      layout.deviceKey,
      (s) => s.fleetProvisioning.deviceKey,
    ],
    [
      "--generate-key",
      "fleet-provisioning.generate-key",
      "rsa-2048",
      "rsa-2048",
      (s) => s.fleetProvisioning.generateKey,
    ],
    [
      "--payload-format",
      "fleet-provisioning.payload-format",
      "cbor",
      "cbor",
      (s) => s.payloadFormat,
    ],
    ["--mqtt-version", "mqtt-version", "5", "5", (s) => s.mqttVersion],
    [
      "--rotation-template-name",
      "fleet-provisioning.rotation-template-name",
      "Rotation_Template-2",
      "Rotation_Template-2",
      (s) => s.fleetProvisioning.rotationTemplateName,
    ],
    [
      "--rotation-key-source",
      "fleet-provisioning.rotation-key-source",
      "AWS",
      "aws",
      (s) => s.fleetProvisioning.rotationKeySource,
    ],
    ["--step-timeout", "fleet-provisioning.step-timeout", 2.5, 2500, (s) => s.retry.stepTimeoutMs],
    ["--deadline", "fleet-provisioning.deadline", 60, 60_000, (s) => s.retry.deadlineMs],
    [
      "--retry-base-delay",
      "fleet-provisioning.retry-base-delay",
      0.25,
      250,
      (s) => s.retry.baseDelayMs,
    ],
    ["--retry-max-delay", "fleet-provisioning.retry-max-delay", 5, 5000, (s) => s.retry.maxDelayMs],
    [
      "--enable-secure-element",
      "secure-element.enabled",
      false,
      false,
      (s) => s.secureElement.enabled,
    ],
    [
      "--pkcs11-lib",
      "secure-element.pkcs11-lib",
      join(layout.certsDir, "lib.so"),
      join(layout.certsDir, "lib.so"),
      (s) => s.secureElement.pkcs11Lib,
    ],
    [
      "--secure-element-pin",
      "secure-element.secure-element-pin",
      "4711",
      "4711",
      (s) => s.secureElement.pin,
    ],
    [
      "--secure-element-key-label",
      "secure-element.secure-element-key-label",
      "kl",
      "kl",
      (s) => s.secureElement.keyLabel,
    ],
    [
      "--secure-element-slot-id",
      "secure-element.secure-element-slot-id",
      3,
      3,
      (s) => s.secureElement.slotId,
    ],
    [
      "--secure-element-token-label",
      "secure-element.secure-element-token-label",
      "tl",
      "tl",
      (s) => s.secureElement.tokenLabel,
    ],
    [
      "--openssl-engine",
      "secure-element.openssl-engine",
      join(layout.certsDir, "engine.so"),
      join(layout.certsDir, "engine.so"),
      (s) => s.secureElement.opensslEngine,
    ],
  ];
}

function nest(key: string, value: unknown): Record<string, unknown> {
  const parts = key.split(".");
  return parts.length === 1 ? { [key]: value } : { [parts[0]]: { [parts[1]]: value } };
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = typeof v === "object" && v !== null && typeof out[k] === "object"
      ? { ...(out[k] as object), ...(v as object) }
      : v;
  }
  return out;
}

/** A second valid value per flag, held by the config file when the flag must win. */
function OTHER_VALUES(layout: Layout): Record<string, unknown> {
  return {
    "--endpoint": "file-ats.iot.us-east-1.amazonaws.com",
    "--port": 8443,
    "--cert": layout.claimCert,
    "--key": layout.otherKey, // does not match the certificate: proves the file value is unused
    "--root-ca": layout.rootCa,
    "--thing-name": "file-thing",
    "--client-id": "file-client",
    "--log-level": "ERROR",
    "--log-type": "STDOUT",
    "--log-file": "/var/log/file.log",
    "--enable-fleet-provisioning": true,
    "--fleet-provisioning-template-name": "FileTemplate",
    "--fleet-provisioning-template-parameters": { SerialNumber: "from-file" },
    "--csr-file": join(layout.certsDir, "missing.csr"), // unused, so never checked
    "--device-key": layout.claimKey,
    "--generate-key": "ec-p384",
    "--payload-format": "json",
    "--mqtt-version": "3.1.1",
    "--rotation-template-name": "FileRotationTemplate",
    "--rotation-key-source": "board",
    "--step-timeout": 7,
    "--deadline": 90,
    "--retry-base-delay": 2,
    "--retry-max-delay": 9,
    "--enable-secure-element": true, // would fail: proves the flag wins
    "--pkcs11-lib": join(layout.certsDir, "file-lib.so"),
    "--secure-element-pin": "1111",
    "--secure-element-key-label": "file-kl",
    "--secure-element-slot-id": 7,
    "--secure-element-token-label": "file-tl",
    "--openssl-engine": join(layout.certsDir, "file-engine.so"),
  };
}

Deno.test("every key and flag: the flag sets it, the config key sets it, the flag wins", async (t) => {
  const layout = await makeLayout();
  const table = await entries(layout);
  // Every non-meta flag fleetprov reads (except --config-file and --http-proxy-config, tested below) is covered.
  const covered = new Set(table.map((e) => e[0]));
  for (const f of allFlags().filter((f) => !f.foreign && !f.meta && f.key)) {
    assert(covered.has(f.flag), `${f.flag} is not in the table`);
  }
  for (const [flag, key, value, expected, get] of table) {
    await t.step(`${flag} / ${key}`, async () => {
      const cliValue = String(value);
      const viaFlag = await load(layout, withFlag(layout, flag, cliValue));
      assertEquals(get(viaFlag), expected, "via flag");

      const config = merge(layout.config, nest(key, value));
      const file = writeConfig(layout, config);
      const viaKey = await load(layout, ["--config-file", file]);
      assertEquals(get(viaKey), expected, "via config key");

      // Precedence: the config file holds another valid value, the flag wins.
      const fileValue = OTHER_VALUES(layout)[flag];
      assert(fileValue !== undefined, `no other value for ${flag}`);
      const file2 = writeConfig(layout, merge(layout.config, nest(key, fileValue)));
      assert(JSON.stringify(fileValue) !== JSON.stringify(value), "the file holds another value");
      const both = await load(layout, ["--config-file", file2, flag, cliValue]);
      assertEquals(get(both), expected, "flag over key");
    });
  }
});

Deno.test("the flag overrides the config file (config holds one value, flag another)", async (t) => {
  const layout = await makeLayout();
  const cases: [string, string, unknown, string, unknown, (s: Settings) => unknown][] = [
    ["--endpoint", "endpoint", "file-host", "flag-host", "flag-host", (s) => s.endpoint],
    ["--port", "port", 443, "9000", 9000, (s) => s.port],
    ["--thing-name", "thing-name", "file-thing", "flag-thing", "flag-thing", (s) => s.thingName],
    ["--log-level", "logging.level", "ERROR", "debug", "DEBUG", (s) => s.logging.level],
    [
      "--enable-fleet-provisioning",
      "fleet-provisioning.enabled",
      true,
      "false",
      false,
      (s) => s.fleetProvisioning.enabled,
    ],
    [
      "--fleet-provisioning-template-name",
      "fleet-provisioning.template-name",
      "FileT",
      "FlagT",
      "FlagT",
      (s) => s.fleetProvisioning.templateName,
    ],
    [
      "--fleet-provisioning-template-parameters",
      "fleet-provisioning.template-parameters",
      { A: "file" },
      `{"A":"flag"}`,
      { A: "flag" },
      (s) => s.fleetProvisioning.templateParameters,
    ],
    [
      "--payload-format",
      "fleet-provisioning.payload-format",
      "cbor",
      "json",
      "json",
      (s) => s.payloadFormat,
    ],
    ["--mqtt-version", "mqtt-version", "3.1.1", "5", "5", (s) => s.mqttVersion],
    [
      "--step-timeout",
      "fleet-provisioning.step-timeout",
      3,
      "4",
      4000,
      (s) => s.retry.stepTimeoutMs,
    ],
  ];
  for (const [flag, key, fileValue, flagValue, expected, get] of cases) {
    await t.step(flag, async () => {
      const file = writeConfig(layout, merge(layout.config, nest(key, fileValue)));
      const s = await load(layout, ["--config-file", file, flag, flagValue]);
      assertEquals(get(s), expected);
    });
  }
});

Deno.test("defaults", async () => {
  const layout = await makeLayout();
  const s = await load(layout, layout.args);
  assertEquals(s.port, 8883);
  assertEquals(s.logging, {
    level: "INFO",
    type: "STDOUT",
    file: "/var/log/aws-iot-device-client/aws-iot-device-client.log",
  });
  assertEquals(s.payloadFormat, "json");
  assertEquals(s.retry, {
    stepTimeoutMs: 10_000,
    deadlineMs: 300_000,
    baseDelayMs: 1000,
    maxDelayMs: 30_000,
  });
  assertEquals(s.fleetProvisioning.templateParameters, {});
  assertEquals(s.fleetProvisioning.collectSystemInformation, false);
  assertEquals(s.fleetProvisioning.generateKey, undefined);
  assertEquals(s.fleetProvisioning.rotationTemplateName, undefined);
  assertEquals(s.fleetProvisioning.rotationKeySource, "board");
  assertEquals(s.claimCert, layout.claimCert);
  assertEquals(s.secureElement, { enabled: false });
  assertEquals(s.httpProxy, undefined);
  assertEquals(s.configFile, undefined);
  assertEquals(s.configDir, join(layout.home, ".aws-iot-device-client"));
  assertEquals(s.keysDir, join(layout.home, ".aws-iot-device-client", "keys"));
  assertEquals(
    s.runtimeConfigPath,
    join(layout.home, ".aws-iot-device-client", "aws-iot-device-client-runtime.conf"),
  );
  assertEquals(s.runtime, { status: "absent" });
  assertEquals(s.ignored, []);
  assertEquals(s.warnings, []);
  assertEquals(DEFAULTS.port, 8883);

  const disabled = await load(layout, layout.args.slice(0, 8));
  assertEquals(disabled.fleetProvisioning.enabled, false);
  assertEquals(disabled.fleetProvisioning.templateName, "");
});

Deno.test("log level and type are case-insensitive, like the Device Client", async () => {
  const layout = await makeLayout();
  const s = await load(layout, [...layout.args, "--log-level", "warn", "--log-type", "file"]);
  assertEquals([s.logging.level, s.logging.type], ["WARN", "FILE"]);
});

// ---------------------------------------------------------------- bad values

Deno.test("bad values: one line each, naming the key or flag, the value and what is expected", async (t) => {
  const layout = await makeLayout();
  const cases: [string, string[], RegExp][] = [
    [
      "endpoint with scheme",
      ["--endpoint", "https://x.iot.amazonaws.com"],
      /^--endpoint is "https:\/\/x\.iot\.amazonaws\.com"; expected a host name only/,
    ],
    ["port 0", ["--port", "0"], /^--port is "0"; expected an integer port from 1 to 65535/],
    ["port text", ["--port", "mqtts"], /^--port is "mqtts"; expected an integer port/],
    ["port 70000", ["--port", "70000"], /^--port is "70000"/],
    [
      "log level",
      ["--log-level", "TRACE"],
      /^--log-level is "TRACE"; expected DEBUG, INFO, WARN or ERROR\.$/,
    ],
    ["log type", ["--log-type", "syslog"], /^--log-type is "syslog"; expected STDOUT or FILE\.$/],
    [
      "payload format",
      ["--payload-format", "xml"],
      /^--payload-format is "xml"; expected json or cbor\.$/,
    ],
    ["mqtt version", ["--mqtt-version", "4"], /^--mqtt-version is "4"; expected 3\.1\.1 or 5\.$/],
    [
      "generate key",
      ["--generate-key", "ed25519"],
      /^--generate-key is "ed25519"; expected ec-p256, ec-p384 or rsa-2048\.$/,
    ],
    [
      "step timeout 0",
      ["--step-timeout", "0"],
      /^--step-timeout is "0"; expected a number of seconds greater than 0/,
    ],
    [
      "deadline negative",
      ["--deadline", "-5"],
      /^--deadline is "-5"; expected a number of seconds greater than 0/,
    ],
    ["retry delay text", ["--retry-base-delay", "soon"], /^--retry-base-delay is "soon"/],
    [
      "max delay below base",
      ["--retry-base-delay", "10", "--retry-max-delay", "2"],
      /^The retry max delay \(2 s\) is smaller than the retry base delay \(10 s\)/,
    ],
    [
      "step timeout over deadline",
      ["--step-timeout", "20", "--deadline", "10"],
      /^The step timeout \(20 s\) is longer than the deadline \(10 s\)/,
    ],
    [
      "template name with slash",
      ["--fleet-provisioning-template-name", "a/b"],
      /^--fleet-provisioning-template-name is "a\/b"; expected 1 to 36 letters/,
    ],
    [
      "template name too long",
      ["--fleet-provisioning-template-name", "T".repeat(37)],
      /expected 1 to 36 letters/,
    ],
    [
      "thing name too long",
      ["--thing-name", "t".repeat(129)],
      /^--thing-name is 129 bytes long; AWS IoT accepts at most 128\.$/,
    ],
    ["client id too long", ["--client-id", "é".repeat(65)], /^--client-id is 130 bytes long/],
    [
      "slot id text",
      ["--secure-element-slot-id", "first"],
      /^--secure-element-slot-id is "first"; expected a slot number/,
    ],
    [
      "empty flag value",
      ["--thing-name", ""],
      /^--thing-name is empty; give a value or leave the flag out\.$/,
    ],
    [
      "a 3000-character endpoint is quoted capped, not in full",
      ["--endpoint", `https://${"a".repeat(3000)}`],
      /^--endpoint is "https:\/\/a{68}\.\.\."; expected a host name only/,
    ],
  ];
  for (const [name, extra, pattern] of cases) {
    await t.step(name, async () => {
      let args = [...layout.args];
      for (let i = 0; i < extra.length; i += 2) args = withFlagIn(args, extra[i], extra[i + 1]);
      const error = await settingsError(() => load(layout, args));
      assertEquals(error.exitCode, ExitCode.Config);
      assertEquals(error.problems.length, 1, error.message);
      assertMatch(error.problems[0], pattern);
      assert(!error.problems[0].includes("\n"));
    });
  }
});

function withFlagIn(args: string[], flag: string, value: string): string[] {
  const out = [...args];
  const i = out.indexOf(flag);
  if (i >= 0) out.splice(i, 2, flag, value);
  else out.push(flag, value);
  return out;
}

Deno.test("bad config-file types: one line each naming the key, the value and the type expected", async (t) => {
  const layout = await makeLayout();
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["endpoint number", { endpoint: 42 }, /^"endpoint" in .* is 42; expected a string\.$/],
    [
      "enabled as string",
      { "fleet-provisioning": { enabled: "true", "template-name": "T" } },
      /^"fleet-provisioning\.enabled" in .* is "true"; expected true or false\.$/,
    ],
    ["port as string", { port: "8883" }, /^"port" in .* is "8883"; expected an integer port/],
    ["port fractional", { port: 88.5 }, /^"port" in .* is 88\.5/],
    [
      "logging not an object",
      { logging: "DEBUG" },
      /^"logging" in .* is "DEBUG"; expected an object/,
    ],
    ["collect-system-information as string", {
      "fleet-provisioning": {
        enabled: true,
        "template-name": "T",
        "collect-system-information": "yes",
      },
    }, /collect-system-information" in .* is "yes"; expected true or false/],
    ["template-parameters as array", {
      "fleet-provisioning": { enabled: true, "template-name": "T", "template-parameters": ["a"] },
    }, /template-parameters" in .* is an array; expected a JSON object of strings/],
    [
      "PIN as number: value not shown",
      { "secure-element": { "secure-element-pin": 4711 } },
      /^"secure-element\.secure-element-pin" in .* is a number \(value not shown\); expected a string\.$/,
    ],
    [
      "slot id negative",
      { "secure-element": { "secure-element-slot-id": -1 } },
      /secure-element-slot-id" in .* is -1; expected a slot number/,
    ],
  ];
  for (const [name, patch, pattern] of cases) {
    await t.step(name, async () => {
      const file = writeConfig(layout, merge(layout.config, patch));
      const error = await settingsError(() => load(layout, ["--config-file", file]));
      assertEquals(error.exitCode, ExitCode.Config);
      assertEquals(error.problems.length, 1, error.message);
      assertMatch(error.problems[0], pattern);
      assert(!error.message.includes("4711"));
    });
  }
});

Deno.test("required settings: all missing ones are reported at once", async () => {
  const layout = await makeLayout();
  const error = await settingsError(() =>
    load(layout, ["--enable-fleet-provisioning", "true", "--port", "0", "--log-level", "LOUD"])
  );
  assertEquals(error.exitCode, ExitCode.Config);
  assertEquals(error.problems.length, 6, error.message);
  assertEquals(error.message.split("\n").length, 6);
  assertMatch(error.message, /--port is "0"/);
  assertMatch(error.message, /--log-level is "LOUD"/);
  assertMatch(
    error.message,
    /The endpoint is missing: set "endpoint" in the config file or --endpoint\./,
  );
  assertMatch(error.message, /The claim certificate is missing/);
  assertMatch(error.message, /The claim private key is missing/);
  assertMatch(error.message, /The template name is missing/);
});

Deno.test("fleet provisioning disabled: the template name is not required", async () => {
  const layout = await makeLayout();
  const s = await load(layout, layout.args.slice(0, 8));
  assertEquals(s.fleetProvisioning.enabled, false);
});

// ---------------------------------------------------------------- config file

Deno.test("config file: the default path is read when present, --config-file replaces it", async () => {
  const layout = await makeLayout();
  mkdirSync(layout.configDir, { mode: 0o745 });
  await Deno.chmod(layout.configDir, 0o745);
  const defaultFile = writeConfig(layout, { ...layout.config, "thing-name": "from-default" }, {
    dir: layout.configDir,
    name: "aws-iot-device-client.conf",
  });
  const s = await load(layout, []);
  assertEquals(s.configFile, defaultFile);
  assertEquals(s.thingName, "from-default");
  assertEquals(s.warnings, []);

  const other = writeConfig(layout, { ...layout.config, "thing-name": "from-flag" });
  const t = await load(layout, ["--config-file", other]);
  assertEquals([t.configFile, t.thingName], [other, "from-flag"]);
});

Deno.test("config file: missing, a directory, too large, not an object, unparseable", async (t) => {
  const layout = await makeLayout();
  const cases: [string, () => string, RegExp][] = [
    [
      "missing",
      () => join(layout.root, "nope.conf"),
      /^Config file .*nope\.conf \(from --config-file\) does not exist\.$/,
    ],
    [
      "a directory",
      () => layout.certsDir,
      /^Config file .*certs is a directory; expected a file\.$/,
    ],
    [
      "too large",
      () => writeConfig(layout, JSON.stringify({ ...layout.config, pad: "x".repeat(70_000) })),
      /is \d+ bytes; config files larger than 65536 bytes are refused\.$/,
    ],
    ["an array", () => writeConfig(layout, "[1, 2]"), /must hold a JSON object/],
    [
      "missing comma",
      () => writeConfig(layout, '{\n  "endpoint": "x"\n  "cert": "y"\n}'),
      /is not valid JSON: line 3, column 3: a comma \(,\) is missing\.$/,
    ],
    [
      "missing colon",
      () => writeConfig(layout, '{\n  "endpoint" "x"\n}'),
      /line 2, column 14: a colon \(:\) is missing\./,
    ],
    [
      "unclosed",
      () => writeConfig(layout, '{"endpoint": "x"'),
      /line 1, column 17: a closing brace \(\}\) is missing\./,
    ],
  ];
  for (const [name, make, pattern] of cases) {
    await t.step(name, async () => {
      const error = await settingsError(() =>
        load(layout, [...layout.args, "--config-file", make()])
      );
      assertEquals(error.exitCode, ExitCode.Config);
      assertMatch(error.problems[0], pattern);
    });
  }
});

Deno.test("config file: JSONC comments and trailing commas; a 5000+ byte file is accepted", async () => {
  const layout = await makeLayout();
  const text = `// fleetprov config
{
  /* the endpoint */
  "endpoint": "abc123-ats.iot.us-east-1.amazonaws.com", // trailing comment
  "cert": ${JSON.stringify(layout.claimCert)},
  "key": ${JSON.stringify(layout.claimKey)},
  "fleet-provisioning": {
    "enabled": true,
    "template-name": "BoardTemplate",
    "template-parameters": {"SerialNumber": "SN-1",},
  },
  ${Array.from({ length: 120 }, (_, i) => `// padding comment line ${i} ..........`).join("\n  ")}
}
`;
  assert(text.length > 5000);
  const s = await load(layout, ["--config-file", writeConfig(layout, text)]);
  assertEquals(s.endpoint, "abc123-ats.iot.us-east-1.amazonaws.com");
  assertEquals(s.fleetProvisioning.templateParameters, { SerialNumber: "SN-1" });
});

Deno.test("a full Device Client config loads unchanged; other features are ignored and listed", async () => {
  const layout = await makeLayout();
  const dcConfig = {
    endpoint: "abc123-ats.iot.us-east-1.amazonaws.com",
    cert: layout.claimCert,
    key: layout.claimKey,
    "root-ca": layout.rootCa,
    "thing-name": "claim-thing",
    logging: {
      level: "DEBUG",
      type: "STDOUT",
      file: "/var/log/aws-iot-device-client/aws-iot-device-client.log",
      "enable-sdk-logging": false,
      "sdk-log-level": "TRACE",
      "sdk-log-file": "/var/log/aws-iot-device-client/sdk.log",
    },
    jobs: { enabled: true, "handler-directory": "~/.aws-iot-device-client/jobs" },
    tunneling: { enabled: true },
    "device-defender": { enabled: false, interval: 300 },
    "fleet-provisioning": {
      enabled: true,
      "template-name": "FPTemplateName",
      "template-parameters": '{"SerialNumber": "Device-SN"}',
      "csr-file": layout.csr,
      "device-key": layout.deviceKey,
    },
    samples: {
      "pub-sub": {
        enabled: false,
        "publish-topic": "t",
        "publish-file": "~/.aws-iot-device-client/pubsub/publish-file.txt",
        "subscribe-topic": "s",
        "subscribe-file": "~/.aws-iot-device-client/pubsub/subscribe-file.txt",
      },
    },
    "config-shadow": { enabled: false },
    "sample-shadow": {
      enabled: false,
      "shadow-name": "n",
      "shadow-input-file": "",
      "shadow-output-file": "",
    },
    "secure-element": { enabled: false },
    "sensor-publish": { sensors: [{ enabled: false, addr: "/tmp/sensors/my-sensor-server" }] },
  };
  const s = await load(layout, ["--config-file", writeConfig(layout, dcConfig)]);
  assertEquals(s.endpoint, dcConfig.endpoint);
  assertEquals(s.thingName, "claim-thing");
  assertEquals(s.clientId, "claim-thing");
  assertEquals(s.logging.level, "DEBUG");
  assertEquals(s.fleetProvisioning.templateName, "FPTemplateName");
  assertEquals(s.fleetProvisioning.templateParameters, { SerialNumber: "Device-SN" });
  assertEquals(s.fleetProvisioning.csrFile, layout.csr);
  assertEquals(s.fleetProvisioning.deviceKey, layout.deviceKey);
  assertEquals(s.ignored.sort(), [
    "config-shadow",
    "device-defender",
    "jobs",
    "logging.enable-sdk-logging",
    "logging.sdk-log-file",
    "logging.sdk-log-level",
    "sample-shadow",
    "samples",
    "sensor-publish",
    "tunneling",
  ]);
  assertEquals(s.warnings, []);
});

Deno.test("unknown config keys are warnings (DC ignores them), not errors", async () => {
  const layout = await makeLayout();
  const file = writeConfig(
    layout,
    merge(layout.config, {
      "templat-name": "typo",
      "fleet-provisioning": { "template_name": "typo" },
    }),
  );
  const s = await load(layout, ["--config-file", file]);
  // One cause (keys fleetprov does not read), one line.
  assertEquals(s.warnings.length, 1, s.warnings.join("\n"));
  assertMatch(
    s.warnings[0],
    /^2 keys in \S+ are not known keys; ignored: "fleet-provisioning\.template_name", "templat-name"\.$/,
  );
  const one = writeConfig(layout, merge(layout.config, { "templat-name": "typo" }));
  assertEquals((await load(layout, ["--config-file", one])).warnings, [
    `"templat-name" in ${one} is not a known key; ignored.`,
  ]);
});

Deno.test("2000 unknown keys: one warning line naming the first 10 and counting the rest", async () => {
  const layout = await makeLayout();
  const unknown = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, i]));
  const file = writeConfig(layout, merge(layout.config, unknown));
  const s = await load(layout, ["--config-file", file]);
  assertEquals(s.warnings.length, 1);
  assertEquals(
    s.warnings[0],
    `2000 keys in ${file} are not known keys; ignored: ${
      Array.from({ length: 10 }, (_, i) => `"k${i}"`).join(", ")
    } and 1990 more.`,
  );
  assertEquals(MAX_UNKNOWN_KEYS_NAMED, 10);
});

Deno.test("warnings of one load are capped at 20 lines, the rest counted on one more", () => {
  const problems = new Problems();
  for (let i = 0; i < 50; i++) problems.warn(`warning ${i}`);
  assertEquals(MAX_WARNINGS, 20);
  assertEquals(problems.warnings.length, 21);
  assertEquals(problems.warnings[19], "warning 19");
  assertEquals(problems.warnings[20], "... and 30 more warnings like those above.");
});

Deno.test("empty string values in the config file are ignored with a warning, like DC", async () => {
  const layout = await makeLayout();
  const file = writeConfig(
    layout,
    merge(layout.config, { "thing-name": "", "fleet-provisioning": { "csr-file": "" } }),
  );
  const s = await load(layout, ["--config-file", file]);
  assertEquals(s.thingName, undefined);
  assertEquals(s.fleetProvisioning.csrFile, undefined);
  assertEquals(s.warnings.length, 2);
  assertMatch(s.warnings[0], /"thing-name" in .* is empty; ignored\./);
});

// ---------------------------------------------------------------- paths

Deno.test("path expansion: ~, $VAR, ${VAR}, relative; forbidden characters and unset variables", async (t) => {
  const env = { HOME: "/home/dev", CERTS: "/etc/certs", EMPTY: "" };
  const ok: [string, string][] = [
    ["~", "/home/dev"],
    ["~/claim.crt", "/home/dev/claim.crt"],
    ["$CERTS/claim.crt", "/etc/certs/claim.crt"],
    ["${CERTS}/claim.crt", "/etc/certs/claim.crt"],
    ["${CERTS}x/claim.crt", "/etc/certsx/claim.crt"],
    ["/a/./b/../c", "/a/c"],
    ["rel/claim.crt", join(Deno.cwd(), "rel/claim.crt")],
    ["/p$EMPTY/x", "/p/x"],
  ];
  for (const [input, expected] of ok) {
    await t.step(`expands ${input}`, () => {
      assertEquals(expandPath(input, { env, home: "/home/dev" }), { ok: true, path: expected });
    });
  }
  const bad: [string, RegExp][] = [
    ...[..."|&;<>(){}"].map((
      c,
    ): [string, RegExp] => [`/etc/a${c}b`, new RegExp(`contains '\\${c}'`)]),
    ["$(id)/x", /contains '\(' '\)'/],
    ["$NOPE/x", /uses \$NOPE, which is not set/],
    ["${NOPE}/x", /uses \$NOPE, which is not set/],
    ["~bob/x", /~user, which is not supported/],
    ["", /is empty/],
  ];
  for (const [input, pattern] of bad) {
    await t.step(`refuses ${JSON.stringify(input)}`, () => {
      const result = expandPath(input, { env, home: "/home/dev" });
      assert(!result.ok);
      assertMatch(result.reason, pattern);
    });
  }
});

Deno.test("path expansion applies to every path key, from flags and from the config file", async () => {
  const layout = await makeLayout();
  const env = { CERTS: layout.certsDir };
  const s = await load(layout, [
    ...withFlagIn(
      withFlagIn(layout.args, "--cert", "$CERTS/claim.pem.crt"),
      "--key",
      "${CERTS}/claim.pem.key",
    ),
    "--csr-file",
    "$CERTS/device.csr",
    "--device-key",
    "$CERTS/device.pem.key",
    "--log-file",
    "~/fleetprov.log",
  ], env);
  assertEquals(s.cert, layout.claimCert);
  assertEquals(s.key, layout.claimKey);
  assertEquals(s.fleetProvisioning.csrFile, layout.csr);
  assertEquals(s.fleetProvisioning.deviceKey, layout.deviceKey);
  assertEquals(s.logging.file, join(layout.home, "fleetprov.log"));

  const file = writeConfig(layout, merge(layout.config, { "root-ca": "$CERTS/AmazonRootCA1.pem" }));
  assertEquals((await load(layout, ["--config-file", file], env)).rootCa, layout.rootCa);

  const error = await settingsError(() =>
    load(layout, [
      ...withFlagIn(layout.args, "--cert", "/etc/certs;rm -rf x"),
      "--csr-file",
      "$UNSET_VAR/x.csr",
    ])
  );
  assertEquals(error.problems.length, 2, error.message);
  assertMatch(
    error.message,
    /--csr-file is "\$UNSET_VAR\/x\.csr": it uses \$UNSET_VAR, which is not set in the environment\./,
  );
  assertMatch(
    error.message,
    /--cert is "\/etc\/certs;rm -rf x": it contains ';'; paths may not contain any of \| & ; < > \( \) \{ \}\./,
  );
});

// ---------------------------------------------------------------- template parameters

Deno.test("template parameters: valid forms", () => {
  assertEquals(parseTemplateParameters('{"SerialNumber": "Device-SN"}'), {
    ok: true,
    parameters: { SerialNumber: "Device-SN" },
  });
  assertEquals(parseTemplateParameters({ A: "1", B: "" }), {
    ok: true,
    parameters: { A: "1", B: "" },
  });
  assertEquals(parseTemplateParameters("{}"), { ok: true, parameters: {} });
  assertEquals(parseTemplateParameters(' { "Quote": "a\\"b", "Uni": "é✓" } '), {
    ok: true,
    parameters: { Quote: 'a"b', Uni: "é✓" },
  });
});

Deno.test("template parameters: malformed ones give a clear error", async (t) => {
  const cases: [string, unknown, RegExp][] = [
    [
      "missing colon",
      '{"SerialNumber" "SN-1"}',
      /^is not valid JSON: a colon \(:\) is missing at character 17 \(near '\{"SerialNumber" "SN-1"\}'\); expected a JSON object such as/,
    ],
    [
      "missing comma",
      '{"A": "1" "B": "2"}',
      /^is not valid JSON: a comma \(,\) is missing at character 11/,
    ],
    [
      "empty string",
      "",
      /^is an empty string; expected a JSON object such as \{"SerialNumber": "SN-1"\}, or leave it out$/,
    ],
    ["blank string", "   ", /^is an empty string/],
    [
      "number value",
      '{"Count": 5}',
      /^has parameter "Count" = 5 \(number\); values must be strings: write "5"$/,
    ],
    [
      "boolean value",
      { Enabled: true },
      /^has parameter "Enabled" = true \(boolean\); values must be strings: write "true"$/,
    ],
    [
      "object value",
      '{"Nested": {"a": "b"}}',
      /^has parameter "Nested" = an object; values must be strings$/,
    ],
    ["null value", '{"N": null}', /^has parameter "N" = null; values must be strings$/],
    ["array", '["a"]', /^is an array; expected a JSON object of strings/],
    ["string JSON", '"SN-1"', /^is "SN-1" \(string\); expected a JSON object/],
    ["single quotes", "{'A': '1'}", /^is not valid JSON/],
    ["trailing comma", '{"A": "1",}', /^is not valid JSON/],
    [
      "comment",
      '{"A": "1" /* c */}',
      /^is not valid JSON: a comment is malformed|^is not valid JSON/,
    ],
    [
      "unquoted key",
      "{A: 1}",
      /^is not valid JSON: an invalid character at character 2 \(near '\{A: 1\}'\)/,
    ],
    ["empty key", '{"": "x"}', /^has an empty parameter name$/],
    ["value too long", { A: "x".repeat(4097) }, /^has parameter "A" longer than 4096 characters$/],
  ];
  for (const [name, input, pattern] of cases) {
    await t.step(name, () => {
      const result = parseTemplateParameters(input);
      assert(!result.ok, name);
      assertEquals(result.problems.length, 1);
      assertMatch(result.problems[0], pattern);
    });
  }
});

Deno.test("template parameters: errors through the flag and the config key name their origin", async () => {
  const layout = await makeLayout();
  const viaFlag = await settingsError(() =>
    load(layout, [...layout.args, "--fleet-provisioning-template-parameters", '{"A" "1"}'])
  );
  assertMatch(
    viaFlag.message,
    /^--fleet-provisioning-template-parameters is not valid JSON: a colon/,
  );
  const file = writeConfig(
    layout,
    merge(layout.config, {
      "fleet-provisioning": { "template-parameters": { A: 1, B: false } },
    }),
  );
  const viaKey = await settingsError(() => load(layout, ["--config-file", file]));
  assertEquals(viaKey.problems.length, 2);
  assertMatch(
    viaKey.problems[0],
    /^"fleet-provisioning\.template-parameters" in .* has parameter "A" = 1 \(number\)/,
  );
  assertMatch(viaKey.problems[1], /has parameter "B" = false \(boolean\)/);
});

Deno.test("collect-system-information adds IP, MAC and claim serial; the user's values win", async () => {
  const layout = await makeLayout();
  const file = writeConfig(
    layout,
    merge(layout.config, {
      "fleet-provisioning": {
        "collect-system-information": true,
        "template-parameters": '{"SerialNumber": "SN-1", "DeviceIPAddress": "10.9.9.9"}',
      },
    }),
  );
  const s = await load(layout, ["--config-file", file]);
  const params = s.fleetProvisioning.templateParameters;
  assertEquals(params.SerialNumber, "SN-1");
  assertEquals(params.DeviceIPAddress, "10.9.9.9", "the user's value wins");
  assertEquals(
    params.ProvisioningCertSerialNumber,
    new X509Certificate(readFileSync(layout.claimCert)).serialNumber,
  );
  const system = s.fleetProvisioning.systemParameters!;
  assertMatch(system.DeviceIPAddress, /^\d+\.\d+\.\d+\.\d+$/);
  assert(system.DeviceIPAddress !== "127.0.0.1");
  assertMatch(system.DeviceMACAddress, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  assertEquals(params.DeviceMACAddress, system.DeviceMACAddress);

  const off = await load(layout, layout.args);
  assertEquals(off.fleetProvisioning.systemParameters, undefined);
  assertEquals(off.fleetProvisioning.templateParameters, {});
});

// ---------------------------------------------------------------- client id

Deno.test("client id: --client-id, else client-id, else thing-name, else derived from the machine", async () => {
  const layout = await makeLayout();
  assertEquals(
    (await load(layout, [...layout.args, "--thing-name", "t1", "--client-id", "c1"])).clientId,
    "c1",
  );
  assertEquals((await load(layout, [...layout.args, "--thing-name", "t1"])).clientId, "t1");
  const file = writeConfig(layout, { ...layout.config, "client-id": "c2", "thing-name": "t2" });
  assertEquals((await load(layout, ["--config-file", file])).clientId, "c2");
  const derived = (await load(layout, layout.args)).clientId;
  assertMatch(derived, /^fleetprov-[0-9a-f]{16}$/);
  // sha256("0123456789abcdef0123456789abcdef"), first 16 hex digits.
  assertEquals(
    derived,
    "fleetprov-" + (await sha256("0123456789abcdef0123456789abcdef")).slice(0, 16),
  );
});

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("machine client id: stable, different per machine, never a shared constant", async () => {
  const layout = await makeLayout();
  const a = join(layout.root, "id-a");
  const b = join(layout.root, "id-b");
  writeFileSync(a, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
  writeFileSync(b, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n");
  assertEquals(await machineClientId([a]), await machineClientId([a]));
  assert(await machineClientId([a]) !== await machineClientId([b]));
  // Missing or empty machine id files: falls back to the host name and MAC, still per machine.
  const empty = join(layout.root, "id-empty");
  writeFileSync(empty, "\n");
  const fallback = await machineClientId([join(layout.root, "missing"), empty]);
  assertMatch(fallback, /^fleetprov-[0-9a-f]{16}$/);
  assert(fallback !== await machineClientId([a]));
});

// ---------------------------------------------------------------- runtime config

Deno.test("runtime config: a valid one overrides cert, key and thing-name", async () => {
  const layout = await makeLayout();
  const { cert, key } = writeProvisioned(layout, {
    thingName: "FPTemplateName-abc",
    deviceConfig: { Foo: "Bar" },
  });
  const s = await load(layout, [...layout.args, "--thing-name", "claim-thing"]);
  assertEquals(s.runtime.status, "provisioned");
  assertEquals([s.cert, s.key, s.thingName, s.clientId], [
    cert,
    key,
    "FPTemplateName-abc",
    "FPTemplateName-abc",
  ]);
  assertEquals(s.warnings, []);
});

Deno.test("runtime config: invalid or partial ones are reported precisely and treated as not provisioned", async (t) => {
  const layout = await makeLayout();
  ensureDirectory(layout.configDir, 0o745);
  const path = join(layout.configDir, "aws-iot-device-client-runtime.conf");
  const cases: [string, string, RegExp][] = [
    [
      "completed-fp false",
      '{"runtime-config": {"completed-fp": false, "cert": "/c", "key": "/k", "thing-name": "t"}}',
      /has "completed-fp": false, not true\./,
    ],
    [
      "completed-fp missing",
      '{"runtime-config": {"cert": "/c", "key": "/k", "thing-name": "t"}}',
      /has "completed-fp": null, not true\./,
    ],
    [
      "completed-fp as string",
      '{"runtime-config": {"completed-fp": "true", "cert": "/c", "key": "/k", "thing-name": "t"}}',
      /"completed-fp": "true", not true/,
    ],
    [
      "key missing",
      '{"runtime-config": {"completed-fp": true, "cert": "/c", "thing-name": "t"}}',
      /"completed-fp": true but "key" is missing\./,
    ],
    [
      "thing-name empty",
      '{"runtime-config": {"completed-fp": true, "cert": "/c", "key": "/k", "thing-name": ""}}',
      /"thing-name" is not a non-empty string\./,
    ],
    ["no section", '{"completed-fp": true}', /has no "runtime-config" object\./],
    ["truncated file", '{"runtime-config": {"completed-fp": tr', /is not valid JSON\./],
  ];
  for (const [name, text, pattern] of cases) {
    await t.step(name, async () => {
      writeFileSync(path, text);
      await Deno.chmod(path, 0o640);
      const s = await load(layout, layout.args);
      assertEquals(s.runtime.status, "not-provisioned");
      assertEquals(s.cert, layout.claimCert, "the claim certificate is kept");
      assertEquals(s.warnings.length, 1, s.warnings.join("\n"));
      assertMatch(s.warnings[0], pattern);
      assertMatch(s.warnings[0], /Treated as not provisioned; nothing is deleted\.$/);
      assertEquals(readFileSync(path, "utf8"), text, "nothing is deleted or rewritten");
    });
  }
});

Deno.test("runtime config: round trip with awkward values", async (t) => {
  const layout = await makeLayout();
  ensureDirectory(layout.configDir, 0o745);
  const path = join(layout.configDir, "aws-iot-device-client-runtime.conf");
  const values = [
    'quote " inside',
    "back\\slash \\\\ double",
    "unicode é ✓ 日本 😀",
    "newline\nand\ttab",
    "control \u0001 char",
    "</script>{}[],:",
  ];
  for (const value of values) {
    await t.step(JSON.stringify(value), () => {
      const config = {
        cert: `/certs/${value}.crt`,
        key: `/keys/${value}.key`,
        thingName: `thing-${value}`,
        deviceConfig: { [value]: value, Plain: "x" },
      };
      writeRuntimeConfig(path, config);
      const text = readFileSync(path, "utf8");
      assertEquals(JSON.parse(text)["runtime-config"]["device-config"][value], value);
      assertEquals(readRuntimeConfig(path), { status: "provisioned", ...config });
      assertEquals(formatRuntimeConfig(config), text);
    });
  }
  rmSync(path);
  assertEquals(readRuntimeConfig(path), { status: "absent" });
});

// ---------------------------------------------------------------- secure element, CSR, keys

Deno.test("secure element: provisioning needs a CSR from the token (exit 78); types are still validated", async () => {
  const layout = await makeLayout();
  const lib = join(layout.certsDir, "libpkcs11.so");
  writeFileSync(lib, "ELF");
  await Deno.chmod(lib, 0o640);
  const error = await settingsError(() =>
    load(layout, [
      ...layout.args,
      ...secureElementFlags({ lib, pin: "98765" }),
      "--secure-element-slot-id",
      "x1",
    ])
  );
  assertEquals(error.exitCode, ExitCode.Config);
  assertEquals(error.problems.length, 2, error.message);
  assertMatch(error.problems[0], /^--secure-element-slot-id is "x1"/);
  assertMatch(
    error.problems[1],
    /^--enable-secure-element is true, so provisioning must use a CSR signed inside the token: set "fleet-provisioning.csr-file" or --csr-file/,
  );
  assert(!error.message.includes("98765"), "the PIN is never printed");

  const missing = await settingsError(() =>
    load(
      layout,
      withFlagIn(layout.args, "--enable-secure-element", "true").filter((a, i, all) =>
        a !== "--key" && all[i - 1] !== "--key"
      ),
    )
  );
  assertMatch(missing.message, /The PKCS#11 library is missing/);
  assertMatch(missing.message, /The secure element PIN is missing/);
  assert(
    !/claim private key is missing/.test(missing.message),
    "no key needed with a secure element",
  );
});

Deno.test("CSR path: CSR checks, fallback warning, generate-key conflicts", async (t) => {
  const layout = await makeLayout();
  await t.step("CSR and device key", async () => {
    const s = await load(layout, [
      ...layout.args,
      "--csr-file",
      layout.csr,
      "--device-key",
      layout.deviceKey,
    ]);
    assertEquals([s.fleetProvisioning.csrFile, s.fleetProvisioning.deviceKey], [
      layout.csr,
      layout.deviceKey,
    ]);
    assertEquals(s.warnings, []);
  });
  await t.step("CSR without device key: warned, keys path", async () => {
    const s = await load(layout, [...layout.args, "--csr-file", layout.csr]);
    assertEquals(s.warnings.length, 1);
    assertMatch(s.warnings[0], /--csr-file is set without a device key, so the CSR is not used/);
  });
  await t.step("CSR over 2000 bytes", async () => {
    const big = join(layout.certsDir, "big.csr");
    writeFileSync(big, "-----BEGIN CERTIFICATE REQUEST-----\n" + "A".repeat(2100) + "\n");
    await Deno.chmod(big, 0o600);
    const e = await settingsError(() =>
      load(layout, [...layout.args, "--csr-file", big, "--device-key", layout.deviceKey])
    );
    assertMatch(
      e.message,
      /^CSR .*big\.csr \(from --csr-file\) is \d+ bytes; AWS IoT accepts CSR files of at most 2000 bytes\.$/,
    );
  });
  await t.step("not a CSR", async () => {
    const e = await settingsError(() =>
      load(layout, [
        ...layout.args,
        "--csr-file",
        layout.deviceKey,
        "--device-key",
        layout.deviceKey,
      ])
    );
    assertMatch(e.message, /is not a PEM certificate signing request/);
  });
  await t.step("device key not a key", async () => {
    const e = await settingsError(() =>
      load(layout, [...layout.args, "--csr-file", layout.csr, "--device-key", layout.csr])
    );
    assertMatch(
      e.message,
      /^Device key .*device\.csr \(from --device-key\) is not an unencrypted PEM private key\.$/,
    );
  });
  await t.step("generate-key with a CSR file", async () => {
    const e = await settingsError(() =>
      load(layout, [
        ...layout.args,
        "--csr-file",
        layout.csr,
        "--device-key",
        layout.deviceKey,
        "--generate-key",
        "ec-p256",
      ])
    );
    assertMatch(e.message, /--csr-file and --generate-key are both set; choose one/);
  });
});

Deno.test("claim files: a certificate that is not one, a key that is not one or does not match", async (t) => {
  const layout = await makeLayout();
  await t.step("cert is a key", async () => {
    const notCert = join(layout.certsDir, "not-cert.pem");
    writeFileSync(notCert, readFileSync(layout.claimKey));
    await Deno.chmod(notCert, 0o644);
    const e = await settingsError(() => load(layout, withFlagIn(layout.args, "--cert", notCert)));
    assertMatch(
      e.message,
      /^Certificate .*not-cert\.pem \(from --cert\) is not a PEM X\.509 certificate\.$/,
    );
  });
  await t.step("key is a certificate", async () => {
    const notKey = join(layout.certsDir, "not-key.pem");
    writeFileSync(notKey, readFileSync(layout.claimCert));
    await Deno.chmod(notKey, 0o600);
    const e = await settingsError(() => load(layout, withFlagIn(layout.args, "--key", notKey)));
    assertMatch(
      e.message,
      /^Private key .*not-key\.pem \(from --key\) is not an unencrypted PEM private key\.$/,
    );
    assert(!e.message.includes("BEGIN"), "no file content in messages");
  });
  await t.step("key of another certificate", async () => {
    const e = await settingsError(() =>
      load(layout, withFlagIn(layout.args, "--key", layout.otherKey))
    );
    assertMatch(
      e.message,
      /^Private key .*other\.pem\.key does not belong to certificate .*claim\.pem\.crt/,
    );
  });
});

// ---------------------------------------------------------------- HTTP proxy

Deno.test("HTTP proxy config: valid, default file, and each malformed field", async (t) => {
  const layout = await makeLayout();
  const write = (content: unknown, mode = 0o600) => {
    const path = join(layout.certsDir, "proxy.conf");
    writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
    Deno.chmodSync(path, mode);
    return path;
  };
  const good = {
    "http-proxy-enabled": true,
    "http-proxy-host": "10.0.0.1",
    "http-proxy-port": "3128",
    "http-proxy-auth-method": "UserNameAndPassword",
    "http-proxy-username": "u",
    "http-proxy-password": "s3cret-pw",
  };
  await t.step("valid", async () => {
    const s = await load(layout, [...layout.args, "--http-proxy-config", write(good)]);
    assertEquals(s.httpProxy, {
      file: join(layout.certsDir, "proxy.conf"),
      enabled: true,
      host: "10.0.0.1",
      port: 3128,
      authMethod: "UserNameAndPassword",
      username: "u",
      password: "s3cret-pw",
    });
    assertEquals(s.warnings, []);
  });
  await t.step("default file when present", async () => {
    ensureDirectory(layout.configDir, 0o745);
    const path = join(layout.configDir, "http-proxy.conf");
    writeFileSync(path, JSON.stringify({ "http-proxy-enabled": false }));
    Deno.chmodSync(path, 0o600);
    const s = await load(layout, layout.args);
    assertEquals(s.httpProxy?.enabled, false);
    rmSync(path);
  });
  await t.step("missing file", async () => {
    const e = await settingsError(() =>
      load(layout, [...layout.args, "--http-proxy-config", "/nonexistent/proxy.conf"])
    );
    assertMatch(
      e.message,
      /^HTTP proxy config \/nonexistent\/proxy\.conf \(from --http-proxy-config\) does not exist\.$/,
    );
  });
  const bad: [string, Record<string, unknown>, RegExp][] = [
    [
      "port not a number",
      { "http-proxy-port": "http" },
      /"http-proxy-port" in .* is "http"; expected a port number from 1 to 65535/,
    ],
    ["port 0", { "http-proxy-port": "0" }, /"http-proxy-port" in .* is "0"/],
    [
      "auth method",
      { "http-proxy-auth-method": "Basic" },
      /"http-proxy-auth-method" in .* is "Basic"; expected "UserNameAndPassword" or "None"\./,
    ],
    [
      "enabled as string",
      { "http-proxy-enabled": "true" },
      /"http-proxy-enabled" in .* is "true"; expected true or false\./,
    ],
    [
      "no host",
      { "http-proxy-host": undefined },
      /"http-proxy-host" in .* is missing; it is required when the proxy is enabled\./,
    ],
    [
      "host with scheme",
      { "http-proxy-host": "http://proxy" },
      /"http-proxy-host" in .* is "http:\/\/proxy"; expected a host name or IP address only\./,
    ],
    [
      "no username",
      { "http-proxy-username": undefined },
      /"http-proxy-username" in .* is missing; it is required with "UserNameAndPassword"\./,
    ],
    ["no password", { "http-proxy-password": undefined }, /"http-proxy-password" in .* is missing/],
    [
      "password not a string",
      { "http-proxy-password": 1234 },
      /"http-proxy-password" in .* is not a string; expected a string\./,
    ],
    [
      "unknown key",
      { "http-proxy-hots": "x" },
      /"http-proxy-hots" in .* is not a known HTTP proxy key/,
    ],
  ];
  for (const [name, patch, pattern] of bad) {
    await t.step(name, async () => {
      const e = await settingsError(() =>
        load(layout, [...layout.args, "--http-proxy-config", write({ ...good, ...patch })])
      );
      assertEquals(e.exitCode, ExitCode.Config);
      assertEquals(e.problems.length, 1, e.message);
      assertMatch(e.problems[0], pattern);
      assert(!e.message.includes("s3cret-pw"), "the password is never printed");
    });
  }
});
