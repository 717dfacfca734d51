// SPDX-License-Identifier: Apache-2.0
/**
 * Loading the effective settings: flags, the config file (Device Client
 * format, comments allowed), the runtime config, path expansion, permission
 * rules. Every problem is found before any connection, and all of them are
 * reported at once, one line each.
 *
 * @module
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { ExitCode, FleetprovError } from "../errors.ts";
import { KEY_ALGORITHMS, type KeyAlgorithm } from "../pki/algorithms.ts";
import type { PayloadFormat } from "../provisioning/topics.ts";
import { readRuntimeConfig } from "../runtime_config/mod.ts";
import { readJsoncFile } from "./config_file.ts";
import { parseFlags } from "./flags.ts";
import { readHttpProxyConfig } from "./http_proxy.ts";
import { type Environment, expandPath } from "./paths.ts";
import { checkFile, currentIdentity, type Finding, type Identity, RULES } from "./permissions.ts";
import type { HttpProxySettings, LogLevel, LogType, Settings } from "./settings.ts";
import { collectSystemInformation, MACHINE_ID_FILES, machineClientId } from "./system_info.ts";
import { parseTemplateParameters } from "./template_parameters.ts";

export type { Settings } from "./settings.ts";

/** Name of the Device Client's config directory under the home directory. */
export const CONFIG_DIR_NAME = ".aws-iot-device-client";
/** Default config file name inside the config directory. */
export const CONFIG_FILE_NAME = "aws-iot-device-client.conf";
/** Runtime config file name inside the config directory. */
export const RUNTIME_CONFIG_FILE_NAME = "aws-iot-device-client-runtime.conf";
/** Default HTTP proxy config file name inside the config directory. */
export const HTTP_PROXY_FILE_NAME = "http-proxy.conf";
/** The Device Client's default log file. */
export const DEFAULT_LOG_FILE = "/var/log/aws-iot-device-client/aws-iot-device-client.log";
/** Largest CSR file accepted (spec §3). */
export const MAX_CSR_BYTES = 2000;
/** Longest MQTT client id / thing name AWS IoT accepts, in bytes. */
export const MAX_CLIENT_ID_BYTES = 128;

/** Defaults of the settings that have one. */
export const DEFAULTS = {
  port: 8883,
  logLevel: "INFO" as LogLevel,
  logType: "STDOUT" as LogType,
  logFile: DEFAULT_LOG_FILE,
  payloadFormat: "json" as PayloadFormat,
  stepTimeoutSeconds: 10,
  deadlineSeconds: 300,
  retryBaseDelaySeconds: 1,
  retryMaxDelaySeconds: 30,
} as const;

/** Options of {@linkcode loadSettings}. */
export interface LoadSettingsOptions {
  /** Environment for `$VAR` expansion and `HOME` (default: the process environment). */
  env?: Record<string, string | undefined>;
  /** Home directory holding `.aws-iot-device-client` (default: `$HOME`). */
  home?: string;
  /** Files read for the machine-derived client id (tests). */
  machineIdFiles?: readonly string[];
  /** Identity the ownership rules are checked against (tests; default: this process). */
  identity?: Identity;
}

/**
 * The failure of {@linkcode loadSettings}: every problem, one line each, in
 * `message`; exit code 3 when all are permission problems, else 2. Carries
 * the warnings and ignored keys found on the way, for the caller to print.
 */
export class SettingsError extends FleetprovError {
  /** The error lines. */
  readonly problems: string[];
  /** Non-fatal findings made before failing. */
  readonly warnings: string[];
  /** Keys and flags of other Device Client features that were ignored. */
  readonly ignored: string[];

  /** Creates the error from its lines. */
  constructor(
    problems: string[],
    exitCode: typeof ExitCode.Config | typeof ExitCode.Permission,
    details: { warnings: string[]; ignored: string[] },
  ) {
    super(problems.join("\n"), exitCode);
    this.name = "SettingsError";
    this.problems = problems;
    this.warnings = details.warnings;
    this.ignored = details.ignored;
  }
}

