// SPDX-License-Identifier: Apache-2.0
/**
 * `fleetprov emulator`: runs the local AWS IoT fleet provisioning endpoint
 * until SIGINT or SIGTERM.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { configError, ExitCode, FleetprovError } from "../errors.ts";
import {
  checkPolicyDocument,
  checkServerName,
  checkStartTemplate,
  DEFAULT_TEMPLATE_NAME,
  type EmulatorOptions,
  type FaultRule,
  KEY_TYPES,
  type KeyType,
  parseFaultFlag,
  parseFaults,
  parseHookTarget,
  startEmulator,
} from "../emulator/mod.ts";

const HELP = `Usage: fleetprov emulator --state-dir DIR [options]

Runs a local AWS IoT fleet provisioning endpoint (mutual-TLS MQTT) for tests,
demos and CI, and with --control-port AWS IoT's control plane (a subset) over
HTTP for the AWS CLI and SDKs. Writes DIR/device-client.conf, which fleetprov
uses as is:
  fleetprov --config-file DIR/device-client.conf
  fleetprov rotate --config-file DIR/device-client.conf --force
  aws iot list-things --endpoint-url http://127.0.0.1:PORT   (any credentials)
The rotation template FleetprovRotationTemplate (fleetprov rotate) is served too:
its hook, the emulator's rotation check, lets a certificate rotate only its own thing.

Options:
  --state-dir DIR          where the CA, claim certificate, registry and config live (required)
  --port N                 listen port (default 8883; 0 picks a free port)
  --host H                 listen address (default 127.0.0.1)
  --server-name NAME       a DNS name or IP address the server certificate is also valid
                           for (besides localhost, 127.0.0.1, ::1), repeatable; e.g. the
                           name a board under QEMU gives the host, 10.0.2.2
  --template-file FILE     provisioning template (JSON); default: the Device Client sample
  --template-name NAME     template name in the RegisterThing topic (default FleetprovTemplate)
  --pre-provisioning-hook TARGET
                           the template's hook: file:/path/to/command (JSON on stdin and
                           stdout) or http(s)://host:port/path (JSON POST)
  --hook-timeout MS        a hook's time limit (default 5000, AWS's)
  --hook-concurrency N     hooks running at once (default 32); past it RegisterThing is
                           throttled (429 ThrottlingException, which devices retry)
  --control-port N         serve AWS IoT's control plane (REST, a subset) on N; 0 picks one
  --control-host H         its listen address (default 127.0.0.1; it accepts any credentials)
  --allow-command-hooks    let control-plane requests set file: hooks (commands this process
                           runs); off by default, as anyone reaching the control plane could
  --token-lifetime SECONDS ownership token lifetime (default 3600)
  --claim-policy-file FILE the claim certificate's policy (AWS IoT policy JSON); default: the
                           policy of the AWS docs for --template-name
  --key-type TYPE          keys from CreateKeysAndCertificate: rsa-2048 (default, as AWS IoT)
                           or ec-p256 (cheap to make: storms and benchmarks)
  --key-pool N             key pairs generated ahead (default 2; 0: each on demand)
  --alpn MODE              require|optional: whether TLS must negotiate ALPN x-amzn-mqtt-ca
                           (default: require on port 443, else optional)
  --faults-file FILE       fault rules (JSON array, or {"faults": [...]}); see the README
  --fault SPEC             one fault rule, repeatable: OPERATION:key=value,...
                           OPERATION: CreateKeysAndCertificate, CreateCertificateFromCsr,
                           RegisterThing or connect; keys: skip=N, times=N,
                           reject=STATUS:CODE[:MESSAGE], delay=MS, drop=request|before|after|handshake,
                           malformed, truncated, duplicate, throttle=RATE[:BURST], returnCode=N
                           e.g. --fault RegisterThing:reject=503:ServiceUnavailable,times=2
  --verbose                print the emulator's log lines on stderr
  --help                   this text
`;

/** Runs the emulator command; resolves with the exit code once stopped by a signal. */
export async function runEmulatorCommand(args: string[]): Promise<number> {
  const options = parseEmulatorArgs(args);
  if (options === "help") {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  let emulator;
  try {
    emulator = await startEmulator(options);
  } catch (error) {
    const { code, port } = error as NodeJS.ErrnoException & { port?: number };
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      // Node names the port that failed: the MQTT listener's or the control plane's.
      const control = options.controlPort !== undefined && port === options.controlPort &&
        port !== (options.port ?? 8883);
      const [host, flags] = control
        ? [options.controlHost ?? "127.0.0.1", "--control-port or --control-host"]
        : [options.host ?? "127.0.0.1", "--port or --host"];
      throw configError(
        `emulator: cannot listen on ${host}:${port ?? options.port ?? 8883} (${code}); ` +
          `choose another ${flags}.`,
      );
    }
    throw configError(`emulator: ${(error as Error).message}`);
  }
  process.stdout.write(`config: ${emulator.configPath}\n`);
  process.stdout.write(`listening: ${emulator.host}:${emulator.port}\n`);
  if (emulator.control) {
    process.stdout.write(`control: ${emulator.control.host}:${emulator.control.port}\n`);
    if (!["127.0.0.1", "::1", "localhost"].includes(emulator.control.host)) {
      process.stderr.write(
        `emulator: warning: the control plane on ${emulator.control.host} accepts any credentials: whoever reaches it can change the registry.\n`,
      );
    }
  }
  const signal = await new Promise<string>((resolve) => {
    const stop = (name: string) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolve(name);
    };
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
  await emulator.close();
  process.stdout.write(`stopped (${signal})\n`);
  return ExitCode.Ok;
}

/** Parses the emulator's flags; throws a configuration error naming the bad flag. */
export function parseEmulatorArgs(args: string[]): EmulatorOptions | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        "state-dir": { type: "string" },
        port: { type: "string" },
        host: { type: "string" },
        "server-name": { type: "string", multiple: true },
        "template-file": { type: "string" },
        "template-name": { type: "string" },
        "pre-provisioning-hook": { type: "string" },
        "hook-timeout": { type: "string" },
        "hook-concurrency": { type: "string" },
        "control-port": { type: "string" },
        "control-host": { type: "string" },
        "allow-command-hooks": { type: "boolean" },
        "token-lifetime": { type: "string" },
        "claim-policy-file": { type: "string" },
        "key-type": { type: "string" },
        "key-pool": { type: "string" },
        alpn: { type: "string" },
        "faults-file": { type: "string" },
        fault: { type: "string", multiple: true },
        verbose: { type: "boolean" },
        help: { type: "boolean" },
      },
    }));
  } catch (error) {
    throw configError(`emulator: ${(error as Error).message} (see fleetprov emulator --help).`);
  }
  if (values.help) return "help";
  if (!values["state-dir"]) {
    throw configError("emulator: --state-dir DIR is required (where the CA and claim live).");
  }
  const options: EmulatorOptions = { stateDir: values["state-dir"] };
  if (values.port !== undefined) {
    options.port = integer("--port", values.port, 0, 65535);
  }
  Object.assign(options, addressOptions(values));
  if (values["template-name"] !== undefined) {
    const name = values["template-name"];
    if (!/^[0-9A-Za-z_-]{1,36}$/.test(name)) {
      throw configError(
        `emulator: --template-name ${
          JSON.stringify(name)
        } must be 1-36 letters, digits, '_' or '-'.`,
      );
    }
    options.templateName = name;
  }
  if (values["token-lifetime"] !== undefined) {
    options.tokenLifetimeMs =
      integer("--token-lifetime", values["token-lifetime"], 0, 86_400 * 365) *
      1000;
  }
  Object.assign(options, templateOptions(values));
  Object.assign(options, keyAndPolicyOptions(values));
  if (values.alpn !== undefined) {
    if (values.alpn !== "require" && values.alpn !== "optional") {
      throw configError(
        `emulator: --alpn ${JSON.stringify(values.alpn)} must be require or optional.`,
      );
    }
    options.alpn = values.alpn;
  }
  const faults = faultRules(values["faults-file"], values.fault ?? []);
  if (faults.length > 0) options.faults = faults;
  if (values.verbose) options.log = (line) => process.stderr.write(`emulator: ${line}\n`);
  return options;
}

