// SPDX-License-Identifier: Apache-2.0
/**
 * Just enough DER to assemble X.509 certificates quickly (the emulator's hot
 * path): tag-length-value, INTEGER, time, and the fixed extension sets.
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

/** UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
export function time(date: Date): Uint8Array {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z";
  const year = date.getUTCFullYear();
  const text = year < 2050 ? digits.slice(2) : digits;
  return tlv(year < 2050 ? 0x17 : 0x18, new TextEncoder().encode(text));
}

/** The ecdsa-with-SHA256 AlgorithmIdentifier. */
export const ECDSA_WITH_SHA256: Uint8Array = new Uint8Array([
  0x30,
  0x0a,
  0x06,
  0x08,
  0x2a,
  0x86,
  0x48,
  0xce,
  0x3d,
  0x04,
  0x03,
  0x02,
]);

/**
 * `[3] { basicConstraints CA:false (critical), keyUsage digitalSignature +
 * keyEncipherment (critical), extKeyUsage clientAuth }`: the device profile.
 */
export const CLIENT_EXTENSIONS: Uint8Array = tlv(
  0xa3,
  sequence(
    new Uint8Array([
      0x30,
      0x0c,
      0x06,
      0x03,
      0x55,
      0x1d,
      0x13,
      0x01,
      0x01,
      0xff,
      0x04,
      0x02,
      0x30,
      0x00,
    ]),
    new Uint8Array([
      0x30,
      0x0e,
      0x06,
      0x03,
      0x55,
      0x1d,
      0x0f,
      0x01,
      0x01,
      0xff,
      0x04,
      0x04,
      0x03,
      0x02,
      0x05,
      0xa0,
    ]),
    new Uint8Array([
      0x30,
      0x13,
      0x06,
      0x03,
      0x55,
      0x1d,
      0x25,
      0x04,
      0x0c,
      0x30,
      0x0a,
      0x06,
      0x08,
      0x2b,
      0x06,
      0x01,
      0x05,
      0x05,
      0x07,
      0x03,
      0x02,
    ]),
  ),
);

/** Version v3: `[0] { INTEGER 2 }`. */
export const VERSION_3: Uint8Array = new Uint8Array([0xa0, 0x03, 0x02, 0x01, 0x02]);

/** PEM armour. */
export function pem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