/** Top-level keys of other Device Client features: accepted and ignored. */
export const FOREIGN_SECTIONS = [
  "jobs",
  "tunneling",
  "device-defender",
  "samples",
  "sample-shadow",
  "config-shadow",
  "sensor-publish",
] as const;

/** Keys fleetprov reads, by section ("" is the top level); `false` marks keys of other features. */
const KNOWN_KEYS: Record<string, Record<string, boolean>> = {
  "": {
    endpoint: true,
    cert: true,
    key: true,
    "root-ca": true,
    "thing-name": true,
    port: true,
    "client-id": true,
  },
  logging: {
    level: true,
    type: true,
    file: true,
    "enable-sdk-logging": false,
    "sdk-log-level": false,
    "sdk-log-file": false,
  },
  "fleet-provisioning": {
    enabled: true,
    "template-name": true,
    "template-parameters": true,
    "csr-file": true,
    "device-key": true,
    "collect-system-information": true,
    "payload-format": true,
    "generate-key": true,
    "step-timeout": true,
    deadline: true,
    "retry-base-delay": true,
    "retry-max-delay": true,
  },
  "secure-element": {
    enabled: true,
    "pkcs11-lib": true,
    "secure-element-pin": true,
    "secure-element-key-label": true,
    "secure-element-slot-id": true,
    "secure-element-token-label": true,
    "openssl-engine": true,
  },
};

interface Found {
  value: unknown;
  /** `--endpoint` or `"endpoint" in /etc/x.conf`. */
  origin: string;
  cli: boolean;
}

/** Collects every error and warning of one load. */
class Problems {
  readonly errors: { kind: Finding["kind"]; message: string }[] = [];
  readonly warnings: string[] = [];

  error(message: string, kind: Finding["kind"] = "config"): void {
    this.errors.push({ kind, message });
  }

  warn(message: string): void {
    this.warnings.push(message);
  }

  /** Adds permission findings; returns true when none is fatal. */
  findings(findings: Finding[]): boolean {
    let ok = true;
    for (const f of findings) {
      if (f.severity === "fatal") {
        this.error(f.message, f.kind);
        ok = false;
      } else this.warn(f.message);
    }
    return ok;
  }
}

/**
 * Loads and validates the settings of one run from `args` (argv after any
 * subcommand word), the config file and the runtime config. Throws a
 * {@linkcode SettingsError} listing every problem, one per line.
 */