/**
 * The default template's options: --template-file (checked as AWS checks a
 * template: every problem in one line), --pre-provisioning-hook, --hook-timeout,
 * --hook-concurrency and the control plane's --control-port and --control-host.
 */
function templateOptions(
  values: Record<string, string | boolean | string[] | undefined>,
): Partial<EmulatorOptions> {
  const options: Partial<EmulatorOptions> = {};
  const hook = values["pre-provisioning-hook"] as string | undefined;
  if (hook !== undefined) {
    try {
      parseHookTarget(hook);
    } catch (error) {
      throw configError(`emulator: --pre-provisioning-hook: ${(error as Error).message}`);
    }
    options.preProvisioningHook = hook;
  }
  const file = values["template-file"] as string | undefined;
  if (file !== undefined) {
    const text = readText(file, "--template-file");
    const name = (values["template-name"] as string | undefined) ?? DEFAULT_TEMPLATE_NAME;
    try {
      checkStartTemplate(name, { template: text, preProvisioningHook: hook });
    } catch (error) {
      throw configError(`emulator: --template-file ${file}: ${(error as Error).message}`);
    }
    options.template = text;
  }
  if (values["hook-timeout"] !== undefined) {
    options.hookTimeoutMs = integer("--hook-timeout", values["hook-timeout"] as string, 1, 600_000);
  }
  if (values["hook-concurrency"] !== undefined) {
    options.hookConcurrency = integer(
      "--hook-concurrency",
      values["hook-concurrency"] as string,
      1,
      10_000,
    );
  }
  if (values["control-port"] !== undefined) {
    options.controlPort = integer("--control-port", values["control-port"] as string, 0, 65535);
  }
  if (values["control-host"] !== undefined) options.controlHost = values["control-host"] as string;
  if (values["allow-command-hooks"]) options.allowCommandHooks = true;
  return options;
}

