// SPDX-License-Identifier: Apache-2.0
/**
 * Topic names and payload shapes of the AWS IoT fleet provisioning MQTT API.
 *
 * @module
 */

/** Payload encoding of the provisioning API. */
export type PayloadFormat = "json" | "cbor";

/** The three provisioning operations. */
export type Operation = "CreateKeysAndCertificate" | "CreateCertificateFromCsr" | "RegisterThing";

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

/** Accepted answer of CreateKeysAndCertificate. */
export interface CreateKeysAndCertificateAccepted {
  certificateId: string;
  certificatePem: string;
  privateKey: string;
  certificateOwnershipToken: string;
}

/** Accepted answer of CreateCertificateFromCsr. */
export interface CreateCertificateFromCsrAccepted {
  certificateId: string;
  certificatePem: string;
  certificateOwnershipToken: string;
}

/** Request of RegisterThing. */
export interface RegisterThingRequest {
  certificateOwnershipToken: string;
  parameters?: Record<string, string>;
}

/** Accepted answer of RegisterThing. */
export interface RegisterThingAccepted {
  thingName: string;
  deviceConfiguration: Record<string, string>;
}

/** Every rejection of the provisioning API. */
export interface Rejection {
  statusCode: number;
  errorCode: string;
  errorMessage: string;
}
