// SPDX-License-Identifier: Apache-2.0
/**
 * Request and answer payloads of the provisioning API (spec §1). Receivers
 * ignore unknown keys.
 *
 * @module
 */

/** Request of CreateCertificateFromCsr. */
export interface CreateCertificateFromCsrRequest {
  certificateSigningRequest: string;
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
