// SPDX-License-Identifier: Apache-2.0
/**
 * What an MQTT session is given and what it offers: where and as whom to
 * connect, the TLS options that follow from it, and the session's interface.
 *
 * @module
 */
import type tls from "node:tls";
import type { Duplex } from "node:stream";
import type { OperationTopics } from "../protocol/mod.ts";
import type { ProtocolLevel } from "./packets.ts";

/** How to reach and authenticate to the broker. */
export interface SessionOptions {
  /** Host name; the server certificate must match it. */
  endpoint: string;
  /** The endpoint's IP address when already resolved (saves a DNS lookup). */
  address?: string;
  port: number;
  clientId: string;
  /** Client certificate, PEM. */
  cert: string;
  /** Client private key, PEM (absent when the key lives in a PKCS#11 token). */
  key?: string;
  /** A ready TLS context (certificate, key, CAs), e.g. one whose key lives in a secure element. */
  secureContext?: tls.SecureContext;
  /** Trusted root CAs, PEM; undefined uses the system trust store. */
  ca?: string;
  /** ALPN protocols to offer; fleetprov offers `x-amzn-mqtt-ca` on port 443. */
  alpnProtocols?: string[];
  /** An already-open (or opening) transport, e.g. an HTTP CONNECT tunnel, to run TLS over. */
  socket?: Duplex;
  /** How long to wait for CONNACK, milliseconds. */
  connectTimeoutMs: number;
  /** MQTT keepalive, seconds. */
  keepaliveSeconds?: number;
  /** MQTT protocol level: 4 (MQTT 3.1.1, default) or 5. */
  mqttVersion?: ProtocolLevel;
  /** Whose policy a refused subscribe or publish points at, e.g. "the claim policy". */
  policyName?: string;
  /** Every answer topic the session's requests will wait on: one SUBSCRIBE at CONNACK. */
  subscriptions?: readonly string[];
}

/** An answer on one of an operation's response topics. */
export interface Answer {
  accepted: boolean;
  payload: Uint8Array;
}

/** A live session. */
export interface Session {
  /** Resolves on CONNACK; rejects with a {@linkcode SessionError}. */
  readonly connected: Promise<void>;
  /** The broker's IP address once connected, to reuse without another DNS lookup. */
  remoteAddress(): string | undefined;
  /**
   * Publishes the request (at CONNACK, behind the session's SUBSCRIBE, when
   * called before it), then resolves with the first answer on its topics,
   * which must be among the session's subscriptions. Rejects on timeout or
   * session failure.
   */
  request(
    topics: OperationTopics,
    payload: Uint8Array,
    options: { timeoutMs: number },
  ): Promise<Answer>;
  /** Sends DISCONNECT and closes the transport, without waiting for the broker's FIN. */
  close(): Promise<void>;
}

/** The TLS options of a session: the client certificate, the trust, the server name, ALPN. */
export function tlsOptions(options: SessionOptions): tls.ConnectionOptions {
  return {
    host: options.address ?? options.endpoint,
    servername: isIpAddress(options.endpoint) ? undefined : options.endpoint,
    port: options.port,
    socket: options.socket,
    cert: options.cert,
    key: options.key,
    secureContext: options.secureContext,
    ca: options.ca,
    ALPNProtocols: options.alpnProtocols,
    minVersion: "TLSv1.2",
    rejectUnauthorized: true,
  };
}

function isIpAddress(host: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.includes(":");
}
