// SPDX-License-Identifier: Apache-2.0
/**
 * The key algorithms fleetprov generates and their WebCrypto parameters. No
 * X.509 library here: configuration loads this without the cost of one.
 *
 * @module
 */

/** Key algorithms fleetprov can generate. */
export type KeyAlgorithm = "ec-p256" | "ec-p384" | "rsa-2048";

/** The key algorithms, for validation messages. */
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ["ec-p256", "ec-p384", "rsa-2048"];

/** WebCrypto parameters for generating and signing with a key algorithm. */
export function signingAlgorithm(
  algorithm: KeyAlgorithm,
): EcKeyGenParams & RsaHashedKeyGenParams & {
  hash: string;
} {
  switch (algorithm) {
    case "ec-p256":
      return { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as never;
    case "ec-p384":
      return { name: "ECDSA", namedCurve: "P-384", hash: "SHA-384" } as never;
    case "rsa-2048":
      return {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      } as never;
  }
}
