// SPDX-License-Identifier: Apache-2.0
/**
 * Why an MQTT session failed, as a kind that decides whether a retry can help,
 * and for a close after CONNACK, where it happened.
 *
 * @module
 */

/** Why a session failed: decides whether a retry can help. */
export type SessionFailureKind =
  /** Refused, reset, unreachable, timed out: retry can help. */
  | "network"
  /** The broker closed the connection after CONNACK without an error. */
  | "closed"
  /**
   * The broker closed the connection right after CONNECT, without CONNACK:
   * how AWS IoT refuses a certificate or a policy over MQTT 3.1.1.
   */
  | "hangup"
  /** CONNACK refused the client (not authorized, bad client id, ...). */
  | "refused"
  /** MQTT 5: the broker said no with a reason code (SUBACK, PUBACK, DISCONNECT >= 0x80). */
  | "denied"
  /** The server certificate failed verification: configuration, clock or attack. */
  | "tls"
  /** The broker sent a packet no API answer can be (over 128 KiB, bad header). */
  | "malformed";

/** For a close after CONNACK: right after our request, mid-packet, or another point. */
export type CloseDetail = "after-request" | "mid-packet" | "other";

/** A session failure with its kind. */
export class SessionError extends Error {
  /** What kind of failure this is. */
  readonly kind: SessionFailureKind;
  /** Underlying error code (ECONNREFUSED, CONNACK return code, MQTT 5 reason code "0x87", ...). */
  readonly code?: string;
  /** Where a close ("closed") happened. */
  readonly closeDetail?: CloseDetail;

  /** Creates a session error. */
  constructor(
    message: string,
    kind: SessionFailureKind,
    code?: string,
    closeDetail?: CloseDetail,
  ) {
    super(message);
    this.name = "SessionError";
    this.kind = kind;
    this.code = code;
    this.closeDetail = closeDetail;
  }
}