export async function loadSettings(
  args: string[],
  options: LoadSettingsOptions = {},
): Promise<Settings> {
  await Promise.resolve();
  const env: Environment = options.env ?? process.env;
  const home = options.home ?? env.HOME ?? homedir();
  const identity = options.identity ?? currentIdentity();
  const problems = new Problems();
  const checkedDirs = new Set<string>();
  const expandOptions = { env, home };

  const flags = parseFlags(args);
  for (const e of flags.errors) problems.error(e);
  const ignored: string[] = [];

  const configDir = join(home, CONFIG_DIR_NAME);
  const keysDir = join(configDir, "keys");
  const runtimeConfigPath = join(configDir, RUNTIME_CONFIG_FILE_NAME);

  // The config file.
  let configFile: string | undefined;
  const configFlag = flags.values.get("--config-file");
  if (configFlag !== undefined) {
    const expanded = expandPath(configFlag, expandOptions);
    if (!expanded.ok) {
      problems.error(`--config-file is ${JSON.stringify(configFlag)}: it ${expanded.reason}.`);
    } else if (!existsSync(expanded.path)) {
      problems.error(`Config file ${expanded.path} (from --config-file) does not exist.`);
    } else configFile = expanded.path;
  } else {
    const fallback = join(configDir, CONFIG_FILE_NAME);
    if (existsSync(fallback)) configFile = fallback;
  }
  let json: Record<string, unknown> = {};
  if (configFile !== undefined) {
    const read = readJsoncFile(configFile, "Config file");
    if (read.ok) {
      json = read.data;
      problems.findings(checkFile(configFile, RULES.configFile, {
        origin: configFlag !== undefined ? "--config-file" : "the default config path",
        identity,
        checkedDirs,
      }));
    } else for (const e of read.errors) problems.error(e);
  }
  const inFile = (key: string) => `"${key}" in ${configFile}`;

  // Which keys are there: sections of other features are ignored, unknown keys are warned about.
  for (const [key, value] of Object.entries(json)) {
    if ((FOREIGN_SECTIONS as readonly string[]).includes(key)) {
      ignored.push(key);
    } else if (key === "runtime-config") {
      problems.warn(
        `${
          inFile(key)
        } is ignored: fleetprov reads the runtime config only from ${runtimeConfigPath}.`,
      );
    } else if (key in KNOWN_KEYS && key !== "") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        problems.error(`${inFile(key)} is ${describe(value)}; expected an object ({ ... }).`);
        continue;
      }
      for (const sub of Object.keys(value)) {
        const known = KNOWN_KEYS[key][sub];
        if (known === false) ignored.push(`${key}.${sub}`);
        else if (known === undefined) {
          problems.warn(`${inFile(`${key}.${sub}`)} is not a known key; ignored.`);
        }
      }
    } else if (!(key in KNOWN_KEYS[""])) {
      problems.warn(`${inFile(key)} is not a known key; ignored.`);
    }
  }
  ignored.push(...flags.ignored);

  // Value lookup: the flag wins over the config file.
  function lookup(flag: string | undefined, key: string | undefined): Found | undefined {
    if (flag !== undefined && flags.values.has(flag)) {
      return { value: flags.values.get(flag), origin: flag, cli: true };
    }
    if (key === undefined) return undefined;
    const parts = key.split(".");
    let node: unknown = json;
    for (const part of parts) {
      if (typeof node !== "object" || node === null || Array.isArray(node)) return undefined;
      node = (node as Record<string, unknown>)[part];
    }
    return node === undefined ? undefined : { value: node, origin: inFile(key), cli: false };
  }

  function getString(
    flag: string | undefined,
    key: string | undefined,
    secret = false,
  ): { value: string; origin: string } | undefined {
    const found = lookup(flag, key);
    if (!found) return undefined;
    if (typeof found.value !== "string") {
      problems.error(
        `${found.origin} is ${
          secret ? `a ${typeof found.value} (value not shown)` : describe(found.value)
        }; expected a string.`,
      );
      return undefined;
    }
    if (found.value === "") {
      if (found.cli) {
        problems.error(`${found.origin} is empty; give a value or leave the flag out.`);
      } else problems.warn(`${found.origin} is empty; ignored.`);
      return undefined;
    }
    return { value: found.value, origin: found.origin };
  }

  function getPath(flag: string | undefined, key: string | undefined) {
    const found = getString(flag, key);
    if (!found) return undefined;
    const expanded = expandPath(found.value, expandOptions);
    if (!expanded.ok) {
      problems.error(`${found.origin} is ${JSON.stringify(found.value)}: it ${expanded.reason}.`);
      return undefined;
    }
    return { path: expanded.path, origin: found.origin };
  }

  function getBoolean(flag: string | undefined, key: string): boolean | undefined {
    const found = lookup(flag, key);
    if (!found) return undefined;
    if (found.cli) return found.value === "true";
    if (typeof found.value !== "boolean") {
      problems.error(`${found.origin} is ${describe(found.value)}; expected true or false.`);
      return undefined;
    }
    return found.value;
  }

  function getNumber(
    flag: string,
    key: string,
    rule: { integer?: boolean; min: number; max?: number; minExclusive?: boolean; what: string },
  ): number | undefined {
    const found = lookup(flag, key);
    if (!found) return undefined;
    let n = NaN;
    if (found.cli) {
      const text = found.value as string;
      if (/^\d+(\.\d+)?$/.test(text)) n = Number(text);
    } else if (typeof found.value === "number") n = found.value;
    const ok = Number.isFinite(n) && (!rule.integer || Number.isInteger(n)) &&
      (rule.minExclusive ? n > rule.min : n >= rule.min) &&
      (rule.max === undefined || n <= rule.max);
    if (!ok) {
      problems.error(`${found.origin} is ${describe(found.value)}; expected ${rule.what}.`);
      return undefined;
    }
    return n;
  }

  function getChoice<T extends string>(
    flag: string,
    key: string,
    choices: readonly T[],
    normalize: (s: string) => string = (s) => s,
  ): T | undefined {
    const found = getString(flag, key);
    if (!found) return undefined;
    const value = normalize(found.value);
    if (!(choices as readonly string[]).includes(value)) {
      problems.error(
        `${found.origin} is ${JSON.stringify(found.value)}; expected ${orList(choices)}.`,
      );
      return undefined;
    }
    return value as T;
  }

  // Connection.
  const endpoint = getString("--endpoint", "endpoint");
  if (endpoint && !isHostName(endpoint.value)) {
    problems.error(
      `${endpoint.origin} is ${
        JSON.stringify(endpoint.value)
      }; expected a host name only, such as abc123-ats.iot.us-east-1.amazonaws.com (no scheme, port or path).`,
    );
  }
  const port = getNumber("--port", "port", {
    integer: true,
    min: 1,
    max: 65535,
    what: "an integer port from 1 to 65535 (8883, or 443 with ALPN)",
  }) ?? DEFAULTS.port;
  let cert = getPath("--cert", "cert");
  let key = getPath("--key", "key");
  const rootCaFound = getPath("--root-ca", "root-ca");
  const thingNameFound = getString("--thing-name", "thing-name");
  if (thingNameFound) checkIdLength(thingNameFound, problems);
  const clientIdFound = getString("--client-id", "client-id");
  if (clientIdFound) checkIdLength(clientIdFound, problems);

  // Logging.
  const logLevel = getChoice<LogLevel>(
    "--log-level",
    "logging.level",
    ["DEBUG", "INFO", "WARN", "ERROR"],
    (s) => s.toUpperCase(),
  ) ?? DEFAULTS.logLevel;
  const logType = getChoice<LogType>(
    "--log-type",
    "logging.type",
    ["STDOUT", "FILE"],
    (s) => s.toUpperCase(),
  ) ?? DEFAULTS.logType;
  const logFile = getPath("--log-file", "logging.file")?.path ?? DEFAULTS.logFile;

  // Fleet provisioning.
  const fpEnabled = getBoolean("--enable-fleet-provisioning", "fleet-provisioning.enabled") ??
    false;
  const templateName = getString(
    "--fleet-provisioning-template-name",
    "fleet-provisioning.template-name",
  );
  if (templateName && !/^[0-9A-Za-z_-]{1,36}$/.test(templateName.value)) {
    problems.error(
      `${templateName.origin} is ${
        JSON.stringify(templateName.value)
      }; expected 1 to 36 letters, digits, '-' or '_' (an AWS IoT provisioning template name).`,
    );
  }
  let userParameters: Record<string, string> = {};
  const parametersFound = lookup(
    "--fleet-provisioning-template-parameters",
    "fleet-provisioning.template-parameters",
  );
  if (parametersFound) {
    if (
      !parametersFound.cli && typeof parametersFound.value !== "string" &&
      (typeof parametersFound.value !== "object" || parametersFound.value === null ||
        Array.isArray(parametersFound.value))
    ) {
      problems.error(
        `${parametersFound.origin} is ${
          describe(parametersFound.value)
        }; expected a JSON object of strings, or a string holding one.`,
      );
    } else {
      const parsed = parseTemplateParameters(parametersFound.value);
      if (parsed.ok) userParameters = parsed.parameters;
      else for (const p of parsed.problems) problems.error(`${parametersFound.origin} ${p}.`);
    }
  }
  const csrFound = getPath("--csr-file", "fleet-provisioning.csr-file");
  const deviceKeyFound = getPath("--device-key", "fleet-provisioning.device-key");
  const collectSystemInfo =
    getBoolean(undefined, "fleet-provisioning.collect-system-information") ?? false;
  const generateKey = getChoice<KeyAlgorithm>(
    "--generate-key",
    "fleet-provisioning.generate-key",
    KEY_ALGORITHMS,
    (s) => s.toLowerCase(),
  );
  const payloadFormat = getChoice<PayloadFormat>(
    "--payload-format",
    "fleet-provisioning.payload-format",
    ["json", "cbor"],
    (s) => s.toLowerCase(),
  ) ?? DEFAULTS.payloadFormat;
  const seconds = (what: string) => ({ min: 0, minExclusive: true, what });
  const stepTimeout = getNumber(
    "--step-timeout",
    "fleet-provisioning.step-timeout",
    seconds("a number of seconds greater than 0, e.g. 10"),
  ) ?? DEFAULTS.stepTimeoutSeconds;
  const deadline = getNumber(
    "--deadline",
    "fleet-provisioning.deadline",
    seconds("a number of seconds greater than 0, e.g. 300"),
  ) ?? DEFAULTS.deadlineSeconds;
  const baseDelay = getNumber("--retry-base-delay", "fleet-provisioning.retry-base-delay", {
    min: 0,
    what: "a number of seconds, 0 or more, e.g. 1",
  }) ?? DEFAULTS.retryBaseDelaySeconds;
  const maxDelay = getNumber("--retry-max-delay", "fleet-provisioning.retry-max-delay", {
    min: 0,
    what: "a number of seconds, 0 or more, e.g. 30",
  }) ?? DEFAULTS.retryMaxDelaySeconds;
  if (maxDelay < baseDelay) {
    problems.error(
      `The retry max delay (${maxDelay} s) is smaller than the retry base delay (${baseDelay} s); set --retry-max-delay to ${baseDelay} or more.`,
    );
  }
  if (stepTimeout > deadline) {
    problems.error(
      `The step timeout (${stepTimeout} s) is longer than the deadline (${deadline} s); set --deadline to ${stepTimeout} or more.`,
    );
  }

  // Secure element.
  const seEnabled = getBoolean("--enable-secure-element", "secure-element.enabled") ?? false;
  const pkcs11Lib = getPath("--pkcs11-lib", "secure-element.pkcs11-lib");
  const opensslEngine = getPath("--openssl-engine", "secure-element.openssl-engine");
  const pin = getString("--secure-element-pin", "secure-element.secure-element-pin", true);
  const keyLabel = getString(
    "--secure-element-key-label",
    "secure-element.secure-element-key-label",
  );
  const tokenLabel = getString(
    "--secure-element-token-label",
    "secure-element.secure-element-token-label",
  );
  const slotId = getNumber("--secure-element-slot-id", "secure-element.secure-element-slot-id", {
    integer: true,
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    what: "a slot number (an integer, 0 or more)",
  });

  // HTTP proxy.
  let httpProxy: HttpProxySettings | undefined;
  let proxyPath: string | undefined;
  const proxyFlag = flags.values.get("--http-proxy-config");
  if (proxyFlag !== undefined) {
    const expanded = expandPath(proxyFlag, expandOptions);
    if (!expanded.ok) {
      problems.error(`--http-proxy-config is ${JSON.stringify(proxyFlag)}: it ${expanded.reason}.`);
    } else if (!existsSync(expanded.path)) {
      problems.error(
        `HTTP proxy config ${expanded.path} (from --http-proxy-config) does not exist.`,
      );
    } else proxyPath = expanded.path;
  } else if (existsSync(join(configDir, HTTP_PROXY_FILE_NAME))) {
    proxyPath = join(configDir, HTTP_PROXY_FILE_NAME);
  }
  if (proxyPath !== undefined) {
    const read = readHttpProxyConfig(proxyPath);
    if (read.ok) {
      httpProxy = read.settings;
      problems.findings(
        checkFile(proxyPath, RULES.proxyConfig, { origin: "--http-proxy-config", identity }),
      );
    } else for (const e of read.errors) problems.error(e);
  }

  // The runtime config: a valid one overrides cert, key and thing-name.
  const runtime = readRuntimeConfig(runtimeConfigPath, { keyInSecureElement: seEnabled });
  if (runtime.status !== "absent") {
    problems.findings(checkFile(runtimeConfigPath, RULES.runtimeConfig, {
      origin: "the runtime config",
      identity,
      checkedDirs,
    }));
  }
  const claimCert = cert;
  let thingName = thingNameFound?.value;
  const provisioned = runtime.status === "provisioned";
  if (runtime.status === "provisioned") {
    const origin = `the runtime config ${runtimeConfigPath}`;
    cert = { path: runtime.cert, origin };
    // With a secure element the Device Client records an empty key path: the key is in the token.
    key = runtime.key === "" ? undefined : { path: runtime.key, origin };
    thingName = runtime.thingName;
  } else if (runtime.status === "not-provisioned") {
    problems.warn(`${runtime.reason} Treated as not provisioned; nothing is deleted.`);
  }

  // Required settings.
  // (A value given but invalid was reported already: it is not "missing" too.)
  const given = (flag: string, key: string) => lookup(flag, key) !== undefined;
  if (!endpoint && !given("--endpoint", "endpoint")) {
    problems.error(`The endpoint is missing: set "endpoint" in the config file or --endpoint.`);
  }
  if (!cert && !given("--cert", "cert")) {
    problems.error(`The claim certificate is missing: set "cert" in the config file or --cert.`);
  }
  if (!key && !seEnabled && !given("--key", "key")) {
    problems.error(`The claim private key is missing: set "key" in the config file or --key.`);
  }
  if (
    fpEnabled && !templateName &&
    !given("--fleet-provisioning-template-name", "fleet-provisioning.template-name")
  ) {
    problems.error(
      `The template name is missing: set "fleet-provisioning.template-name" in the config file or --fleet-provisioning-template-name (required when fleet provisioning is enabled).`,
    );
  }

  // Files: existence, type, modes, owners, contents.
  const fileOptions = (origin: string) => ({ origin, identity, checkedDirs });
  let certPem: string | undefined;
  if (
    cert && problems.findings(checkFile(cert.path, RULES.certificate, fileOptions(cert.origin)))
  ) {
    certPem = readPem(cert.path);
    if (!parseCertificate(certPem)) {
      problems.error(
        `Certificate ${cert.path} (from ${cert.origin}) is not a PEM X.509 certificate.`,
      );
      certPem = undefined;
    }
  }
  let privateKey: KeyObject | undefined;
  if (key && problems.findings(checkFile(key.path, RULES.privateKey, fileOptions(key.origin)))) {
    privateKey = parsePrivateKey(key.path);
    if (!privateKey) {
      problems.error(
        `Private key ${key.path} (from ${key.origin}) is not an unencrypted PEM private key.`,
      );
    }
  }
  if (certPem && privateKey) {
    const certificate = parseCertificate(certPem);
    if (certificate && typeof certificate.checkPrivateKey === "function") {
      let matches = true;
      try {
        matches = certificate.checkPrivateKey(privateKey);
      } catch { /* key type not comparable here: the TLS handshake will tell */ }
      if (!matches) {
        problems.error(
          `Private key ${key!.path} does not belong to certificate ${
            cert!.path
          }; give the key made with that certificate.`,
        );
      }
    }
  }
  let rootCa: string | undefined;
  if (rootCaFound) {
    if (!existsSync(rootCaFound.path)) {
      problems.warn(
        `Root CA ${rootCaFound.path} (from ${rootCaFound.origin}) does not exist; using the system trust store.`,
      );
    } else if (
      problems.findings(checkFile(rootCaFound.path, RULES.rootCa, fileOptions(rootCaFound.origin)))
    ) {
      rootCa = rootCaFound.path;
    }
  }
  if (generateKey && csrFound) {
    problems.error(
      `${csrFound.origin} and ${
        lookup("--generate-key", "fleet-provisioning.generate-key")!.origin
      } are both set; choose one: a CSR made elsewhere, or a key and CSR generated on the board.`,
    );
  }
  if (!provisioned) {
    if (
      csrFound &&
      problems.findings(checkFile(csrFound.path, RULES.csr, fileOptions(csrFound.origin)))
    ) {
      const problem = csrProblem(csrFound.path);
      if (problem) problems.error(`CSR ${csrFound.path} (from ${csrFound.origin}) ${problem}.`);
    }
    if (deviceKeyFound) {
      if (
        problems.findings(
          checkFile(deviceKeyFound.path, RULES.privateKey, fileOptions(deviceKeyFound.origin)),
        ) && !parsePrivateKey(deviceKeyFound.path)
      ) {
        problems.error(
          `Device key ${deviceKeyFound.path} (from ${deviceKeyFound.origin}) is not an unencrypted PEM private key.`,
        );
      }
    }
    if (csrFound && !deviceKeyFound && !seEnabled) {
      problems.warn(
        `${csrFound.origin} is set without a device key, so the CSR is not used: the certificate and key are created by AWS IoT (CreateKeysAndCertificate), as the Device Client does.`,
      );
    }
    if (deviceKeyFound && !csrFound) {
      problems.warn(
        `${deviceKeyFound.origin} is set without a CSR file; it is ignored.`,
      );
    }
  }
  if (seEnabled) {
    if (!pkcs11Lib) {
      problems.error(
        `The PKCS#11 library is missing: set "secure-element.pkcs11-lib" or --pkcs11-lib (required when the secure element is enabled).`,
      );
    } else {problems.findings(
        checkFile(pkcs11Lib.path, RULES.pkcs11Lib, fileOptions(pkcs11Lib.origin)),
      );}
    if (!pin) {
      problems.error(
        `The secure element PIN is missing: set "secure-element.secure-element-pin" or --secure-element-pin (required when the secure element is enabled).`,
      );
    }
    const seOrigin = lookup("--enable-secure-element", "secure-element.enabled")!.origin;
    if (fpEnabled && !provisioned && !csrFound) {
      problems.error(
        `${seOrigin} is true, so provisioning must use a CSR signed inside the token: set "fleet-provisioning.csr-file" or --csr-file (fleetprov never imports a private key into a secure element).`,
      );
    }
    if (generateKey) {
      problems.error(
        `${
          lookup("--generate-key", "fleet-provisioning.generate-key")!.origin
        } cannot be used with a secure element (${seOrigin}): the key must be created inside the token; give its CSR with --csr-file.`,
      );
    }
    if (opensslEngine) {
      problems.findings(
        checkFile(opensslEngine.path, RULES.pkcs11Lib, fileOptions(opensslEngine.origin)),
      );
    }
  }

  // Template parameters: system information first, the user's values win.
  let systemParameters: Record<string, string> | undefined;
  if (collectSystemInfo && !provisioned) {
    let claimPem: string | undefined;
    if (claimCert && certPem) claimPem = certPem;
    const collected = collectSystemInformation(claimPem);
    systemParameters = collected.parameters;
    for (const note of collected.notes) problems.warn(note);
  }
  const templateParameters = { ...systemParameters, ...userParameters };

  const clientId = clientIdFound?.value ?? thingName ??
    machineClientId(options.machineIdFiles ?? MACHINE_ID_FILES);

  const warnings = problems.warnings;
  if (problems.errors.length > 0) {
    const onlyPermission = problems.errors.every((e) => e.kind === "permission");
    throw new SettingsError(
      problems.errors.map((e) => e.message),
      onlyPermission ? ExitCode.Permission : ExitCode.Config,
      { warnings, ignored },
    );
  }

  return {
    ...(configFile !== undefined ? { configFile } : {}),
    endpoint: endpoint!.value,
    port,
    cert: cert!.path,
    ...(key ? { key: key.path } : {}),
    ...(rootCa !== undefined ? { rootCa } : {}),
    ...(thingName !== undefined ? { thingName } : {}),
    clientId,
    logging: { level: logLevel, type: logType, file: logFile },
    fleetProvisioning: {
      enabled: fpEnabled,
      templateName: templateName?.value ?? "",
      templateParameters,
      ...(csrFound ? { csrFile: csrFound.path } : {}),
      ...(deviceKeyFound ? { deviceKey: deviceKeyFound.path } : {}),
      collectSystemInformation: collectSystemInfo,
      ...(systemParameters ? { systemParameters } : {}),
      ...(generateKey ? { generateKey } : {}),
    },
    secureElement: {
      enabled: seEnabled,
      ...(pkcs11Lib ? { pkcs11Lib: pkcs11Lib.path } : {}),
      ...(pin ? { pin: pin.value } : {}),
      ...(keyLabel ? { keyLabel: keyLabel.value } : {}),
      ...(slotId !== undefined ? { slotId } : {}),
      ...(tokenLabel ? { tokenLabel: tokenLabel.value } : {}),
      ...(opensslEngine ? { opensslEngine: opensslEngine.path } : {}),
    },
    ...(httpProxy ? { httpProxy } : {}),
    payloadFormat,
    retry: {
      stepTimeoutMs: Math.round(stepTimeout * 1000),
      deadlineMs: Math.round(deadline * 1000),
      baseDelayMs: Math.round(baseDelay * 1000),
      maxDelayMs: Math.round(maxDelay * 1000),
    },
    configDir,
    keysDir,
    runtimeConfigPath,
    runtime,
    ignored,
    warnings,
  };
}

