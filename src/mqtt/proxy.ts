// SPDX-License-Identifier: Apache-2.0
/**
 * HTTP proxy support as the Device Client does it: an HTTP CONNECT tunnel to
 * the endpoint, with optional Basic authentication, that TLS then runs over.
 *
 * @module
 */
import http from "node:http";
import type { Duplex } from "node:stream";
import type { HttpProxySettings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import { SessionError } from "./connection.ts";

/** Opens a CONNECT tunnel through the proxy to `host:port`; resolves with the raw socket. */
export function openProxyTunnel(
  proxy: HttpProxySettings,
  target: { host: string; port: number },
  options: { timeoutMs: number },
): Promise<Duplex> {
  const authority = `${target.host}:${target.port}`;
  const headers: Record<string, string> = { host: authority };
  if (proxy.authMethod === "UserNameAndPassword") {
    const credentials = Buffer.from(`${proxy.username ?? ""}:${proxy.password ?? ""}`).toString(
      "base64",
    );
    headers["proxy-authorization"] = `Basic ${credentials}`;
  }
  return new Promise<Duplex>((resolve, reject) => {
    const request = http.request({
      host: proxy.host,
      port: proxy.port,
      method: "CONNECT",
      path: authority,
      headers,
      timeout: options.timeoutMs,
    });
    request.once("connect", (response, socket) => {
      if (response.statusCode === 200) {
        request.setTimeout(0);
        resolve(socket);
        return;
      }
      socket.destroy();
      reject(tunnelRefusal(proxy, response, target));
    });
    request.once("timeout", () => {
      request.destroy(
        new SessionError(
          `The HTTP proxy ${proxy.host}:${proxy.port} did not answer within ${options.timeoutMs} ms.`,
          "network",
          "ETIMEDOUT",
        ),
      );
    });
    request.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        error instanceof SessionError ? error : new SessionError(
          `Cannot reach the HTTP proxy ${proxy.host}:${proxy.port}: ${error.message}.`,
          "network",
          error.code,
        ),
      );
    });
    request.end();
  });
}

/** Why the proxy refused CONNECT: credentials or policy need a person, a 5xx may pass. */
function tunnelRefusal(
  proxy: HttpProxySettings,
  response: http.IncomingMessage,
  target: { host: string; port: number },
): Error {
  const authority = `${target.host}:${target.port}`;
  const status = `${response.statusCode} ${response.statusMessage ?? ""}`.trim();
  if (response.statusCode === 407 || response.statusCode === 401) {
    return new FleetprovError(
      `The HTTP proxy ${proxy.host}:${proxy.port} refused the credentials (${status}); check http-proxy-auth-method, http-proxy-username and http-proxy-password in ${proxy.file}.`,
      ExitCode.Config,
    );
  }
  if (response.statusCode !== undefined && response.statusCode >= 500) {
    return new SessionError(
      `The HTTP proxy ${proxy.host}:${proxy.port} answered ${status} to CONNECT ${authority}.`,
      "network",
      "EPROXY",
    );
  }
  return new FleetprovError(
    `The HTTP proxy ${proxy.host}:${proxy.port} refused CONNECT ${authority} (${status}); the proxy must allow tunnels to port ${target.port}.`,
    ExitCode.Config,
  );
}
