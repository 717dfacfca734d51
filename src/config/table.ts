// SPDX-License-Identifier: Apache-2.0
/**
 * Every setting fleetprov knows, as data: one row per setting with its
 * config-file key, its flag, its type, its default, whether it is secret,
 * the check that applies to its value and the Device Client version that
 * introduced it (the shape of a row: `schema.ts`). The generic reader (`reader.ts`), `--help`, `--export-default-settings`
 * and the list of ignored keys and flags all come from this table.
 *
 * Adding a setting: add a row here (and a check, if it needs one, in the
 * validator file of its concern under `validators/`), then read it where
 * `Settings` is built (`mod.ts`).
 *
 * @module
 */
import { KEY_ALGORITHMS } from "../pki/algorithms.ts";
import type { Setting, ValueType } from "./schema.ts";
import { hostName, idLength } from "./validators/connection.ts";
import { templateName } from "./validators/fleet_provisioning.ts";
import { OTHER_FEATURES } from "./other_features.ts";

/** The Device Client's default log file. */
export const DEFAULT_LOG_FILE = "/var/log/aws-iot-device-client/aws-iot-device-client.log";

const STRING = { kind: "string" } as const;
const PATH = { kind: "path" } as const;
const BOOLEAN = { kind: "boolean" } as const;
const seconds = (min: "0 or more" | "greater than 0", example: number): ValueType => ({
  kind: "number",
  min: 0,
  minExclusive: min === "greater than 0",
  expected: `a number of seconds${min === "0 or more" ? "," : ""} ${min}, e.g. ${example}`,
});

