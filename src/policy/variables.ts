// SPDX-License-Identifier: Apache-2.0
/**
 * AWS IoT policy variables in a statement's resources: `${iot:ClientId}`,
 * the thing variables (`${iot:Connection.Thing.ThingName}`, `.IsAttached`,
 * …, resolved only when a thing is attached to the certificate and its name
 * is the client id), the X.509 certificate variables
 * (`${iot:CertificateId}`, `${iot:Certificate.Subject.CommonName}`, …, the
 * first value of an attribute), and the literal characters `${*}`, `${?}`
 * and `${$}`. A variable that does not resolve makes its resource match
 * nothing: the thing variables on a claim connection (its certificate has no
 * thing), an attribute the certificate lacks, a variable this evaluator does
 * not know.
 *
 * @module
 */

/** What the X.509 certificate variables resolve to. */
export interface CertificateFacts {
  /** The certificate id (hex SHA-256 of its DER). */
  id: string;
  /** Subject attributes by AWS's name (`CommonName`, `Organization`, …): the first value each. */
  subject: Record<string, string>;
  /** Issuer attributes, the same way. */
  issuer: Record<string, string>;
  /** Serial number, hex. */
  serialNumber?: string;
}

/** Values of the policy variables for one connection. */
export interface PolicyVariables {
  clientId: string;
  /** The thing attached to the certificate whose name is the client id, if any. */
  thingName?: string;
  /** The connection's certificate; undefined leaves its variables unresolved. */
  certificate?: CertificateFacts;
}

/** Marks a literal `*`, `?` or `$` in a substituted pattern: the glob keeps the next character as is. */
export const LITERAL = "\u0000";

/** A substituted pattern, or the first variable that did not resolve. */
export type Substituted = { text: string; unresolved?: undefined } | { unresolved: string };

/** Replaces every `${...}` in `pattern`; literal characters are marked with {@linkcode LITERAL}. */
export function substitute(pattern: string, variables: PolicyVariables): Substituted {
  let unresolved: string | undefined;
  const text = pattern.replace(/\$\{([^}]*)\}/g, (_m, name: string) => {
    if (name === "*" || name === "?" || name === "$") return `${LITERAL}${name}`;
    const value = valueOf(name, variables);
    if (value === undefined) unresolved ??= name;
    return value ?? "";
  });
  return unresolved === undefined ? { text } : { unresolved };
}

/** The variable names used in `pattern` (without the literal characters). */
export function variablesIn(pattern: string): string[] {
  return [...pattern.matchAll(/\$\{([^}]*)\}/g)]
    .map((m) => m[1])
    .filter((name) => name !== "*" && name !== "?" && name !== "$");
}

/** Whether this evaluator knows the variable (whether or not it resolves for a connection). */
export function isKnownVariable(name: string): boolean {
  return name === "iot:ClientId" || name === "iot:CertificateId" ||
    name === "iot:Certificate.SerialNumber" ||
    /^iot:Certificate\.(Subject|Issuer)\.[A-Za-z]+$/.test(name) ||
    /^iot:Connection\.Thing\.(ThingName|ThingTypeName|IsAttached|Attributes\[[^\]]+\])$/.test(name);
}

function valueOf(name: string, variables: PolicyVariables): string | undefined {
  const { certificate } = variables;
  switch (name) {
    case "iot:ClientId":
      return variables.clientId;
    case "iot:Connection.Thing.ThingName":
      return variables.thingName;
    case "iot:Connection.Thing.IsAttached":
      return variables.thingName === undefined ? "false" : "true";
    case "iot:CertificateId":
      return certificate?.id;
    case "iot:Certificate.SerialNumber":
      return certificate?.serialNumber;
  }
  const attribute = /^iot:Certificate\.(Subject|Issuer)\.([A-Za-z]+)$/.exec(name);
  if (attribute && certificate) {
    const fields = attribute[1] === "Subject" ? certificate.subject : certificate.issuer;
    return Object.hasOwn(fields, attribute[2]) ? fields[attribute[2]] : undefined;
  }
  // Thing types and attributes are not modelled: a claim certificate has no thing anyway.
  return undefined;
}