/** The options of --host and --server-name. */
function addressOptions(
  values: { host?: string; "server-name"?: string[] },
): Partial<EmulatorOptions> {
  const options: Partial<EmulatorOptions> = {};
  if (values.host !== undefined) options.host = values.host;
  if (values["server-name"] !== undefined) {
    for (const name of values["server-name"]) {
      try {
        checkServerName(name);
      } catch (error) {
        throw configError(`emulator: --server-name: ${(error as Error).message}`);
      }
    }
    options.serverNames = values["server-name"];
  }
  return options;
}

/** The options of --claim-policy-file, --key-type and --key-pool. */
function keyAndPolicyOptions(
  values: { "claim-policy-file"?: string; "key-type"?: string; "key-pool"?: string },
): Partial<EmulatorOptions> {
  const options: Partial<EmulatorOptions> = {};
  if (values["claim-policy-file"] !== undefined) {
    const file = values["claim-policy-file"];
    const policy = readJson(file, "--claim-policy-file");
    try {
      const warnings = checkPolicyDocument(policy, `--claim-policy-file ${file}`);
      for (const warning of warnings) process.stderr.write(`emulator: warning: ${warning}\n`);
    } catch (error) {
      throw configError(`emulator: ${(error as Error).message}`);
    }
    options.claimPolicy = policy;
  }
  if (values["key-type"] !== undefined) {
    const type = values["key-type"] as KeyType;
    if (!KEY_TYPES.includes(type)) {
      throw configError(
        `emulator: --key-type ${JSON.stringify(type)} must be ${KEY_TYPES.join(" or ")}.`,
      );
    }
    options.keyType = type;
  }
  if (values["key-pool"] !== undefined) {
    options.keyPoolSize = integer("--key-pool", values["key-pool"], 0, 1000);
  }
  return options;
}

/** The fault rules of `--faults-file` and of each `--fault`. */
function faultRules(file: string | undefined, specs: string[]): FaultRule[] {
  const faults: FaultRule[] = [];
  if (file !== undefined) {
    try {
      faults.push(...parseFaults(readJson(file, "--faults-file"), `--faults-file ${file}`));
    } catch (error) {
      if (error instanceof FleetprovError) throw error;
      throw configError(`emulator: ${(error as Error).message}`);
    }
  }
  for (const spec of specs) {
    try {
      faults.push(parseFaultFlag(spec));
    } catch (error) {
      throw configError(`emulator: ${(error as Error).message}`);
    }
  }
  return faults;
}

function integer(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw configError(
      `emulator: ${flag} ${JSON.stringify(text)} must be an integer from ${min} to ${max}.`,
    );
  }
  return value;
}

function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw configError(
      `emulator: ${flag} ${path} cannot be read (${(error as NodeJS.ErrnoException).code}).`,
    );
  }
}

function readJson(path: string, flag: string): unknown {
  const text = readText(path, flag);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw configError(`emulator: ${flag} ${path} is not valid JSON: ${(error as Error).message}.`);
  }
}