function checkIdLength(found: { value: string; origin: string }, problems: Problems): void {
  const bytes = new TextEncoder().encode(found.value).length;
  if (bytes > MAX_CLIENT_ID_BYTES) {
    problems.error(
      `${found.origin} is ${bytes} bytes long; AWS IoT accepts at most ${MAX_CLIENT_ID_BYTES}.`,
    );
  }
}

function isHostName(value: string): boolean {
  return !value.includes("://") && !/[\s/?#@]/.test(value) && value.length <= 253;
}

function readPem(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function parseCertificate(pem: string | undefined): X509Certificate | undefined {
  if (pem === undefined || !pem.includes("-----BEGIN CERTIFICATE-----")) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function parsePrivateKey(path: string): KeyObject | undefined {
  const pem = readPem(path);
  if (pem === undefined || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) return undefined;
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch {
    return undefined;
  }
}

function csrProblem(path: string): string | undefined {
  const size = statSync(path).size;
  if (size > MAX_CSR_BYTES) {
    return `is ${size} bytes; AWS IoT accepts CSR files of at most ${MAX_CSR_BYTES} bytes`;
  }
  const text = readPem(path) ?? "";
  if (!/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(text)) {
    return "is not a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)";
  }
  return undefined;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}..."` : text;
}

function orList(items: readonly string[]): string {
  return items.length === 1
    ? items[0]
    : `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`;
}

/** The one notice listing ignored keys and flags of other Device Client features. */
export function ignoredNotice(ignored: readonly string[]): string {
  return `Ignoring settings of other Device Client features: ${ignored.join(", ")}.`;
}
