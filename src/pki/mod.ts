/**
 * X.509 helpers shared by the provisioner and the emulator: key pairs, CSRs,
 * certificate ids. Built on `@peculiar/x509` and WebCrypto.
 *
 * @module
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createHash, webcrypto, X509Certificate } from "node:crypto";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };

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
