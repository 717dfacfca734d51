// SPDX-License-Identifier: Apache-2.0
/**
 * The device's connections: through the HTTP proxy's CONNECT tunnel when one
 * is enabled, and the proof of the new credentials (a CONNACK for the new
 * certificate as the new thing), whose transport (TCP, or the proxy tunnel)
 * is opened while RegisterThing is in flight: the new certificate is usable
 * only once registered, so its TLS handshake waits, but the transport need not.
 *
 * @module
 */
import net from "node:net";
import type { Duplex } from "node:stream";
import type { Settings } from "../config/settings.ts";
import type { Logger } from "../log.ts";
import {
  openSession,
  type Session,
  SessionError,
  type SessionOptions,
} from "../mqtt/connection.ts";
import { type ClaimCredentials, credentialPaths, readText } from "./files.ts";
import type { Registered } from "./journal.ts";

/** A transport to the endpoint opened ahead of its TLS handshake. */
export interface Preopened {
  /** The transport if it is still usable (handed over once), else undefined. */
  take(): Promise<Duplex | undefined>;
  /** Closes it unless it was taken. */
  discard(): void;
}

/**
 * Opens a transport to the endpoint now, for a connection whose TLS starts
 * later: TCP to `address` (the claim connection's, so no DNS lookup), or the
 * HTTP proxy's tunnel. A transport that failed or closed meanwhile is not
 * handed over: the connection then opens its own.
 */
export function preopen(settings: Settings, address: string | undefined): Preopened {
  let failed = false;
  let taken = false;
  const watch = (socket: Duplex): Duplex =>
    socket.once("error", () => (failed = true)).once("close", () => (failed = true));
  const opening: Promise<Duplex | undefined> = settings.httpProxy?.enabled
    ? tunnel(settings).then(watch, () => undefined)
    : Promise.resolve(
      watch(net.connect({ host: address ?? settings.endpoint, port: settings.port })),
    );
  return {
    async take() {
      const socket = await opening;
      if (taken || failed || !socket || socket.destroyed) {
        socket?.destroy();
        return undefined;
      }
      taken = true;
      return socket;
    },
    discard() {
      if (!taken) void opening.then((socket) => socket?.destroy());
      taken = true;
    },
  };
}

/** Connects with the new certificate and key as the new thing; resolves on CONNACK. */
export async function verifyCredentials(
  settings: Settings,
  claim: ClaimCredentials,
  entry: Omit<Registered, "step">,
  options: { logger: Logger; transport?: Preopened },
): Promise<void> {
  const { keyPath } = credentialPaths(settings, entry);
  if (entry.keySource === "secure-element") claim.token!.useCertificate(entry.certificatePem);
  const key = entry.keySource === "secure-element"
    ? {} // the token context now holds the new certificate with the same key
    : {
      key: entry.privateKeyPem ?? readText(keyPath, "fleet-provisioning.device-key"),
      secureContext: undefined, // not the claim's: this connection's is built from cert and key
    };
  const socket = await options.transport?.take();
  const session = await connect(settings, {
    ...claim,
    ...key,
    cert: entry.certificatePem,
    clientId: entry.thingName,
    ...(socket ? { socket } : {}),
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
  options.logger.info(`Connected with the new certificate as ${entry.thingName}.`);
}

/**
 * Opens a session with the configured MQTT version, over the given transport,
 * else through the HTTP proxy's CONNECT tunnel when one is enabled.
 */
export async function connect(settings: Settings, given: SessionOptions): Promise<Session> {
  const options: SessionOptions = { ...given, mqttVersion: settings.mqttVersion === "5" ? 5 : 4 };
  if (!settings.httpProxy?.enabled || options.socket) return openSession(options);
  return openSession({ ...options, socket: await tunnel(settings) });
}

/** The HTTP proxy's CONNECT tunnel to the endpoint (its code is loaded only when a proxy is used). */
async function tunnel(settings: Settings): Promise<Duplex> {
  const { openProxyTunnel } = await import("../mqtt/proxy.ts");
  return await openProxyTunnel(
    settings.httpProxy!,
    { host: settings.endpoint, port: settings.port },
    { timeoutMs: settings.retry.stepTimeoutMs },
  );
}
