// SPDX-License-Identifier: Apache-2.0
/**
 * The command-line flags: every Device Client flag (those of other DC
 * features are accepted and ignored), fleetprov's extensions, and a strict
 * parser (unknown flag, flag given twice, flag without value: fatal).
 *
 * @module
 */

/** One command-line flag. */
export interface FlagSpec {
  /** The flag, e.g. `--endpoint`. */
  flag: string;
  /** Placeholder of its value, or undefined for a flag that takes no value. */
  value?: string;
  /** The config-file key it overrides (dotted), if any. */
  key?: string;
  /** One-line description for `--help`. */
  help: string;
  /** Default, as shown by `--help`. */
  default?: string;
  /** A fleetprov extension (not a Device Client flag). */
  extension?: boolean;
  /** A flag of another Device Client feature: accepted and ignored. */
  foreign?: boolean;
  /** Handled before settings are loaded (help, version, export, dry run). */
  meta?: boolean;
  /** Only `true` or `false` are accepted. */
  boolean?: boolean;
}

/** Every flag fleetprov accepts, in `--help` order. */
export const FLAGS: readonly FlagSpec[] = [
  { flag: "--help", help: "Print this help and exit.", meta: true },
  { flag: "--version", help: "Print the version and exit.", meta: true },
  {
    flag: "--export-default-settings",
    value: "FILE",
    help: "Write a Device Client style config file with the defaults to FILE and exit.",
    meta: true,
  },
  {
    flag: "--dry-run",
    help: "Same as the `check` subcommand: validate everything, connect nowhere.",
    meta: true,
    extension: true,
  },
  {
    flag: "--config-file",
    value: "FILE",
    help: "Config file (JSON, comments allowed).",
    default: "~/.aws-iot-device-client/aws-iot-device-client.conf if present",
  },
  { flag: "--endpoint", value: "HOST", key: "endpoint", help: "AWS IoT data endpoint (required)." },
  {
    flag: "--port",
    value: "PORT",
    key: "port",
    help: "MQTT over TLS port; 443 uses ALPN x-amzn-mqtt-ca.",
    default: "8883",
    extension: true,
  },
  { flag: "--cert", value: "FILE", key: "cert", help: "Claim certificate, PEM (required)." },
  {
    flag: "--key",
    value: "FILE",
    key: "key",
    help: "Claim private key, PEM (required unless a secure element is used).",
  },
  {
    flag: "--root-ca",
    value: "FILE",
    key: "root-ca",
    help: "Root CA of the endpoint; if the file does not exist, the system trust store is used.",
    default: "system trust store",
  },
  {
    flag: "--thing-name",
    value: "NAME",
    key: "thing-name",
    help: "Client id of the claim connection (optional for fleetprov).",
  },
  {
    flag: "--client-id",
    value: "ID",
    key: "client-id",
    help: "Client id of the claim connection.",
    default: "thing-name, else fleetprov-<hash of /etc/machine-id>",
    extension: true,
  },
  {
    flag: "--log-level",
    value: "LEVEL",
    key: "logging.level",
    help: "DEBUG, INFO, WARN or ERROR.",
    default: "INFO",
  },
  {
    flag: "--log-type",
    value: "TYPE",
    key: "logging.type",
    help: "STDOUT or FILE.",
    default: "STDOUT",
  },
  {
    flag: "--log-file",
    value: "FILE",
    key: "logging.file",
    help: "Log file when the log type is FILE (created 0600).",
    default: "/var/log/aws-iot-device-client/aws-iot-device-client.log",
  },
  {
    flag: "--enable-fleet-provisioning",
    value: "true|false",
    key: "fleet-provisioning.enabled",
    help: "Enable Fleet Provisioning.",
    default: "false",
    boolean: true,
  },
  {
    flag: "--fleet-provisioning-template-name",
    value: "NAME",
    key: "fleet-provisioning.template-name",
    help: "Provisioning template name (required when enabled).",
  },
  {
    flag: "--fleet-provisioning-template-parameters",
    value: "JSON",
    key: "fleet-provisioning.template-parameters",
    help: `Template parameters, a JSON object of strings, e.g. '{"SerialNumber": "SN-1"}'.`,
  },
  {
    flag: "--csr-file",
    value: "FILE",
    key: "fleet-provisioning.csr-file",
    help: "PEM CSR: use CreateCertificateFromCsr (needs --device-key).",
  },
  {
    flag: "--device-key",
    value: "FILE",
    key: "fleet-provisioning.device-key",
    help: "Private key of the CSR.",
  },
  {
    flag: "--generate-key",
    value: "ALG",
    key: "fleet-provisioning.generate-key",
    help: "Generate the device key and CSR on the board: ec-p256, ec-p384 or rsa-2048.",
    extension: true,
  },
  {
    flag: "--payload-format",
    value: "FMT",
    key: "fleet-provisioning.payload-format",
    help: "Provisioning API payload format: json or cbor.",
    default: "json",
    extension: true,
  },
  {
    flag: "--step-timeout",
    value: "SECONDS",
    key: "fleet-provisioning.step-timeout",
    help: "Timeout of each step (connect, subscribe, each answer).",
    default: "10",
    extension: true,
  },
  {
    flag: "--deadline",
    value: "SECONDS",
    key: "fleet-provisioning.deadline",
    help: "Deadline of the whole provisioning, retries included.",
    default: "300",
    extension: true,
  },
  {
    flag: "--retry-base-delay",
    value: "SECONDS",
    key: "fleet-provisioning.retry-base-delay",
    help: "First retry delay (exponential backoff with jitter).",
    default: "1",
    extension: true,
  },
  {
    flag: "--retry-max-delay",
    value: "SECONDS",
    key: "fleet-provisioning.retry-max-delay",
    help: "Largest retry delay.",
    default: "30",
    extension: true,
  },
  {
    flag: "--enable-secure-element",
    value: "true|false",
    key: "secure-element.enabled",
    help:
      "Use a PKCS#11 secure element: both connections sign with the token's key; provisioning needs --csr-file.",
    default: "false",
    boolean: true,
  },
  {
    flag: "--pkcs11-lib",
    value: "FILE",
    key: "secure-element.pkcs11-lib",
    help: "PKCS#11 library.",
  },
  {
    flag: "--secure-element-pin",
    value: "PIN",
    key: "secure-element.secure-element-pin",
    help: "User PIN of the PKCS#11 token (never printed).",
  },
  {
    flag: "--secure-element-key-label",
    value: "LABEL",
    key: "secure-element.secure-element-key-label",
    help: "Label of the private key on the token.",
  },
  {
    flag: "--secure-element-slot-id",
    value: "N",
    key: "secure-element.secure-element-slot-id",
    help: "Slot id of the token.",
  },
  {
    flag: "--secure-element-token-label",
    value: "LABEL",
    key: "secure-element.secure-element-token-label",
    help: "Label of the token.",
  },
  {
    flag: "--openssl-engine",
    value: "FILE",
    key: "secure-element.openssl-engine",
    help: "OpenSSL's pkcs11 engine (libp11).",
    default: "found in the usual engines-3 / engines-1.1 directories",
    extension: true,
  },
  {
    flag: "--http-proxy-config",
    value: "FILE",
    help: "HTTP proxy config file (Device Client format).",
    default: "~/.aws-iot-device-client/http-proxy.conf if present",
  },
  // Other Device Client features: accepted, ignored, listed once.
  ...[
    "--enable-sdk-logging",
    "--tunneling-disable-notification",
  ].map((flag): FlagSpec => ({ flag, help: "", foreign: true })),
  ...[
    "--sdk-log-level",
    "--sdk-log-file",
    "--jobs-handler-dir",
    "--tunneling-region",
    "--tunneling-service",
    "--device-defender-interval",
    "--publish-topic",
    "--publish-file",
    "--subscribe-topic",
    "--subscribe-file",
    "--shadow-name",
    "--shadow-input-file",
    "--shadow-output-file",
  ].map((flag): FlagSpec => ({ flag, value: "VALUE", help: "", foreign: true })),
  ...[
    "--enable-jobs",
    "--enable-tunneling",
    "--enable-device-defender",
    "--enable-pub-sub",
    "--enable-sample-shadow",
    "--enable-config-shadow",
    "--enable-sensor-publish",
  ].map((flag): FlagSpec => ({
    flag,
    value: "true|false",
    help: "",
    foreign: true,
    boolean: true,
  })),
];

