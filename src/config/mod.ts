// SPDX-License-Identifier: Apache-2.0
/**
 * Loading the effective settings: flags, the config file (Device Client
 * format, comments allowed), the runtime config, path expansion, permission
 * rules. Every problem is found before any connection, and all of them are
 * reported at once, one line each.
 *
 * The settings themselves are data (`table.ts`); the generic reader
 * (`reader.ts`) reads them; the checks live by concern in `validators/`.
 *
 * @module
 */
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { ExitCode, FleetprovError } from "../errors.ts";
import { pausePoint } from "../failpoints.ts";
import { readClock } from "../clock/mod.ts";
import type { KeyAlgorithm } from "../pki/algorithms.ts";
import type { PayloadFormat } from "../protocol/mod.ts";
import { readRuntimeConfig, type RuntimeConfigState } from "../runtime_config/mod.ts";
import { readJsoncFile } from "./config_file.ts";
import { parseFlags } from "./flags.ts";
import { inventoryKeys } from "./known_keys.ts";
import { currentIdentity, type Identity, RULES } from "./permissions.ts";
import { type LoadContext, type Located, Problems } from "./problems.ts";
import { SettingValues } from "./reader.ts";
import type {
  HttpProxySettings,
  LogLevel,
  LogType,
  MqttVersion,
  RotationKeySource,
  Settings,
} from "./settings.ts";
import { MACHINE_ID_FILES, machineClientId } from "./system_info.ts";
import { defaultOf, SETTINGS } from "./table.ts";
import { checkRequired } from "./validators/connection.ts";
import {
  checkKeySource,
  checkTemplateNameGiven,
  checkTimes,
  templateParameters,
} from "./validators/fleet_provisioning.ts";
import { checkCredentialFiles, checkPermissions, locateFile } from "./validators/paths.ts";
import { loadProxySettings } from "./validators/proxy.ts";
import { checkSecureElement } from "./validators/secure_element.ts";

export type { MqttVersion, Settings } from "./settings.ts";
export { DEFAULT_LOG_FILE } from "./table.ts";
export { FOREIGN_SECTIONS } from "./known_keys.ts";

/** Name of the Device Client's config directory under the home directory. */
export const CONFIG_DIR_NAME = ".aws-iot-device-client";
/** Default config file name inside the config directory. */
export const CONFIG_FILE_NAME = "aws-iot-device-client.conf";
/** Runtime config file name inside the config directory. */
export const RUNTIME_CONFIG_FILE_NAME = "aws-iot-device-client-runtime.conf";
/** Default HTTP proxy config file name inside the config directory. */
export const HTTP_PROXY_FILE_NAME = "http-proxy.conf";

/** Defaults of the settings that have one (from the settings table). */
export const DEFAULTS = {
  port: defaultOf<number>("port"),
  logLevel: defaultOf<LogLevel>("logging.level"),
  logType: defaultOf<LogType>("logging.type"),
  logFile: defaultOf<string>("logging.file"),
  payloadFormat: defaultOf<PayloadFormat>("fleet-provisioning.payload-format"),
  stepTimeoutSeconds: defaultOf<number>("fleet-provisioning.step-timeout"),
  deadlineSeconds: defaultOf<number>("fleet-provisioning.deadline"),
  retryBaseDelaySeconds: defaultOf<number>("fleet-provisioning.retry-base-delay"),
  retryMaxDelaySeconds: defaultOf<number>("fleet-provisioning.retry-max-delay"),
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
  /** The clock the credentials' validity is judged by (tests; default: the system's). */
  clock?: { now?: number; timesyncFlag?: string };
  /**
   * Load a board's config on another machine (`fleetprov lint`): the files
   * the board holds (claim certificate and key, root CA, CSR, device key,
   * the runtime config) are not read, modes and owners are not checked,
   * system information is not collected, and a client id the board would
   * derive from its machine id is left empty (`clientIdDerived`). Every other
   * check of the config and flags is made as for a run.
   */
  forLint?: boolean;
}