/** The settings fleetprov reads, in `--help` order (which is also the order they are read in). */
const FLEETPROV_SETTINGS: readonly Setting[] = [
  {
    flag: "--config-file",
    value: "FILE",
    type: { kind: "file" },
    shownDefault: "~/.aws-iot-device-client/aws-iot-device-client.conf if present",
    since: "0.1",
    help: "Config file (JSON, comments allowed).",
  },
  {
    key: "endpoint",
    flag: "--endpoint",
    value: "HOST",
    type: STRING,
    exported: "<replace_with_endpoint_value>",
    check: hostName,
    since: "0.1",
    help: "AWS IoT data endpoint (required).",
  },
  {
    key: "port",
    flag: "--port",
    value: "PORT",
    type: {
      kind: "number",
      integer: true,
      min: 1,
      max: 65535,
      expected: "an integer port from 1 to 65535 (8883, or 443 with ALPN)",
    },
    default: 8883,
    exported: true,
    since: "fleetprov",
    help: "MQTT over TLS port; 443 uses ALPN x-amzn-mqtt-ca.",
  },
  {
    key: "mqtt-version",
    flag: "--mqtt-version",
    value: "VERSION",
    type: { kind: "choice", choices: ["3.1.1", "5"], normalize: "lower" },
    default: "3.1.1",
    exported: true,
    since: "fleetprov",
    help: "MQTT protocol: 3.1.1 (as the Device Client) or 5 (reason codes in errors).",
  },
  {
    key: "cert",
    flag: "--cert",
    value: "FILE",
    type: PATH,
    exported: "<replace_with_certificate_file_path>",
    since: "0.1",
    help: "Claim certificate, PEM (required).",
  },
  {
    key: "key",
    flag: "--key",
    value: "FILE",
    type: PATH,
    exported: "<replace_with_private_key_file_path>",
    since: "0.1",
    help: "Claim private key, PEM (required unless a secure element is used).",
  },
  {
    key: "root-ca",
    flag: "--root-ca",
    value: "FILE",
    type: PATH,
    shownDefault: "system trust store",
    exported: "<replace_with_root_ca_file_path>",
    since: "0.1",
    help: "Root CA of the endpoint; if the file does not exist, the system trust store is used.",
  },
  {
    key: "thing-name",
    flag: "--thing-name",
    value: "NAME",
    type: STRING,
    exported: "<replace_with_thing_name>",
    check: idLength,
    since: "0.1",
    help: "Client id of the claim connection (optional for fleetprov).",
  },
  {
    key: "client-id",
    flag: "--client-id",
    value: "ID",
    type: STRING,
    shownDefault: "thing-name, else fleetprov-<hash of /etc/machine-id>",
    check: idLength,
    since: "fleetprov",
    help: "Client id of the claim connection.",
  },
  {
    key: "logging.level",
    flag: "--log-level",
    value: "LEVEL",
    type: { kind: "choice", choices: ["DEBUG", "INFO", "WARN", "ERROR"], normalize: "upper" },
    default: "INFO",
    exported: true,
    since: "0.1",
    help: "DEBUG, INFO, WARN or ERROR.",
  },
  {
    key: "logging.type",
    flag: "--log-type",
    value: "TYPE",
    type: { kind: "choice", choices: ["STDOUT", "FILE"], normalize: "upper" },
    default: "STDOUT",
    exported: true,
    since: "0.1",
    help: "STDOUT or FILE.",
  },
  {
    key: "logging.file",
    flag: "--log-file",
    value: "FILE",
    type: PATH,
    default: DEFAULT_LOG_FILE,
    exported: true,
    since: "0.1",
    help: "Log file when the log type is FILE (created 0600).",
  },
  {
    key: "fleet-provisioning.enabled",
    flag: "--enable-fleet-provisioning",
    type: BOOLEAN,
    default: false,
    exported: true,
    since: "0.2",
    help: "Enable Fleet Provisioning.",
  },
  {
    key: "fleet-provisioning.template-name",
    flag: "--fleet-provisioning-template-name",
    value: "NAME",
    type: STRING,
    exported: "<replace_with_template_name>",
    check: templateName,
    since: "0.2",
    help: "Provisioning template name (required when enabled).",
  },
  {
    key: "fleet-provisioning.template-parameters",
    flag: "--fleet-provisioning-template-parameters",
    value: "JSON",
    type: { kind: "parameters" },
    exported: "{}",
    since: "1.2",
    help: `Template parameters, a JSON object of strings, e.g. '{"SerialNumber": "SN-1"}'.`,
  },
  {
    key: "fleet-provisioning.csr-file",
    flag: "--csr-file",
    value: "FILE",
    type: PATH,
    since: "0.2",
    help: "PEM CSR: use CreateCertificateFromCsr (needs --device-key).",
  },
  {
    key: "fleet-provisioning.device-key",
    flag: "--device-key",
    value: "FILE",
    type: PATH,
    since: "1.1",
    help: "Private key of the CSR.",
  },
  {
    key: "fleet-provisioning.collect-system-information",
    type: BOOLEAN,
    default: false,
    exported: true,
    since: "1.9.5",
    help: "Add DeviceIPAddress, DeviceMACAddress and ProvisioningCertSerialNumber parameters.",
  },
  {
    key: "fleet-provisioning.generate-key",
    flag: "--generate-key",
    value: "ALG",
    type: { kind: "choice", choices: KEY_ALGORITHMS, normalize: "lower" },
    since: "fleetprov",
    help: "Generate the device key and CSR on the board: ec-p256, ec-p384 or rsa-2048.",
  },
  {
    key: "fleet-provisioning.payload-format",
    flag: "--payload-format",
    value: "FMT",
    type: { kind: "choice", choices: ["json", "cbor"], normalize: "lower" },
    default: "json",
    exported: true,
    since: "fleetprov",
    help: "Provisioning API payload format: json or cbor.",
  },
  {
    key: "fleet-provisioning.step-timeout",
    flag: "--step-timeout",
    value: "SECONDS",
    type: seconds("greater than 0", 10),
    default: 10,
    exported: true,
    since: "fleetprov",
    help: "Timeout of each step (connect, subscribe, each answer).",
  },
  {
    key: "fleet-provisioning.deadline",
    flag: "--deadline",
    value: "SECONDS",
    type: seconds("greater than 0", 300),
    default: 300,
    exported: true,
    since: "fleetprov",
    help: "Deadline of the whole provisioning, retries included.",
  },
  {
    key: "fleet-provisioning.retry-base-delay",
    flag: "--retry-base-delay",
    value: "SECONDS",
    type: seconds("0 or more", 1),
    default: 1,
    exported: true,
    since: "fleetprov",
    help: "First retry delay (exponential backoff with jitter).",
  },
  {
    key: "fleet-provisioning.retry-max-delay",
    flag: "--retry-max-delay",
    value: "SECONDS",
    type: seconds("0 or more", 30),
    default: 30,
    exported: true,
    since: "fleetprov",
    help: "Largest retry delay.",
  },
  {
    key: "fleet-provisioning.rotation-template-name",
    flag: "--rotation-template-name",
    value: "NAME",
    type: STRING,
    check: templateName,
    since: "fleetprov",
    help:
      "Provisioning template `fleetprov rotate` registers the new certificate with (required to rotate).",
  },
  {
    key: "fleet-provisioning.rotation-key-source",
    flag: "--rotation-key-source",
    value: "SOURCE",
    type: { kind: "choice", choices: ["board", "aws"], normalize: "lower" },
    default: "board",
    exported: true,
    since: "fleetprov",
    help:
      "Key of a rotated certificate: board (a new key made on the board, or the secure element's; CreateCertificateFromCsr) or aws (CreateKeysAndCertificate).",
  },
  {
    key: "secure-element.enabled",
    flag: "--enable-secure-element",
    type: BOOLEAN,
    default: false,
    exported: true,
    since: "1.7",
    help:
      "Use a PKCS#11 secure element: both connections sign with the token's key; provisioning needs --csr-file.",
  },
  {
    key: "secure-element.pkcs11-lib",
    flag: "--pkcs11-lib",
    value: "FILE",
    type: PATH,
    since: "1.7",
    help: "PKCS#11 library.",
  },
  {
    key: "secure-element.secure-element-pin",
    flag: "--secure-element-pin",
    value: "PIN",
    type: STRING,
    secret: true,
    since: "1.7",
    help: "User PIN of the PKCS#11 token (never printed).",
  },
  {
    key: "secure-element.secure-element-key-label",
    flag: "--secure-element-key-label",
    value: "LABEL",
    type: STRING,
    since: "1.7",
    help: "Label of the private key on the token.",
  },
  {
    key: "secure-element.secure-element-slot-id",
    flag: "--secure-element-slot-id",
    value: "N",
    type: {
      kind: "number",
      integer: true,
      min: 0,
      max: Number.MAX_SAFE_INTEGER,
      expected: "a slot number (an integer, 0 or more)",
    },
    since: "1.7",
    help: "Slot id of the token.",
  },
  {
    key: "secure-element.secure-element-token-label",
    flag: "--secure-element-token-label",
    value: "LABEL",
    type: STRING,
    since: "1.7",
    help: "Label of the token.",
  },
  {
    key: "secure-element.openssl-engine",
    flag: "--openssl-engine",
    value: "FILE",
    type: PATH,
    shownDefault: "found in the usual engines-3 / engines-1.1 directories",
    since: "fleetprov",
    help: "OpenSSL's pkcs11 engine (libp11).",
  },
  {
    flag: "--http-proxy-config",
    value: "FILE",
    type: { kind: "file" },
    shownDefault: "~/.aws-iot-device-client/http-proxy.conf if present",
    since: "1.7",
    help: "HTTP proxy config file (Device Client format).",
  },
];

/** The table: fleetprov's settings, then those of other Device Client features. */
export const SETTINGS: readonly Setting[] = [...FLEETPROV_SETTINGS, ...OTHER_FEATURES];

const BY_ID = new Map(SETTINGS.map((s) => [s.key ?? s.flag!, s]));

/** The row of a setting, by config key (`logging.level`) or, for flag-only ones, by flag. */
export function setting(id: string): Setting {
  const row = BY_ID.get(id);
  if (!row) throw new Error(`No setting ${id} in the settings table.`);
  return row;
}

/** The default of a setting (from its row). */
export function defaultOf<T extends string | number | boolean>(id: string): T {
  return setting(id).default as T;
}
