// SPDX-License-Identifier: Apache-2.0
/**
 * Just enough DER to assemble X.509 certificates quickly (the emulator's hot
 * path): time and the fixed extension sets, over the primitives of
 * `src/pki/der.ts`.
 *
 * @module
 */

export { concat, pem, positiveInteger, sequence, tlv } from "../pki/der.ts";
import { sequence, tlv } from "../pki/der.ts";

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