/**
 * The failure of {@linkcode loadSettings}: every problem, one line each, in
 * `problems` (and `message`); exit code 74 when one is an I/O error of the
 * storage, 77 when all are permission problems, else 78. Carries the warnings
 * and ignored keys found on the way, for the caller to print.
 */
export class SettingsError extends FleetprovError {
  /** Non-fatal findings made before failing. */
  readonly warnings: string[];
  /** Keys and flags of other Device Client features that were ignored. */
  readonly ignored: string[];

  /** Creates the error from its lines. */
  constructor(
    problems: string[],
    exitCode:
      | typeof ExitCode.Config
      | typeof ExitCode.NoPermission
      | typeof ExitCode.IoError,
    details: { warnings: string[]; ignored: string[] },
  ) {
    super(problems.join("\n"), exitCode, { problems, kind: KIND_OF_CODE[exitCode] });
    this.name = "SettingsError";
    this.warnings = details.warnings;
    this.ignored = details.ignored;
  }
}

/** The result line's cause of each exit code a load can end with. */
const KIND_OF_CODE = {
  [ExitCode.Config]: "config",
  [ExitCode.NoPermission]: "permission",
  [ExitCode.IoError]: "io-error",
} as const;

/** Where a device keeps its state: `~/.aws-iot-device-client` and what is in it. */
interface Layout {
  configDir: string;
  keysDir: string;
  runtimeConfigPath: string;
}

/** The claim credentials and thing name, after a valid runtime config overrode them. */
interface Claim {
  cert?: Located;
  key?: Located;
  rootCa?: Located;
  thingName?: string;
  runtime: RuntimeConfigState;
  provisioned: boolean;
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
  const env = options.env ?? process.env;
  const home = options.home ?? env.HOME ?? homedir();
  const offline = options.forLint === true;
  const context: LoadContext = {
    problems: new Problems(),
    identity: options.identity ?? currentIdentity(),
    checkedDirs: new Set<string>(),
    expand: { env, home },
    ...(offline ? { offline } : {}),
  };
  const configDir = join(home, CONFIG_DIR_NAME);
  const layout: Layout = {
    configDir,
    keysDir: join(configDir, "keys"),
    runtimeConfigPath: join(configDir, RUNTIME_CONFIG_FILE_NAME),
  };
  const flags = parseFlags(args);
  for (const e of flags.errors) context.problems.error(e);
  const configFlag = flags.values.get("--config-file");
  const file = loadConfigFile(configFlag, join(configDir, CONFIG_FILE_NAME), context);
  // A config file that cannot be found, read or parsed is the one root cause: what it
  // would have set ("endpoint is missing", ...) is not reported as more problems.
  if (file.failed) throwIfProblems(context.problems, flags.ignored);
  const ignored = [
    ...inventoryKeys(
      file.json,
      { ...file, runtimeConfigPath: layout.runtimeConfigPath },
      context.problems,
    ),
    ...flags.ignored,
  ];
  await pausePoint("loading-settings");
  const values = new SettingValues(SETTINGS, { flags: flags.values, ...file }, context);
  checkTimes(values, context);
  const proxyFlag = flags.values.get("--http-proxy-config");
  const httpProxy = loadProxySettings(proxyFlag, join(configDir, HTTP_PROXY_FILE_NAME), context);
  const claim = offline
    ? { ...claimSettings(values), runtime: { status: "absent" as const }, provisioned: false }
    : claimAfterRuntimeConfig(values, layout.runtimeConfigPath, context);
  checkRequired(values, claim, context.problems);
  checkTemplateNameGiven(values, context);
  const { provisioned } = claim;
  const files = offline ? { rootCa: claim.rootCa?.path } : await checkCredentialFiles(
    claim,
    { provisioned, clock: readClock(options.clock) },
    context,
  );
  const secureElement = values.value<boolean>("secure-element.enabled")!;
  // Offline, "provisioned" skips what reads the CSR, the device key and the system.
  await checkKeySource(values, { provisioned: provisioned || offline, secureElement }, context);
  checkSecureElement(values, { provisioned }, context);
  const parameters = await templateParameters(
    values,
    { provisioned: provisioned || offline, claimCertPem: files.certPem },
    context,
  );
  const configured = values.value("client-id") ?? claim.thingName;
  const clientId = configured ??
    (offline ? "" : await machineClientId(options.machineIdFiles ?? MACHINE_ID_FILES));
  throwIfProblems(context.problems, ignored);
  return buildSettings(values, {
    ...file,
    layout,
    claim,
    rootCa: files.rootCa,
    clientId,
    clientIdDerived: configured === undefined,
    httpProxy,
    parameters,
    ignored,
    warnings: context.problems.warnings,
  });
}

