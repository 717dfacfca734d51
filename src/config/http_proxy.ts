// SPDX-License-Identifier: Apache-2.0
/**
 * The Device Client's HTTP proxy config file (`--http-proxy-config FILE`,
 * default `~/.aws-iot-device-client/http-proxy.conf` when present).
 *
 * @module
 */
import type { HttpProxySettings } from "./settings.ts";
import { readJsoncFile } from "./config_file.ts";
import type { ProblemKind } from "./problems.ts";
import { describe } from "./problems.ts";

/** Parsed proxy settings, or one line per problem. */
export type ProxyResult =
  | { ok: true; settings: HttpProxySettings }
  | { ok: false; errors: string[]; kind?: ProblemKind };

const KEYS = [
  "http-proxy-enabled",
  "http-proxy-host",
  "http-proxy-port",
  "http-proxy-auth-method",
  "http-proxy-username",
  "http-proxy-password",
];

/** The raw keys of one proxy file, read one by one; problems collect in `errors`. */
class ProxyFile {
  readonly errors: string[] = [];

  constructor(readonly path: string, readonly data: Record<string, unknown>) {}

  /** `"key" in FILE`, for messages. */
  at(key: string): string {
    return `"${key}" in ${this.path}`;
  }

  unknownKeys(): void {
    for (const key of Object.keys(this.data)) {
      if (!KEYS.includes(key)) {
        this.errors.push(
          `${this.at(key)} is not a known HTTP proxy key; expected one of ${KEYS.join(", ")}.`,
        );
      }
    }
  }

  string(key: string, secret = false): string | undefined {
    const v = this.data[key];
    if (v === undefined) return undefined;
    if (typeof v !== "string") {
      this.errors.push(
        `${this.at(key)} is ${secret ? "not a string" : JSON.stringify(v)}; expected a string.`,
      );
      return undefined;
    }
    return v;
  }

  enabled(): boolean {
    const raw = this.data["http-proxy-enabled"];
    if (raw === undefined) return false;
    if (typeof raw === "boolean") return raw;
    this.errors.push(
      `${this.at("http-proxy-enabled")} is ${describe(raw)}; expected true or false.`,
    );
    return false;
  }

  /** The port: a string holding 1-65535 (a number is accepted too); 0 when absent or bad. */
  port(): number {
    const raw = this.data["http-proxy-port"];
    if (raw === undefined) return 0;
    const text = typeof raw === "number" ? String(raw) : raw;
    if (typeof text === "string" && /^\d{1,5}$/.test(text) && +text >= 1 && +text <= 65535) {
      return +text;
    }
    this.errors.push(
      `${this.at("http-proxy-port")} is ${
        JSON.stringify(raw)
      }; expected a port number from 1 to 65535, e.g. "3128".`,
    );
    return 0;
  }

  authMethod(): string {
    const method = this.string("http-proxy-auth-method") ?? "None";
    if (method !== "UserNameAndPassword" && method !== "None") {
      this.errors.push(
        `${this.at("http-proxy-auth-method")} is ${
          JSON.stringify(method)
        }; expected "UserNameAndPassword" or "None".`,
      );
    }
    return method;
  }

  /** What an enabled proxy needs: a host, a port, and credentials for UserNameAndPassword. */
  required(settings: { host: string; port: number; method: string }): void {
    const { host, port, method } = settings;
    if (host === "") {
      this.missing("http-proxy-host", "when the proxy is enabled");
    } else if (/[\s/]/.test(host) || host.includes("://")) {
      this.errors.push(
        `${this.at("http-proxy-host")} is ${
          JSON.stringify(host)
        }; expected a host name or IP address only.`,
      );
    }
    if (port === 0 && this.data["http-proxy-port"] === undefined) {
      this.missing("http-proxy-port", "when the proxy is enabled");
    }
    if (method !== "UserNameAndPassword") return;
    for (const key of ["http-proxy-username", "http-proxy-password"]) {
      if (this.data[key] === undefined) {
        this.missing(key, `with "UserNameAndPassword"`);
      }
    }
  }

  missing(key: string, when: string): void {
    this.errors.push(`${this.at(key)} is missing; it is required ${when}.`);
  }
}

/**
 * Reads and validates a proxy config file: `http-proxy-enabled` (boolean),
 * `http-proxy-host`, `http-proxy-port` (a string holding 1-65535, a number is
 * accepted too), `http-proxy-auth-method` (`UserNameAndPassword` or `None`),
 * `http-proxy-username` and `http-proxy-password` (required with
 * `UserNameAndPassword`). The password is never put in a message.
 */
export function readHttpProxyConfig(path: string): ProxyResult {
  const read = readJsoncFile(path, "HTTP proxy config");
  if (!read.ok) return { ok: false, errors: [read.error], kind: read.kind };
  const file = new ProxyFile(path, read.data);
  file.unknownKeys();
  const enabled = file.enabled();
  const host = file.string("http-proxy-host") ?? "";
  const port = file.port();
  const method = file.authMethod();
  const username = file.string("http-proxy-username");
  const password = file.string("http-proxy-password", true);
  if (enabled) file.required({ host, port, method });
  if (file.errors.length > 0) return { ok: false, errors: file.errors };
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
