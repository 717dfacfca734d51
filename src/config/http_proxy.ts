// SPDX-License-Identifier: Apache-2.0
/**
 * The Device Client's HTTP proxy config file (`--http-proxy-config FILE`,
 * default `~/.aws-iot-device-client/http-proxy.conf` when present).
 *
 * @module
 */
import type { HttpProxySettings } from "./settings.ts";
import { readJsoncFile } from "./config_file.ts";

/** Parsed proxy settings, or one line per problem. */
export type ProxyResult =
  | { ok: true; settings: HttpProxySettings }
  | { ok: false; errors: string[] };

const KEYS = [
  "http-proxy-enabled",
  "http-proxy-host",
  "http-proxy-port",
  "http-proxy-auth-method",
  "http-proxy-username",
  "http-proxy-password",
];

/**
 * Reads and validates a proxy config file: `http-proxy-enabled` (boolean),
 * `http-proxy-host`, `http-proxy-port` (a string holding 1-65535, a number is
 * accepted too), `http-proxy-auth-method` (`UserNameAndPassword` or `None`),
 * `http-proxy-username` and `http-proxy-password` (required with
 * `UserNameAndPassword`). The password is never put in a message.
 */
export function readHttpProxyConfig(path: string): ProxyResult {
  const read = readJsoncFile(path, "HTTP proxy config");
  if (!read.ok) return read;
  const data = read.data;
  const errors: string[] = [];
  const at = (key: string) => `"${key}" in ${path}`;
  for (const key of Object.keys(data)) {
    if (!KEYS.includes(key)) {
      errors.push(`${at(key)} is not a known HTTP proxy key; expected one of ${KEYS.join(", ")}.`);
    }
  }
  const str = (key: string, secret = false): string | undefined => {
    const v = data[key];
    if (v === undefined) return undefined;
    if (typeof v !== "string") {
      errors.push(
        `${at(key)} is ${secret ? "not a string" : JSON.stringify(v)}; expected a string.`,
      );
      return undefined;
    }
    return v;
  };
  let enabled = false;
  const rawEnabled = data["http-proxy-enabled"];
  if (rawEnabled !== undefined) {
    if (typeof rawEnabled === "boolean") enabled = rawEnabled;
    else {
      errors.push(
        `${at("http-proxy-enabled")} is ${JSON.stringify(rawEnabled)}; expected true or false.`,
      );
    }
  }
  const host = str("http-proxy-host") ?? "";
  let port = 0;
  const rawPort = data["http-proxy-port"];
  if (rawPort !== undefined) {
    const text = typeof rawPort === "number" ? String(rawPort) : rawPort;
    if (typeof text === "string" && /^\d{1,5}$/.test(text) && +text >= 1 && +text <= 65535) {
      port = +text;
    } else {
      errors.push(
        `${at("http-proxy-port")} is ${
          JSON.stringify(rawPort)
        }; expected a port number from 1 to 65535, e.g. "3128".`,
      );
    }
  }
  const method = str("http-proxy-auth-method") ?? "None";
  if (method !== "UserNameAndPassword" && method !== "None") {
    errors.push(
      `${at("http-proxy-auth-method")} is ${
        JSON.stringify(method)
      }; expected "UserNameAndPassword" or "None".`,
    );
  }
  const username = str("http-proxy-username");
  const password = str("http-proxy-password", true);
  if (enabled) {
    if (host === "") {
      errors.push(`${at("http-proxy-host")} is missing; it is required when the proxy is enabled.`);
    } else if (/[\s/]/.test(host) || host.includes("://")) {
      errors.push(
        `${at("http-proxy-host")} is ${
          JSON.stringify(host)
        }; expected a host name or IP address only.`,
      );
    }
    if (port === 0 && rawPort === undefined) {
      errors.push(`${at("http-proxy-port")} is missing; it is required when the proxy is enabled.`);
    }
    if (method === "UserNameAndPassword") {
      if (!username && data["http-proxy-username"] === undefined) {
        errors.push(
          `${at("http-proxy-username")} is missing; it is required with "UserNameAndPassword".`,
        );
      }
      if (!password && data["http-proxy-password"] === undefined) {
        errors.push(
          `${at("http-proxy-password")} is missing; it is required with "UserNameAndPassword".`,
        );
      }
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    settings: {
      file: path,
      enabled,
      host,
      port,
      authMethod: method as HttpProxySettings["authMethod"],
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
    },
  };
}
