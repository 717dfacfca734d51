// SPDX-License-Identifier: Apache-2.0
/**
 * The effective settings of one fleetprov run, after the config file, the
 * runtime config and the flags have been merged and validated.
 *
 * @module
 */
import type { KeyAlgorithm } from "../pki/algorithms.ts";
import type { PayloadFormat } from "../protocol/mod.ts";
import type { RuntimeConfigState } from "../runtime_config/mod.ts";

/** Log levels, as the Device Client names them. */
export type LogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";

/** Where log lines go. */
export type LogType = "STDOUT" | "FILE";

/** `logging` section. */
export interface LoggingSettings {
  level: LogLevel;
  type: LogType;
  /** Log file path (expanded), used when type is FILE. */
  file: string;
}

/** `fleet-provisioning` section. */
export interface FleetProvisioningSettings {
  enabled: boolean;
  templateName: string;
  /**
   * The parameters to send with RegisterThing: the system information (when
   * `collect-system-information` is on) overridden by the user's values.
   */
  templateParameters: Record<string, string>;
  /** What `collect-system-information` collected (DeviceIPAddress, ...), if it is on. */
  systemParameters?: Record<string, string>;
  /** PEM CSR path (expanded). */
  csrFile?: string;
  /** The CSR's private key path (expanded). */
  deviceKey?: string;
  collectSystemInformation: boolean;
  /** Generate the device key and CSR on the board (fleetprov extension). */
  generateKey?: KeyAlgorithm;
  /** The template `fleetprov rotate` registers a new certificate with (fleetprov extension). */
  rotationTemplateName?: string;
  /**
   * Where a rotated certificate's key comes from: "board" (a new key made on
   * the board, or the secure element's; CreateCertificateFromCsr) or "aws"
   * (CreateKeysAndCertificate).
   */
  rotationKeySource: RotationKeySource;
}

/** `fleet-provisioning.rotation-key-source`. */
export type RotationKeySource = "board" | "aws";

/** `secure-element` section (PKCS#11). */
export interface SecureElementSettings {
  enabled: boolean;
  pkcs11Lib?: string;
  /** Never logged. */
  pin?: string;
  keyLabel?: string;
  slotId?: number;
  tokenLabel?: string;
  /** Path of OpenSSL's pkcs11 engine (fleetprov extension); found automatically when unset. */
  opensslEngine?: string;
}

/** `--http-proxy-config` file contents. */
export interface HttpProxySettings {
  /** Path of the proxy config file (expanded). */
  file: string;
  enabled: boolean;
  host: string;
  port: number;
  authMethod: "UserNameAndPassword" | "None";
  username?: string;
  /** Never logged. */
  password?: string;
}

/** Timeouts and retry policy (fleetprov extension). */
export interface RetrySettings {
  /** Per-step timeout (connect, subscribe, each answer), milliseconds. */
  stepTimeoutMs: number;
  /** Total deadline for the whole provisioning, milliseconds. */
  deadlineMs: number;
  /** First backoff, milliseconds. */
  baseDelayMs: number;
  /** Largest backoff, milliseconds. */
  maxDelayMs: number;
}

/** MQTT protocol versions fleetprov speaks. */
export type MqttVersion = "3.1.1" | "5";

/** Everything a run needs, validated; paths are absolute and expanded. */
export interface Settings {
  /** The config file that was read, if any. */
  configFile?: string;
  endpoint: string;
  /** MQTT over TLS port: 8883 (default) or 443 (ALPN x-amzn-mqtt-ca). */
  port: number;
  /** MQTT protocol version: "3.1.1" (default, as the Device Client) or "5". */
  mqttVersion: MqttVersion;
  /** Claim certificate path; once provisioned, the device certificate the runtime config names. */
  cert: string;
  /** The claim certificate path of the config (flags or file), even once `cert` is the device's. */
  claimCert?: string;
  /** Claim private key path (absent with a secure element). */
  key?: string;
  /** Root CA path; undefined means the system trust store. */
  rootCa?: string;
  /** `thing-name`: the claim connection's client id when set. */
  thingName?: string;
  /** Effective client id of the claim connection. */
  clientId: string;
  /**
   * True when no `client-id` or `thing-name` is set: the board derives its
   * client id from its machine id (empty when loaded `forLint`).
   */
  clientIdDerived?: boolean;
  logging: LoggingSettings;
  fleetProvisioning: FleetProvisioningSettings;
  secureElement: SecureElementSettings;
  httpProxy?: HttpProxySettings;
  payloadFormat: PayloadFormat;
  retry: RetrySettings;
  /** `~/.aws-iot-device-client` (or where HOME points). */
  configDir: string;
  /** `<configDir>/keys`. */
  keysDir: string;
  /** `<configDir>/aws-iot-device-client-runtime.conf`. */
  runtimeConfigPath: string;
  /** What the runtime config said at load time (a valid one already overrode cert, key, thing-name). */
  runtime: RuntimeConfigState;
  /** Keys and flags of other Device Client features that were ignored. */
  ignored: string[];
  /** Non-fatal findings (permission warnings, root CA missing, ...). */
  warnings: string[];
}
