// SPDX-License-Identifier: Apache-2.0
/**
 * The provisioning API's answers and callers: an accepted body or a
 * rejection, who asked, and how ownership tokens are stored.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Rejection } from "../../protocol/mod.ts";

/** An answer: accepted body, or a rejection. */
export type Answer =
  | { accepted: true; body: Record<string, unknown> }
  | { accepted: false; body: Rejection };

/** Who is asking: the certificate and client id of the connection. */
export interface Caller {
  certificateId: string;
  clientId: string;
}

/** Builds a rejection answer. */
export function reject(statusCode: number, errorCode: string, errorMessage: string): Answer {
  return { accepted: false, body: { statusCode, errorCode, errorMessage } };
}

/** The hash under which a token is stored. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
