/**
 * Encoding of provisioning payloads: JSON (default) or CBOR.
 *
 * @module
 */
import type { PayloadFormat } from "./topics.ts";

/** Encodes a payload object in the given format. */
export function encodePayload(value: unknown, format: PayloadFormat): Uint8Array {
  if (format === "cbor") throw new Error("CBOR payloads are not supported yet.");
  return new TextEncoder().encode(JSON.stringify(value));
}

/** Decodes a payload; throws a sentence naming the problem when it is not valid. */
export function decodePayload(bytes: Uint8Array, format: PayloadFormat): unknown {
  if (format === "cbor") throw new Error("CBOR payloads are not supported yet.");
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  return JSON.parse(text);
}
