// SPDX-License-Identifier: Apache-2.0
/**
 * Certificates the tests make themselves: self-signed, EC P-256, valid from
 * a minute ago for a day.
 *
 * @module
 */
import { generateKeyPair, signingAlgorithm, x509 } from "../../src/pki/mod.ts";

/** A self-signed certificate for `CN=<cn>` (a CA when `ca`), with its key (new unless given). */
export async function selfSignedCertificate(
  cn: string,
  options: { keys?: CryptoKeyPair; serial?: string; ca?: boolean } = {},
): Promise<{ certificate: x509.X509Certificate; privateKeyPem?: string }> {
  const generated = options.keys ? undefined : await generateKeyPair("ec-p256");
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    ...(options.serial === undefined ? {} : { serialNumber: options.serial }),
    name: `CN=${cn}`,
    keys: options.keys ?? generated!.keys,
    signingAlgorithm: signingAlgorithm("ec-p256"),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    ...(options.ca
      ? { extensions: [new x509.BasicConstraintsExtension(true, undefined, true)] }
      : {}),
  });
  return { certificate, privateKeyPem: generated?.privateKeyPem };
}
