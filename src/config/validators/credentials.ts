// SPDX-License-Identifier: Apache-2.0
/**
 * What the claim credentials hold, checked as a run would use them, before
 * any connection (and by `check`, which runs the same code): the root CA file
 * holds PEM X.509 certificates, at least one a CA that can anchor the
 * server's chain; and the claim certificate and root CA are valid at some
 * time a correct clock can read (src/clock/mod.ts).
 *
 * The claim certificate is not checked against the root CA: `root-ca`
 * authenticates the server (Amazon Root CA 1 or 3), while AWS IoT signs
 * device and claim certificates with a CA of its own.
 *
 * @module
 */
import type { X509Certificate } from "node:crypto";
import { type ClockReading, credentialProblem, type Validity } from "../../clock/mod.ts";
import type { LoadContext, Located } from "../problems.ts";

/** node:crypto, loaded only where contents are parsed. */
type Crypto = typeof import("node:crypto");

/** Every PEM certificate block of a text. */
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** When a parsed certificate is valid. */
export function validityOf(certificate: X509Certificate): Validity {
  return { notBefore: new Date(certificate.validFrom), notAfter: new Date(certificate.validTo) };
}

/**
 * The certificates of a root CA file, parsed; a problem (78) when it holds
 * none, one that is not X.509, or no certificate that can be a trust anchor.
 */
export function parseRootCa(
  crypto: Crypto,
  pem: string | undefined,
  rootCa: Located,
  context: LoadContext,
): X509Certificate[] | undefined {
  const where = `Root CA ${rootCa.path} (from ${rootCa.origin})`;
  const blocks = pem?.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) {
    context.problems.error(
      `${where} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA that signed the endpoint's certificate, e.g. AmazonRootCA1.pem.`,
    );
    return undefined;
  }
  const certificates: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      certificates.push(new crypto.X509Certificate(block));
    } catch {
      context.problems.error(
        `${where}: certificate ${i + 1} of ${blocks.length} is not a valid X.509 certificate.`,
      );
      return undefined;
    }
  }
  if (!certificates.some(canAnchor)) {
    context.problems.error(
      `${where} holds no CA certificate (none is a CA or self-signed), so no server chain can end there; give the CA that signed the endpoint's certificate, e.g. AmazonRootCA1.pem.`,
    );
    return undefined;
  }
  return certificates;
}

/** A CA certificate, or a self-signed one (an X.509 v1 root has no CA flag). */
function canAnchor(certificate: X509Certificate): boolean {
  if (certificate.ca) return true;
  try {
    return certificate.subject === certificate.issuer &&
      certificate.verify(certificate.publicKey);
  } catch {
    return false;
  }
}

/** A problem (78) when the claim certificate and root CA cannot work whatever the clock reads. */
export function checkValidity(
  claim: { certificate: X509Certificate; path: string },
  rootCa: { certificates: X509Certificate[]; path: string } | undefined,
  clock: ClockReading,
  context: LoadContext,
): void {
  const problem = credentialProblem(
    { claim: validityOf(claim.certificate), ca: rootCa?.certificates.map(validityOf) },
    clock,
    { claim: claim.path, ca: rootCa?.path },
  );
  if (problem) context.problems.error(problem);
}
