// SPDX-License-Identifier: Apache-2.0
/**
 * Retry policy: which failures are transient, and exponential backoff with
 * full jitter within a total deadline.
 *
 * @module
 */
import { SessionError } from "../mqtt/connection.ts";
import { isTransientReason } from "../mqtt/reason_codes.ts";
import { MalformedAnswerError, RejectionError } from "../protocol/mod.ts";

/** Full-jitter backoff: a random wait in [0, min(max, base * 2^attempt)). */
export function backoffDelay(
  attempt: number,
  policy: { baseDelayMs: number; maxDelayMs: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/** CONNACK return code 3, "Connection Refused, Server unavailable" (MQTT 3.1.1). */
const CONNACK_SERVER_UNAVAILABLE = "3";

/**
 * True when a retry can help: network failures and timeouts, a broker closing
 * the connection (or hanging up after CONNECT), a CONNACK saying the server is
 * unavailable, MQTT 5 reason codes of a busy or rate-limiting broker,
 * throttling and 5xx rejections, malformed answers (an oversized packet too)
 * but the service's deliberate ones (a template that registers no thing).
 * (Repeated closes and hang-ups are counted by the provisioning state machine.)
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof RejectionError) return error.retryable;
  if (error instanceof SessionError) {
    switch (error.kind) {
      case "network":
      case "closed":
      case "hangup":
      case "malformed":
        return true;
      case "refused":
        return error.code === CONNACK_SERVER_UNAVAILABLE || isTransientReason(error.code);
      case "denied":
        return isTransientReason(error.code);
      default:
        return false;
    }
  }
  return error instanceof MalformedAnswerError && !error.final;
}

/** Resolves after `ms` milliseconds (backoff waits, not synchronisation). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
