// SPDX-License-Identifier: Apache-2.0
/**
 * X.509 helpers shared by the provisioner and the emulator: key pairs, CSRs,
 * certificate ids. Built on `@peculiar/x509` and WebCrypto.
 *
 * @module
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createHash, webcrypto, X509Certificate } from "node:crypto";
import { type KeyAlgorithm, signingAlgorithm } from "./algorithms.ts";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
export { KEY_ALGORITHMS, type KeyAlgorithm, signingAlgorithm } from "./algorithms.ts";

/** A generated key pair: the WebCrypto keys and the private key as PKCS#8 PEM. */
export interface GeneratedKeyPair {
  keys: CryptoKeyPair;
  privateKeyPem: string;
}

/** Generates a key pair and returns it with its PKCS#8 PEM private key. */
export async function generateKeyPair(
  algorithm: KeyAlgorithm = "ec-p256",
): Promise<GeneratedKeyPair> {
  const params = signingAlgorithm(algorithm);
  const keys = await webcrypto.subtle.generateKey(params, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { keys, privateKeyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") };
}

/** Builds a PEM certificate signing request with subject CN = commonName. */
export async function createCsr(
  commonName: string,
  keys: CryptoKeyPair,
  options: { algorithm?: KeyAlgorithm } = {},
): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [commonName] }],
    keys,
    signingAlgorithm: signingAlgorithm(options.algorithm ?? "ec-p256"),
  });
  return csr.toString("pem");
}

/** The AWS IoT certificate id of a PEM certificate: hex SHA-256 of its DER. */
export function certificateId(certificatePem: string): string {
  const der = new X509Certificate(certificatePem).raw;
  return createHash("sha256").update(der).digest("hex");
}