/** The config file (`--config-file`, else the default path when present), read and checked. */
function loadConfigFile(
  flagValue: string | undefined,
  fallback: string,
  context: LoadContext,
): { configFile?: string; json: Record<string, unknown>; failed?: true } {
  const flag = { name: "--config-file", value: flagValue };
  const errorsBefore = context.problems.errors.length;
  const configFile = locateFile(flag, "Config file", fallback, context);
  if (configFile === undefined) {
    return context.problems.errors.length > errorsBefore
      ? { json: {}, failed: true }
      : { json: {} };
  }
  const read = readJsoncFile(configFile, "Config file");
  if (!read.ok) {
    context.problems.error(read.error, read.kind);
    return { configFile, json: {}, failed: true };
  }
  const origin = flagValue !== undefined ? "--config-file" : "the default config path";
  checkPermissions(configFile, RULES.configFile, origin, context);
  return { configFile, json: read.data };
}

/** The claim settings, overridden by a valid runtime config (cert, key and thing name). */
function claimAfterRuntimeConfig(
  values: SettingValues,
  runtimeConfigPath: string,
  context: LoadContext,
): Claim {
  const runtime = readRuntimeConfig(runtimeConfigPath, {
    keyInSecureElement: values.value<boolean>("secure-element.enabled"),
  });
  if (runtime.status !== "absent") {
    checkPermissions(runtimeConfigPath, RULES.runtimeConfig, "the runtime config", context);
  }
  const claim = { ...claimSettings(values), runtime };
  if (runtime.status === "provisioned") {
    const origin = `the runtime config ${runtimeConfigPath}`;
    return {
      ...claim,
      provisioned: true,
      cert: { path: runtime.cert, origin },
      // With a secure element the Device Client records an empty key path: the key is in the token.
      key: runtime.key === "" ? undefined : { path: runtime.key, origin },
      thingName: runtime.thingName,
    };
  }
  if (runtime.status === "not-provisioned") {
    context.problems.warn(`${runtime.reason} Treated as not provisioned; nothing is deleted.`);
  }
  return { ...claim, provisioned: false };
}

/** The claim certificate, key, root CA and thing name as the config and flags give them. */
function claimSettings(values: SettingValues): Omit<Claim, "runtime" | "provisioned"> {
  const located = (key: string): Located | undefined => {
    const entry = values.entry(key);
    return entry && { path: entry.value, origin: entry.origin };
  };
  return {
    cert: located("cert"),
    key: located("key"),
    rootCa: located("root-ca"),
    thingName: values.value("thing-name"),
  };
}

/**
 * Throws the {@linkcode SettingsError} of a load that found errors: 74 when
 * the storage failed (EIO), 77 when every error is a permission problem, else 78.
 */
function throwIfProblems(problems: Problems, ignored: string[]): void {
  if (problems.errors.length === 0) return;
  const kinds = problems.errors.map((e) => e.kind);
  const code = kinds.includes("io-error")
    ? ExitCode.IoError
    : kinds.every((kind) => kind === "permission")
    ? ExitCode.NoPermission
    : ExitCode.Config;
  throw new SettingsError(problems.errors.map((e) => e.message), code, {
    warnings: problems.warnings,
    ignored,
  });
}

