// SPDX-License-Identifier: Apache-2.0
/**
 * MQTT 5 reason codes as fleetprov reports them: the code, its name, what it
 * was about and the broker's reason string, in one line ("SUBACK 0x87 Not
 * authorized for $aws/...: the claim policy lacks iot:Subscribe"), and
 * whether a retry can help.
 *
 * @module
 */
import { untrusted } from "../text.ts";
import { SessionError } from "./session_error.ts";

/** Names of the reason codes a broker sends on CONNACK, SUBACK, PUBACK and DISCONNECT. */
const NAMES: Record<number, string> = {
  0x00: "Success",
  0x04: "Disconnect with Will Message",
  0x10: "No matching subscribers",
  0x80: "Unspecified error",
  0x81: "Malformed Packet",
  0x82: "Protocol Error",
  0x83: "Implementation specific error",
  0x84: "Unsupported Protocol Version",
  0x85: "Client Identifier not valid",
  0x86: "Bad User Name or Password",
  0x87: "Not authorized",
  0x88: "Server unavailable",
  0x89: "Server busy",
  0x8a: "Banned",
  0x8b: "Server shutting down",
  0x8c: "Bad authentication method",
  0x8d: "Keep Alive timeout",
  0x8e: "Session taken over",
  0x8f: "Topic Filter invalid",
  0x90: "Topic Name invalid",
  0x91: "Packet Identifier in use",
  0x93: "Receive Maximum exceeded",
  0x94: "Topic Alias invalid",
  0x95: "Packet too large",
  0x96: "Message rate too high",
  0x97: "Quota exceeded",
  0x98: "Administrative action",
  0x99: "Payload format invalid",
  0x9a: "Retain not supported",
  0x9b: "QoS not supported",
  0x9c: "Use another server",
  0x9d: "Server moved",
  0x9e: "Shared Subscriptions not supported",
  0x9f: "Connection rate exceeded",
  0xa0: "Maximum connect time",
  0xa1: "Subscription Identifiers not supported",
  0xa2: "Wildcard Subscriptions not supported",
};

/** Codes that time can heal: the broker is busy, unavailable, going down or rate-limiting. */
const TRANSIENT = new Set([0x88, 0x89, 0x8b, 0x8d, 0x8e, 0x96, 0x97, 0x98, 0x9f, 0xa0]);

/** MQTT 3.1.1 CONNACK return codes, in the words of the specification (table 3.1). */
const RETURN_CODES: Record<number, string> = {
  1: "Connection Refused, unacceptable protocol version",
  2: "Connection Refused, identifier rejected",
  3: "Connection Refused, Server unavailable",
  4: "Connection Refused, bad user name or password",
  5: "Connection Refused, not authorized",
};

/** An MQTT 3.1.1 CONNACK refusal: "CONNACK return code 5 (Connection Refused, not authorized)". */
export function returnCodeText(code: number): string {
  return `CONNACK return code ${code} (${RETURN_CODES[code] ?? "unknown"})`;
}

/** "0x87 Not authorized". */
export function reasonCodeText(code: number): string {
  const hex = `0x${code.toString(16).padStart(2, "0")}`;
  return `${hex} ${NAMES[code] ?? "(unknown reason code)"}`;
}

/** Whether a retry can help after this reason code. */
export function isTransientReason(code: string | undefined): boolean {
  return code !== undefined && /^0x[0-9a-f]{2}$/.test(code) && TRANSIENT.has(Number(code));
}

/**
 * How many characters of a broker's reason string an error line keeps. A
 * reason string is bounded by the packet (fleetprov reads at most 128 KiB,
 * `framing.ts`), but one line must stay readable in a journal; AWS IoT's and
 * the emulator's reasons (a certificate id, thing names, a client id) are far
 * shorter, so the whole reason reaches the line.
 */
export const REASON_STRING_MAX_CHARS = 1024;

/** What the broker said no to, for one line. */
export interface Refusal {
  packet: "CONNACK" | "SUBACK" | "PUBACK" | "DISCONNECT";
  code: number;
  /** The topic or topic filter it was about. */
  topic?: string;
  /** The broker's reason string (hostile: escaped and capped at {@linkcode REASON_STRING_MAX_CHARS} here). */
  reasonString?: string;
  /** What fleetprov makes of it, e.g. "the claim policy lacks iot:Subscribe". */
  hint?: string;
}

/**
 * The refusal as a SessionError: "SUBACK 0x87 Not authorized for TOPIC: HINT
 * (broker: "REASON")". CONNACK is kind "refused", the others "denied".
 */
export function refusalError(refusal: Refusal): SessionError {
  const { packet, code, topic, reasonString, hint } = refusal;
  let text = `${packet} ${reasonCodeText(code)}`;
  if (topic !== undefined) text += ` for ${untrusted(topic)}`;
  if (hint) text += `: ${hint}`;
  if (reasonString) {
    text += ` (broker: "${untrusted(reasonString, { maxChars: REASON_STRING_MAX_CHARS })}")`;
  }
  const kind = packet === "CONNACK" ? "refused" : "denied";
  return new SessionError(`${text}.`, kind, `0x${code.toString(16).padStart(2, "0")}`);
}
