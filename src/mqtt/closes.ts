// SPDX-License-Identifier: Apache-2.0
/**
 * What a broker's close means. A close right after our request, before any
 * byte of an answer, is what AWS IoT does when the claim policy forbids the
 * topics: repeated at the same step it is a policy problem. A close that cuts
 * a packet in half, or comes at another point, is a flaky link and stays
 * retryable. Before CONNACK, a hang-up after the TLS handshake is how AWS IoT
 * refuses over MQTT 3.1.1; anything else is the network.
 *
 * @module
 */
import { SessionError } from "./session_error.ts";

/** Where the connection stood when the broker closed it. */
export interface CloseFacts {
  /** An accepting CONNACK had arrived. */
  connackSeen: boolean;
  /** Before CONNACK, the TLS handshake had completed and the broker sent its FIN. */
  hungUp: boolean;
  /** A request was written and its answer had not arrived. */
  requestPending: boolean;
  /** No byte of a PUBLISH arrived since the request was written. */
  noAnswerBytes: boolean;
  /** The close cut a packet (some of its bytes had arrived). */
  midPacket: boolean;
}

/** The session error for a close: its kind and, for a close after CONNACK, its detail. */
export function closeError(facts: CloseFacts): SessionError {
  if (!facts.connackSeen) {
    // Over MQTT 3.1.1 AWS IoT refuses a certificate or policy by hanging up after CONNECT.
    return facts.hungUp
      ? new SessionError(
        "The broker closed the connection right after CONNECT, without CONNACK.",
        "hangup",
        "EHANGUP",
      )
      : new SessionError("The connection closed before CONNACK.", "network", "ECONNRESET");
  }
  if (facts.midPacket) {
    return new SessionError(
      "The broker closed the connection in the middle of a packet (a flaky link).",
      "closed",
      undefined,
      "mid-packet",
    );
  }
  if (facts.requestPending && facts.noAnswerBytes) {
    return new SessionError(
      "The broker closed the connection right after the request, before any answer.",
      "closed",
      undefined,
      "after-request",
    );
  }
  return new SessionError("The broker closed the connection.", "closed", undefined, "other");
}
