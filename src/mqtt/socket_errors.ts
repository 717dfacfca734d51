// SPDX-License-Identifier: Apache-2.0
/**
 * A socket or TLS error as a session failure: a server certificate that
 * failed verification ("tls": configuration, the clock, or an attack), a
 * packet the framing guard or the codec refused ("malformed"), a peer that
 * does not speak MQTT, or the network. The peer's text is escaped and capped.
 *
 * @module
 */
import { untrusted } from "../text.ts";
import { FramingError } from "./framing.ts";
import { MalformedPacketError } from "./packets.ts";
import { SessionError } from "./session_error.ts";

/** The TLS verification failures: the server certificate was not accepted. */
const TLS_CERT_ERRORS = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
]);

/** The session failure for a socket or TLS error. */
export function classifySocketError(error: NodeJS.ErrnoException): SessionError {
  const code = error.code ?? "";
  if (TLS_CERT_ERRORS.has(code)) {
    return new SessionError(
      `The server certificate was not accepted (${code}): ${untrusted(error.message)}.`,
      "tls",
      code,
    );
  }
  return new SessionError(
    `${untrusted(error.message)}${code && !error.message.includes(code) ? ` (${code})` : ""}.`,
    "network",
    code || undefined,
  );
}

/** A socket error as a session failure: what the guard or the codec refused, TLS, the network. */
export function socketFailure(error: NodeJS.ErrnoException): SessionError {
  if (error instanceof SessionError) return error;
  if (error instanceof FramingError || error instanceof MalformedPacketError) {
    return new SessionError(
      error.message,
      "malformed",
      error instanceof FramingError ? "EMSGSIZE" : "EPROTO",
    );
  }
  return classifySocketError(error);
}

/**
 * A broker's first packet is CONNACK (its first byte 0x20). Anything else (an
 * HTTP error page from a port that wants ALPN, a middlebox) is not MQTT: a
 * network problem, named with what arrived. Undefined when `first` is fine.
 */
export function notMqtt(first: Uint8Array): SessionError | undefined {
  if (first[0] === 0x20) return undefined;
  const text = new TextDecoder("latin1").decode(first.subarray(0, 40));
  return new SessionError(
    `The endpoint does not speak MQTT: its first bytes are ${
      JSON.stringify(untrusted(text))
    }, not a CONNACK${
      text.startsWith("HTTP/")
        ? " (an HTTP server: on port 443 AWS IoT needs ALPN x-amzn-mqtt-ca)"
        : ""
    }.`,
    "network",
    "EPROTO",
  );
}
