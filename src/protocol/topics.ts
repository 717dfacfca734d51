// SPDX-License-Identifier: Apache-2.0
/**
 * The topics of the AWS IoT fleet provisioning MQTT API: builders for an
 * operation's request, accepted and rejected topics, and the matcher that
 * maps a topic back to its operation.
 *
 * @module
 */

/** Payload encoding of the provisioning API. */
export type PayloadFormat = "json" | "cbor";

/** The three provisioning operations. */
export type Operation = "CreateKeysAndCertificate" | "CreateCertificateFromCsr" | "RegisterThing";

/** TLS ALPN protocol AWS IoT expects for MQTT on port 443. */
export const AWS_MQTT_ALPN = "x-amzn-mqtt-ca";

/** Request topic and the two response topics of one operation. */
export interface OperationTopics {
  /** Where the request is published. */
  request: string;
  /** Where an accepted answer arrives. */
  accepted: string;
  /** Where a rejection arrives. */
  rejected: string;
}

/** Returns the request/accepted/rejected topics of an operation. */
export function operationTopics(
  operation: Operation,
  options: { format?: PayloadFormat; templateName?: string } = {},
): OperationTopics {
  const format = options.format ?? "json";
  let request: string;
  switch (operation) {
    case "CreateKeysAndCertificate":
      request = `$aws/certificates/create/${format}`;
      break;
    case "CreateCertificateFromCsr":
      request = `$aws/certificates/create-from-csr/${format}`;
      break;
    case "RegisterThing":
      if (!options.templateName) {
        throw new Error("RegisterThing topics need a template name.");
      }
      request = `$aws/provisioning-templates/${options.templateName}/provision/${format}`;
      break;
  }
  return { request, accepted: `${request}/accepted`, rejected: `${request}/rejected` };
}

/** What a provisioning topic names. */
export interface Route {
  operation: Operation;
  format: PayloadFormat;
  /** Template name in the topic (RegisterThing). */
  templateName?: string;
  /** "accepted"/"rejected" when the topic is an answer topic. */
  answer?: string;
}

const ROUTE =
  /^\$aws\/(?:certificates\/(create|create-from-csr)|provisioning-templates\/([^/]+)\/provision)\/(json|cbor)(?:\/(accepted|rejected))?$/;

/** Recognizes provisioning request and answer topics; undefined for any other topic. */
export function routeOf(topic: string): Route | undefined {
  const m = ROUTE.exec(topic);
  if (!m) return undefined;
  const operation: Operation = m[1] === "create"
    ? "CreateKeysAndCertificate"
    : m[1] === "create-from-csr"
    ? "CreateCertificateFromCsr"
    : "RegisterThing";
  return { operation, format: m[3] as PayloadFormat, templateName: m[2], answer: m[4] };
}
