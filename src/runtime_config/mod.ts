// SPDX-License-Identifier: Apache-2.0
/**
 * The Device Client runtime config,
 * `~/.aws-iot-device-client/aws-iot-device-client-runtime.conf`: read with
 * precise diagnostics, written as real escaped JSON, atomically, mode 0640.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../secure_files/mod.ts";

/** Mode of the runtime config file (spec §3). */
export const RUNTIME_CONFIG_MODE = 0o640;

/** What a completed provisioning records. */
export interface RuntimeConfig {
  cert: string;
  key: string;
  thingName: string;
  deviceConfig: Record<string, string>;
}

/** What was found at the runtime config path. */
export type RuntimeConfigState =
  | { status: "absent" }
  | ({ status: "provisioned" } & RuntimeConfig)
  | { status: "not-provisioned"; reason: string };

/**
 * Reads the runtime config. A valid file (`completed-fp` true and non-empty
 * `cert`, `key`, `thing-name`) is "provisioned"; a missing file is "absent";
 * anything else is "not-provisioned" with the reason, and nothing is deleted.
 * With `keyInSecureElement`, an empty `key` is valid (the key lives in the token).
 */
export function readRuntimeConfig(
  path: string,
  options: { keyInSecureElement?: boolean } = {},
): RuntimeConfigState {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { status: "absent" };
    return { status: "not-provisioned", reason: `${path} cannot be read (${code}).` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { status: "not-provisioned", reason: `${path} is not valid JSON.` };
  }
  const section = isObject(parsed) ? parsed["runtime-config"] : undefined;
  if (!isObject(section)) {
    return { status: "not-provisioned", reason: `${path} has no "runtime-config" object.` };
  }
  if (section["completed-fp"] !== true) {
    return {
      status: "not-provisioned",
      reason: `${path} has "completed-fp": ${
        JSON.stringify(section["completed-fp"] ?? null)
      }, not true.`,
    };
  }
  for (const key of ["cert", "key", "thing-name"]) {
    const value = section[key];
    // With a secure element the Device Client records an empty key path.
    const allowEmpty = key === "key" && options.keyInSecureElement === true;
    if (typeof value !== "string" || (value === "" && !allowEmpty)) {
      return {
        status: "not-provisioned",
        reason: `${path} has "completed-fp": true but "${key}" is ${
          value === undefined ? "missing" : "not a non-empty string"
        }.`,
      };
    }
  }
  const deviceConfig: Record<string, string> = {};
  if (isObject(section["device-config"])) {
    for (const [k, v] of Object.entries(section["device-config"])) {
      if (typeof v === "string") deviceConfig[k] = v;
    }
  }
  return {
    status: "provisioned",
    cert: section.cert as string,
    key: section.key as string,
    thingName: section["thing-name"] as string,
    deviceConfig,
  };
}

/** Serializes a runtime config as the Device Client lays it out. */
export function formatRuntimeConfig(config: RuntimeConfig): string {
  return JSON.stringify(
    {
      "runtime-config": {
        "completed-fp": true,
        cert: config.cert,
        key: config.key,
        "thing-name": config.thingName,
        "device-config": config.deviceConfig,
      },
    },
    null,
    2,
  ) + "\n";
}

/** Writes the runtime config atomically with mode 0640. */
export function writeRuntimeConfig(path: string, config: RuntimeConfig): void {
  writeFileAtomic(path, formatRuntimeConfig(config), { mode: RUNTIME_CONFIG_MODE });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
