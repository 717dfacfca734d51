// SPDX-License-Identifier: Apache-2.0
/**
 * The device's connections: through the HTTP proxy's CONNECT tunnel when one
 * is enabled, and the proof of the new credentials (a CONNACK for the new
 * certificate as the new thing).
 *
 * @module
 */
import type { Settings } from "../config/settings.ts";
import type { Logger } from "../log.ts";
import {
  openSession,
  type Session,
  SessionError,
  type SessionOptions,
} from "../mqtt/connection.ts";
import { openProxyTunnel } from "../mqtt/proxy.ts";
import { type ClaimCredentials, credentialPaths, readText } from "./files.ts";
import type { Registered } from "./journal.ts";

/** Connects with the new certificate and key as the new thing; resolves on CONNACK. */
export async function verifyCredentials(
  settings: Settings,
  claim: ClaimCredentials,
  entry: Omit<Registered, "step">,
  logger: Logger,
): Promise<void> {
  const { keyPath } = credentialPaths(settings, entry);
  if (entry.keySource === "secure-element") claim.token!.useCertificate(entry.certificatePem);
  const key = entry.keySource === "secure-element"
    ? {} // the token context now holds the new certificate with the same key
    : { key: entry.privateKeyPem ?? readText(keyPath, "fleet-provisioning.device-key") };
  const session = await connect(settings, {
    ...claim,
    ...key,
    cert: entry.certificatePem,
    clientId: entry.thingName,
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      session.connected,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new SessionError(
                `No CONNACK within ${settings.retry.stepTimeoutMs} ms.`,
                "network",
                "ETIMEDOUT",
              ),
            ),
          settings.retry.stepTimeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await session.close();
  }
  logger.info(`Connected with the new certificate as ${entry.thingName}.`);
}

/**
 * Opens a session with the configured MQTT version, through the HTTP proxy's
 * CONNECT tunnel when one is enabled.
 */
export async function connect(settings: Settings, given: SessionOptions): Promise<Session> {
  const options: SessionOptions = { ...given, mqttVersion: settings.mqttVersion === "5" ? 5 : 4 };
  const proxy = settings.httpProxy;
  if (!proxy?.enabled) return openSession(options);
  const socket = await openProxyTunnel(proxy, { host: options.endpoint, port: options.port }, {
    timeoutMs: settings.retry.stepTimeoutMs,
  });
  return openSession({ ...options, socket });
}