const BY_NAME = new Map(FLAGS.map((spec) => [spec.flag, spec]));

/** Looks up a flag by name (`--endpoint`). */
export function flagSpec(flag: string): FlagSpec | undefined {
  return BY_NAME.get(flag);
}

/** Parsed command line. */
export interface ParsedFlags {
  /** Flag → value ("" for flags without value), flags of other features excluded. */
  values: Map<string, string>;
  /** Flags of other Device Client features that were given. */
  ignored: string[];
  /** One line per problem. */
  errors: string[];
}

/**
 * Parses `--flag value` (and `--flag=value`) pairs strictly: an unknown
 * flag, a flag given twice, a flag without its value, a stray argument and a
 * `--enable-…` value other than `true`/`false` are errors naming the flag.
 */
export function parseFlags(args: readonly string[]): ParsedFlags {
  const values = new Map<string, string>();
  const ignored: string[] = [];
  const errors: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("-")) {
      errors.push(
        `Unexpected argument ${JSON.stringify(arg)}: values must follow the flag they belong to.`,
      );
      continue;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = BY_NAME.get(name);
    if (!spec) {
      errors.push(`Unknown flag ${name}; run fleetprov --help for the list of flags.`);
      if (eq < 0 && i + 1 < args.length && !args[i + 1].startsWith("-")) i++;
      continue;
    }
    if (seen.has(name)) {
      errors.push(`Flag ${name} is given more than once; give it once.`);
    }
    seen.add(name);
    let value = "";
    if (spec.value === undefined) {
      if (eq > 0) errors.push(`Flag ${name} takes no value, but was given ${arg.slice(eq)}.`);
    } else if (eq > 0) {
      value = arg.slice(eq + 1);
    } else if (i + 1 >= args.length || args[i + 1].startsWith("--")) {
      errors.push(`Flag ${name} needs a value: ${name} ${spec.value}.`);
      continue;
    } else {
      value = args[++i];
    }
    if (spec.boolean && value !== "true" && value !== "false") {
      errors.push(`Flag ${name} is ${JSON.stringify(value)}; expected true or false.`);
      continue;
    }
    if (spec.foreign) {
      if (!ignored.includes(name)) ignored.push(name);
      continue;
    }
    if (!values.has(name)) values.set(name, value);
  }
  return { values, ignored, errors };
}
