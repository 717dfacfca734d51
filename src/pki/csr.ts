// SPDX-License-Identifier: Apache-2.0
/**
 * The device's key pair and PKCS#10 certificate signing request, with
 * node:crypto and fleetprov's own DER (`der.ts`), and the public key of a
 * CSR made elsewhere (a secure element's). No X.509 library: that one is
 * the emulator's, and its code would cost every provisioning run time and
 * memory for one small structure.
 *
 * @module
 */
import { generateKeyPair as generate, type KeyObject, sign } from "node:crypto";
import { promisify } from "node:util";
import type { KeyAlgorithm } from "./algorithms.ts";
import { concat, pem, pemBody, readItem, sequence, tlv } from "./der.ts";

/** A key pair made on the board: the private key (and its PKCS#8 PEM) and the public key. */
export interface DeviceKeyPair {
  privateKey: KeyObject;
  privateKeyPem: string;
  /** SubjectPublicKeyInfo, DER. */
  spki: Uint8Array;
}

const generateAsync = promisify(generate);

/** Generates a key pair on the board (on libuv's thread pool: RSA takes a while). */
export async function generateDeviceKey(algorithm: KeyAlgorithm): Promise<DeviceKeyPair> {
  const { privateKey, publicKey } = algorithm === "rsa-2048"
    ? await generateAsync("rsa", { modulusLength: 2048, publicExponent: 0x10001 })
    : await generateAsync("ec", { namedCurve: algorithm === "ec-p384" ? "P-384" : "P-256" });
  return {
    privateKey,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    spki: new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
  };
}

/** An OBJECT IDENTIFIER from its DER content bytes. */
function oid(...bytes: number[]): Uint8Array {
  return tlv(0x06, new Uint8Array(bytes));
}

/** Signature AlgorithmIdentifier and digest per key algorithm (RFC 5758, RFC 4055). */
const SIGNATURE: Record<KeyAlgorithm, { identifier: Uint8Array; digest: string }> = {
  // ecdsa-with-SHA256 1.2.840.10045.4.3.2
  "ec-p256": {
    identifier: sequence(oid(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02)),
    digest: "sha256",
  },
  // ecdsa-with-SHA384 1.2.840.10045.4.3.3
  "ec-p384": {
    identifier: sequence(oid(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03)),
    digest: "sha384",
  },
  // sha256WithRSAEncryption 1.2.840.113549.1.1.11, NULL parameters
  "rsa-2048": {
    identifier: sequence(
      oid(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b),
      new Uint8Array([0x05, 0x00]),
    ),
    digest: "sha256",
  },
};

/**
 * A PEM PKCS#10 CSR with subject CN = `commonName` (UTF8String) for the
 * key pair, signed with its private key.
 */
export function createDeviceCsr(
  commonName: string,
  key: DeviceKeyPair,
  algorithm: KeyAlgorithm,
): string {
  const commonNameOid = oid(0x55, 0x04, 0x03); // 2.5.4.3
  const subject = sequence(
    tlv(0x31, sequence(commonNameOid, tlv(0x0c, new TextEncoder().encode(commonName)))),
  );
  const info = sequence(
    new Uint8Array([0x02, 0x01, 0x00]), // version 0
    subject,
    key.spki,
    new Uint8Array([0xa0, 0x00]), // attributes: none
  );
  const { identifier, digest } = SIGNATURE[algorithm];
  // EC signatures come DER-encoded (ECDSA-Sig-Value), RSA ones PKCS#1 v1.5, as X.509 wants.
  const signature = sign(digest, info, key.privateKey);
  return pem(
    sequence(info, identifier, tlv(0x03, concat(new Uint8Array([0]), signature))),
    "CERTIFICATE REQUEST",
  );
}

/**
 * The public key (SubjectPublicKeyInfo, DER) of a PEM CSR; throws a sentence
 * saying what is wrong when the text is not a PKCS#10 request.
 */
export function csrPublicKey(csrPem: string): Uint8Array {
  const der = pemBody(csrPem, ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]);
  if (!der) throw new Error("no -----BEGIN CERTIFICATE REQUEST----- block");
  const request = readItem(der, 0);
  const info = readItem(der, request.contentStart, request.end);
  const version = readItem(der, info.contentStart, info.end);
  const subject = readItem(der, version.end, info.end);
  const spki = readItem(der, subject.end, info.end);
  if ([request.tag, info.tag, version.tag, subject.tag, spki.tag].join() !== "48,48,2,48,48") {
    throw new Error("its structure is not that of a PKCS#10 request");
  }
  return der.slice(spki.start, spki.end);
}
