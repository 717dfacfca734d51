// SPDX-License-Identifier: Apache-2.0
/**
 * Just enough DER for fleetprov's own X.509 structures: tag-length-value
 * items, INTEGER, PEM armour, and a reader that walks the items of a
 * structure without trusting its lengths. Shared by the device (its CSR) and
 * the emulator (the certificates it issues).
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** Encodes a DER length. */
function length(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** A tag-length-value item. */
export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = content.length === 1 ? content[0] : concat(...content);
  return concat(new Uint8Array([tag, ...length(body.length)]), body);
}

/** SEQUENCE. */
export function sequence(...content: Uint8Array[]): Uint8Array {
  return tlv(0x30, ...content);
}

/** A positive INTEGER from big-endian bytes. */
export function positiveInteger(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return trimmed[0] & 0x80 ? tlv(0x02, new Uint8Array([0]), trimmed) : tlv(0x02, trimmed);
}

/** PEM armour. */
export function pem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** The DER inside the first PEM block labelled one of `labels`, or undefined. */
export function pemBody(text: string, labels: readonly string[]): Uint8Array | undefined {
  for (const label of labels) {
    const match = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`)
      .exec(text);
    if (match) return new Uint8Array(Buffer.from(match[1].replace(/\s+/g, ""), "base64"));
  }
  return undefined;
}

/** One item found by {@linkcode readItem}: its tag, and where it and its content lie. */
export interface DerItem {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the item. */
  end: number;
}

/** The item at `offset` of `der`, within `limit`; throws a sentence when it does not fit. */
export function readItem(der: Uint8Array, offset: number, limit = der.length): DerItem {
  if (offset + 2 > limit) throw new Error("a DER item is cut short");
  const tag = der[offset];
  let lengthByte = der[offset + 1];
  let contentStart = offset + 2;
  let size = lengthByte;
  if (lengthByte & 0x80) {
    lengthByte &= 0x7f;
    if (lengthByte === 0 || lengthByte > 4 || contentStart + lengthByte > limit) {
      throw new Error("a DER length is malformed");
    }
    size = 0;
    for (let i = 0; i < lengthByte; i++) size = size * 256 + der[contentStart + i];
    contentStart += lengthByte;
  }
  const end = contentStart + size;
  if (end > limit) throw new Error("a DER item runs past its container");
  return { tag, start: offset, contentStart, end };
}