/** What {@linkcode buildSettings} needs besides the values of the table. */
interface Resolved {
  configFile?: string;
  layout: Layout;
  claim: Claim;
  rootCa?: string;
  clientId: string;
  clientIdDerived: boolean;
  httpProxy?: HttpProxySettings;
  parameters: { parameters: Record<string, string>; systemParameters?: Record<string, string> };
  ignored: string[];
  warnings: string[];
}

/** The validated settings of a load without errors. */
function buildSettings(values: SettingValues, resolved: Resolved): Settings {
  const { claim, layout, parameters } = resolved;
  const v = <T = string>(key: string): T | undefined => values.value<T>(key);
  const ms = (key: string) => Math.round(v<number>(key)! * 1000);
  const optional = <K extends string, T>(name: K, value: T | undefined) =>
    (value === undefined ? {} : { [name]: value }) as { [P in K]?: T };
  return {
    ...optional("configFile", resolved.configFile),
    endpoint: v("endpoint")!,
    port: v<number>("port")!,
    cert: claim.cert!.path,
    ...optional("claimCert", v<string>("cert")),
    ...optional("key", claim.key?.path),
    ...optional("rootCa", resolved.rootCa),
    ...optional("thingName", claim.thingName),
    clientId: resolved.clientId,
    ...(resolved.clientIdDerived ? { clientIdDerived: true } : {}),
    logging: {
      level: v<LogLevel>("logging.level")!,
      type: v<LogType>("logging.type")!,
      file: v("logging.file")!,
    },
    fleetProvisioning: {
      enabled: v<boolean>("fleet-provisioning.enabled")!,
      templateName: v("fleet-provisioning.template-name") ?? "",
      templateParameters: parameters.parameters,
      ...optional("csrFile", v<string>("fleet-provisioning.csr-file")),
      ...optional("deviceKey", v<string>("fleet-provisioning.device-key")),
      collectSystemInformation: v<boolean>("fleet-provisioning.collect-system-information")!,
      ...optional("systemParameters", parameters.systemParameters),
      ...optional("generateKey", v<KeyAlgorithm>("fleet-provisioning.generate-key")),
      ...optional("rotationTemplateName", v<string>("fleet-provisioning.rotation-template-name")),
      rotationKeySource: v<RotationKeySource>("fleet-provisioning.rotation-key-source")!,
    },
    secureElement: {
      enabled: v<boolean>("secure-element.enabled")!,
      ...optional("pkcs11Lib", v<string>("secure-element.pkcs11-lib")),
      ...optional("pin", v<string>("secure-element.secure-element-pin")),
      ...optional("keyLabel", v<string>("secure-element.secure-element-key-label")),
      ...optional("slotId", v<number>("secure-element.secure-element-slot-id")),
      ...optional("tokenLabel", v<string>("secure-element.secure-element-token-label")),
      ...optional("opensslEngine", v<string>("secure-element.openssl-engine")),
    },
    ...optional("httpProxy", resolved.httpProxy),
    payloadFormat: v<PayloadFormat>("fleet-provisioning.payload-format")!,
    mqttVersion: v<MqttVersion>("mqtt-version")!,
    retry: {
      stepTimeoutMs: ms("fleet-provisioning.step-timeout"),
      deadlineMs: ms("fleet-provisioning.deadline"),
      baseDelayMs: ms("fleet-provisioning.retry-base-delay"),
      maxDelayMs: ms("fleet-provisioning.retry-max-delay"),
    },
    ...layout,
    runtime: claim.runtime,
    ignored: resolved.ignored,
    warnings: resolved.warnings,
  };
}

/** The one notice listing ignored keys and flags of other Device Client features. */
export function ignoredNotice(ignored: readonly string[]): string {
  return `Ignoring settings of other Device Client features: ${ignored.join(", ")}.`;
}
