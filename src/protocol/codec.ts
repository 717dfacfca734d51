// SPDX-License-Identifier: Apache-2.0
/**
 * Encoding of provisioning payloads: JSON (default) or CBOR (a map with the
 * same keys). CBOR via `cborg`; decoding also accepts indefinite-length
 * strings, which cborg refuses, by rewriting them as definite ones first.
 *
 * @module
 */
import { decode as cborDecode, encode as cborEncode } from "cborg";
import { definiteStrings } from "./cbor.ts";
import type { PayloadFormat } from "./topics.ts";

/** Encodes a payload object in the given format. */
export function encodePayload(value: unknown, format: PayloadFormat): Uint8Array {
  if (format === "cbor") return cborEncode(value);
  return new TextEncoder().encode(JSON.stringify(value));
}

/** Decodes a payload; throws a sentence naming the problem when it is not valid. */
export function decodePayload(bytes: Uint8Array, format: PayloadFormat): unknown {
  if (format === "cbor") return decodeCbor(bytes);
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  return JSON.parse(text);
}

function decodeCbor(bytes: Uint8Array): unknown {
  try {
    return cborDecode(bytes);
  } catch (error) {
    if (!/indefinite length bytes\/strings/.test((error as Error).message)) {
      throw new Error(`The CBOR payload is not valid: ${(error as Error).message}.`);
    }
  }
  let definite: Uint8Array;
  try {
    definite = definiteStrings(bytes);
  } catch (error) {
    throw new Error(`The CBOR payload is not valid: ${(error as Error).message}.`);
  }
  try {
    return cborDecode(definite);
  } catch (error) {
    throw new Error(`The CBOR payload is not valid: ${(error as Error).message}.`);
  }
}
