// SPDX-License-Identifier: Apache-2.0
/**
 * A socket or TLS error as a session failure: a server certificate that
 * failed verification ("tls": configuration, the clock, or an attack) or the
 * network. The peer's text is escaped and capped.
 *
 * @module
 */
import { untrusted } from "../text.ts";
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
