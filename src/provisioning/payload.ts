// SPDX-License-Identifier: Apache-2.0
/**
 * Encoding of provisioning payloads: JSON (default) or CBOR (a map with the
 * same keys). CBOR via `cborg`; decoding also accepts indefinite-length
 * strings, which cborg refuses, by rewriting them as definite ones first.
 *
 * @module
 */
import { decode as cborDecode, encode as cborEncode } from "cborg";
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

/**
 * Rewrites every indefinite-length byte or text string (RFC 8949 §3.2.3) as a
 * definite-length one; everything else is copied as is.
 */
export function definiteStrings(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  let pos = 0;

  function need(n: number): void {
    if (pos + n > bytes.length) throw new Error("the data ends in the middle of an item");
  }

  /** Reads an item header; returns major type, argument and whether it is indefinite. */
  function header(): { major: number; arg: number; indefinite: boolean; start: number } {
    const start = pos;
    need(1);
    const initial = bytes[pos++];
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (info < 24) return { major, arg: info, indefinite: false, start };
    if (info === 31) return { major, arg: 0, indefinite: true, start };
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (size === 0) throw new Error(`reserved additional information ${info}`);
    need(size);
    let arg = 0;
    for (let i = 0; i < size; i++) arg = arg * 256 + bytes[pos++];
    return { major, arg, indefinite: false, start };
  }

  function copy(from: number, to: number): void {
    for (let i = from; i < to; i++) out.push(bytes[i]);
  }

  function pushHeader(major: number, length: number): void {
    const m = major << 5;
    if (length < 24) out.push(m | length);
    else if (length < 0x100) out.push(m | 24, length);
    else if (length < 0x10000) out.push(m | 25, length >> 8, length & 0xff);
    else {out.push(
        m | 26,
        (length >>> 24) & 0xff,
        (length >> 16) & 0xff,
        (length >> 8) & 0xff,
        length & 0xff,
      );}
  }

  function item(depth: number): void {
    if (depth > 64) throw new Error("items are nested too deeply");
    const h = header();
    switch (h.major) {
      case 0:
      case 1:
        copy(h.start, pos);
        return;
      case 2:
      case 3:
        if (!h.indefinite) {
          need(h.arg);
          pos += h.arg;
          copy(h.start, pos);
          return;
        } else {
          const chunks: number[] = [];
          while (true) {
            need(1);
            if (bytes[pos] === 0xff) {
              pos++;
              break;
            }
            const chunk = header();
            if (chunk.major !== h.major || chunk.indefinite) {
              throw new Error("an indefinite-length string holds a chunk of another type");
            }
            need(chunk.arg);
            for (let i = 0; i < chunk.arg; i++) chunks.push(bytes[pos + i]);
            pos += chunk.arg;
          }
          pushHeader(h.major, chunks.length);
          for (const b of chunks) out.push(b);
          return;
        }
      case 4:
      case 5: {
        copy(h.start, pos);
        if (h.indefinite) {
          while (true) {
            need(1);
            if (bytes[pos] === 0xff) {
              out.push(0xff);
              pos++;
              return;
            }
            item(depth + 1);
            if (h.major === 5) item(depth + 1);
          }
        }
        const count = h.major === 5 ? h.arg * 2 : h.arg;
        for (let i = 0; i < count; i++) item(depth + 1);
        return;
      }
      case 6:
        copy(h.start, pos);
        item(depth + 1);
        return;
      default: // 7: simple values and floats; the argument bytes were consumed by header().
        if (h.indefinite) throw new Error("unexpected break code");
        copy(h.start, pos);
    }
  }

  item(0);
  if (pos !== bytes.length) throw new Error("there are bytes after the payload");
  return Uint8Array.from(out);
}
