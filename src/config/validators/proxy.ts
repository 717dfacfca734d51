// SPDX-License-Identifier: Apache-2.0
/**
 * The HTTP proxy config: `--http-proxy-config FILE`, else
 * `~/.aws-iot-device-client/http-proxy.conf` when present; read, validated
 * and permission-checked.
 *
 * @module
 */
import { readHttpProxyConfig } from "../http_proxy.ts";
import { RULES } from "../permissions.ts";
import type { LoadContext } from "../problems.ts";
import type { HttpProxySettings } from "../settings.ts";
import { checkPermissions, locateFile } from "./paths.ts";

/** The proxy settings, or undefined when no proxy config is given or found. */
export function loadProxySettings(
  flagValue: string | undefined,
  fallback: string,
  context: LoadContext,
): HttpProxySettings | undefined {
  const flag = { name: "--http-proxy-config", value: flagValue };
  const path = locateFile(flag, "HTTP proxy config", fallback, context);
  if (path === undefined) return undefined;
  const read = readHttpProxyConfig(path);
  if (!read.ok) {
    for (const e of read.errors) context.problems.error(e, read.kind);
    return undefined;
  }
  checkPermissions(path, RULES.proxyConfig, "--http-proxy-config", context);
  return read.settings;
}
