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
  type EmulatorOptions,
  type FaultRule,
  KEY_TYPES,
  type KeyType,
  parseFaultFlag,
  parseFaults,
  startEmulator,
} from "../emulator/mod.ts";

const HELP = `Usage: fleetprov emulator --state-dir DIR [options]

Runs a local AWS IoT fleet provisioning endpoint (mutual-TLS MQTT) for tests,
demos and CI. Writes DIR/device-client.conf, which fleetprov uses as is:
  fleetprov --config-file DIR/device-client.conf

Options:
  --state-dir DIR          where the CA, claim certificate, registry and config live (required)
  --port N                 listen port (default 8883; 0 picks a free port)
  --host H                 listen address (default 127.0.0.1)
  --template-file FILE     provisioning template (JSON); default: the Device Client sample
  --template-name NAME     template name in the RegisterThing topic (default FleetprovTemplate)
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
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      throw configError(
        `emulator: cannot listen on ${options.host ?? "127.0.0.1"}:${
          options.port ?? 8883
        } (${code}); choose another --port or --host.`,
      );
    }
    throw configError(`emulator: ${(error as Error).message}`);
  }
  process.stdout.write(`config: ${emulator.configPath}\n`);
  process.stdout.write(`listening: ${emulator.host}:${emulator.port}\n`);
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
        "template-file": { type: "string" },
        "template-name": { type: "string" },
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
  if (values.host !== undefined) options.host = values.host;
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
  if (values["template-file"] !== undefined) {
    const template = readJson(values["template-file"], "--template-file");
    const resources = (template as { Resources?: unknown } | null)?.Resources;
    if (typeof resources !== "object" || resources === null || Array.isArray(resources)) {
      throw configError(
        `emulator: --template-file ${
          values["template-file"]
        } is not a provisioning template (no "Resources" object).`,
      );
    }
    options.template = template;
  }
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

function readJson(path: string, flag: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw configError(
      `emulator: ${flag} ${path} cannot be read (${(error as NodeJS.ErrnoException).code}).`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw configError(`emulator: ${flag} ${path} is not valid JSON: ${(error as Error).message}.`);
  }
}
