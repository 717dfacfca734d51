// SPDX-License-Identifier: Apache-2.0
/**
 * Certificates the tests make themselves: self-signed, EC P-256, valid from
 * a minute ago for a day (or as asked).
 *
 * @module
 */
import { generateKeyPair, signingAlgorithm, x509 } from "../../src/pki/mod.ts";

/** A self-signed certificate for `CN=<cn>` (a CA when `ca`), with its key (new unless given). */
export async function selfSignedCertificate(
  cn: string,
  options: {
    keys?: CryptoKeyPair;
    serial?: string;
    ca?: boolean;
    validity?: { notBefore: Date; notAfter: Date };
  } = {},
): Promise<{ certificate: x509.X509Certificate; privateKeyPem?: string }> {
  const generated = options.keys ? undefined : await generateKeyPair("ec-p256");
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    ...(options.serial === undefined ? {} : { serialNumber: options.serial }),
    name: `CN=${cn}`,
    keys: options.keys ?? generated!.keys,
    signingAlgorithm: signingAlgorithm("ec-p256"),
    notBefore: options.validity?.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: options.validity?.notAfter ?? new Date(Date.now() + 86_400_000),
    ...(options.ca
      ? { extensions: [new x509.BasicConstraintsExtension(true, undefined, true)] }
      : {}),
  });
  return { certificate, privateKeyPem: generated?.privateKeyPem };
}

/** A leaf certificate (not a CA, not self-signed) for `CN=<cn>`, signed by a throwaway issuer key. */
export async function leafCertificate(cn: string): Promise<x509.X509Certificate> {
  const subject = await generateKeyPair("ec-p256");
  const issuer = await generateKeyPair("ec-p256");
  return await x509.X509CertificateGenerator.create({
    serialNumber: "01",
    subject: `CN=${cn}`,
    issuer: "CN=throwaway issuer",
    publicKey: subject.keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: signingAlgorithm("ec-p256"),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
  });
}
