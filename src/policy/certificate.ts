// SPDX-License-Identifier: Apache-2.0
/**
 * The X.509 certificate policy variables of a certificate ("X.509 Certificate
 * AWS IoT Core policy variables"): its id, serial number, and the first value
 * of each subject and issuer attribute, by AWS's names. Kept apart from the
 * evaluator: it needs node:crypto.
 *
 * @module
 */
import { createHash, X509Certificate } from "node:crypto";
import type { CertificateFacts } from "./variables.ts";

/** OpenSSL's short attribute names as AWS IoT's policy variables name them. */
const ATTRIBUTES: Record<string, string> = {
  C: "Country",
  O: "Organization",
  OU: "OrganizationalUnit",
  ST: "State",
  CN: "CommonName",
  serialNumber: "SerialNumber",
  title: "Title",
  SN: "Surname",
  GN: "GivenName",
  initials: "Initials",
  pseudonym: "Pseudonym",
  generationQualifier: "GenerationQualifier",
  dnQualifier: "DistinguishedNameQualifier",
};

/** The facts of a PEM certificate; throws when it cannot be parsed. */
export function certificateFacts(pem: string): CertificateFacts {
  const certificate = new X509Certificate(pem);
  return {
    id: createHash("sha256").update(certificate.raw).digest("hex"),
    subject: attributes(certificate.subject),
    issuer: attributes(certificate.issuer),
    serialNumber: certificate.serialNumber.toLowerCase(),
  };
}

/** "C=US\nCN=x" as `{Country: "US", CommonName: "x"}`, the first value of each. */
function attributes(distinguishedName: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of distinguishedName.split("\n")) {
    const at = line.indexOf("=");
    if (at < 0) continue;
    const name = ATTRIBUTES[line.slice(0, at)];
    if (name) out[name] ??= line.slice(at + 1);
  }
  return out;
}
