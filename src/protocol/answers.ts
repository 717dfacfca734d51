// SPDX-License-Identifier: Apache-2.0
/**
 * Validation of the provisioning API's answers and the meaning of its
 * rejections: which are worth a retry, and what a user should check.
 *
 * @module
 */
import { untrusted } from "../text.ts";
import { decodePayload } from "./codec.ts";
import { MAX_ANSWER_BYTES, MAX_THING_NAME_BYTES, THING_NAME_PATTERN } from "./limits.ts";
import type {
  CreateCertificateFromCsrAccepted,
  CreateKeysAndCertificateAccepted,
  RegisterThingAccepted,
  Rejection,
} from "./shapes.ts";
import type { Operation, PayloadFormat } from "./topics.ts";

/** An answer that does not match the API: missing fields, wrong types, bad encoding. */
export class MalformedAnswerError extends Error {
  /** False when the bad answer came on the rejected topic (the service refused the request). */
  readonly accepted: boolean;

  /** Creates the error; the message names the operation and the problem. */
  constructor(message: string, options: { accepted?: boolean } = {}) {
    super(message);
    this.name = "MalformedAnswerError";
    this.accepted = options.accepted ?? true;
  }
}

/** A rejection by the service, with its retry class and a hint. */
export class RejectionError extends Error {
  /** The rejection as received. */
  readonly rejection: Rejection;
  /** The operation that was rejected. */
  readonly operation: Operation;
  /** True for throttling and server errors. */
  readonly retryable: boolean;

  /** Creates the error from a validated rejection. */
  constructor(operation: Operation, rejection: Rejection) {
    super(
      `${operation} was rejected: statusCode=${rejection.statusCode} errorCode=${
        untrusted(rejection.errorCode, { maxChars: 64 })
      } errorMessage="${untrusted(rejection.errorMessage)}". ${
        rejectionHint(operation, rejection)
      }`,
    );
    this.name = "RejectionError";
    this.rejection = rejection;
    this.operation = operation;
    this.retryable = isRetryableRejection(rejection);
  }
}

/** Throttling (429, "Throttl…") and server errors (5xx) are retryable; other 4xx are final. */
export function isRetryableRejection(rejection: Rejection): boolean {
  return rejection.statusCode === 429 || rejection.statusCode >= 500 ||
    /throttl/i.test(rejection.errorCode);
}

/** A short hint at the likely cause of a rejection. */
export function rejectionHint(operation: Operation, rejection: Rejection): string {
  const code = rejection.errorCode.toLowerCase();
  if (isRetryableRejection(rejection)) {
    return "Hint: the service is throttling or failing; retrying later can help.";
  }
  if (code.includes("ownershiptoken")) {
    return "Hint: the certificate ownership token expired (1 hour) or belongs to another certificate; run again to start over.";
  }
  if (
    rejection.statusCode === 403 || code.includes("access_denied") || code.includes("accessdenied")
  ) {
    return "Hint: a pre-provisioning hook or the claim policy denied this device.";
  }
  if (operation === "RegisterThing") {
    return "Hint: check the template name and that every template parameter without a Default is given (--fleet-provisioning-template-parameters).";
  }
  if (operation === "CreateCertificateFromCsr") {
    return "Hint: check the CSR (PEM, signed with the device key) and that the claim policy allows $aws/certificates/create-from-csr/*.";
  }
  return "Hint: check that the claim policy allows $aws/certificates/create/*.";
}

/** Decodes and validates an answer; returns the accepted body or throws. */
export function parseAnswer(
  operation: "CreateKeysAndCertificate",
  answer: { accepted: boolean; payload: Uint8Array },
  format: PayloadFormat,
): CreateKeysAndCertificateAccepted;
/** Decodes and validates an answer; returns the accepted body or throws. */
export function parseAnswer(
  operation: "CreateCertificateFromCsr",
  answer: { accepted: boolean; payload: Uint8Array },
  format: PayloadFormat,
): CreateCertificateFromCsrAccepted;
/** Decodes and validates an answer; returns the accepted body or throws. */
export function parseAnswer(
  operation: "RegisterThing",
  answer: { accepted: boolean; payload: Uint8Array },
  format: PayloadFormat,
): RegisterThingAccepted;
export function parseAnswer(
  operation: Operation,
  answer: { accepted: boolean; payload: Uint8Array },
  format: PayloadFormat,
): unknown {
  try {
    return parseBody(operation, answer, format);
  } catch (error) {
    if (!(error instanceof MalformedAnswerError) || answer.accepted) throw error;
    throw new MalformedAnswerError(error.message, { accepted: false });
  }
}

function parseBody(
  operation: Operation,
  answer: { accepted: boolean; payload: Uint8Array },
  format: PayloadFormat,
): unknown {
  if (answer.payload.length > MAX_ANSWER_BYTES) {
    throw new MalformedAnswerError(
      `The ${operation} answer is ${answer.payload.length} bytes, more than the ${MAX_ANSWER_BYTES} allowed.`,
    );
  }
  let body: unknown;
  try {
    body = decodePayload(answer.payload, format);
  } catch (error) {
    throw new MalformedAnswerError(
      `The ${operation} answer is not valid ${format.toUpperCase()} (${(error as Error).message}).`,
    );
  }
  if (!isObject(body)) throw new MalformedAnswerError(`The ${operation} answer is not an object.`);
  const field = fieldReader(operation, body);
  if (!answer.accepted) {
    throw new RejectionError(operation, {
      statusCode: field.number("statusCode"),
      errorCode: field.string("errorCode"),
      errorMessage: field.string("errorMessage", { allowEmpty: true }),
    });
  }
  switch (operation) {
    case "CreateKeysAndCertificate":
      return {
        certificateId: field.certificateId(),
        certificatePem: field.pem("certificatePem", "CERTIFICATE"),
        privateKey: field.pem("privateKey", "PRIVATE KEY"),
        certificateOwnershipToken: field.string("certificateOwnershipToken"),
      } satisfies CreateKeysAndCertificateAccepted;
    case "CreateCertificateFromCsr":
      return {
        certificateId: field.certificateId(),
        certificatePem: field.pem("certificatePem", "CERTIFICATE"),
        certificateOwnershipToken: field.string("certificateOwnershipToken"),
      } satisfies CreateCertificateFromCsrAccepted;
    case "RegisterThing":
      return registerThingAccepted(body, field);
  }
}

/** An accepted RegisterThing: a thing name AWS allows, and a flat map of strings. */
function registerThingAccepted(
  body: Record<string, unknown>,
  field: ReturnType<typeof fieldReader>,
): RegisterThingAccepted {
  if (body.thingName === undefined || body.thingName === "") {
    // AWS accepts a template without a thing and answers without its name.
    throw new MalformedAnswerError(
      `The RegisterThing answer's thingName is ${
        body.thingName === undefined ? "missing" : "empty"
      }: the provisioning template registers no thing (it has no AWS::IoT::Thing resource), and the board needs one to connect as (fleetprov lint --template finds it).`,
    );
  }
  const thingName = field.string("thingName");
  if (
    new TextEncoder().encode(thingName).length > MAX_THING_NAME_BYTES ||
    !THING_NAME_PATTERN.test(thingName)
  ) {
    throw new MalformedAnswerError(
      `The RegisterThing answer has an invalid thingName "${
        untrusted(thingName, { maxChars: 140 })
      }".`,
    );
  }
  const raw = body.deviceConfiguration ?? {};
  if (!isObject(raw)) {
    throw new MalformedAnswerError(
      "The RegisterThing answer's deviceConfiguration is not an object.",
    );
  }
  const deviceConfiguration: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== "string") {
      throw new MalformedAnswerError(
        `The RegisterThing answer's deviceConfiguration.${
          untrusted(key, { maxChars: 64 })
        } is not a string.`,
      );
    }
    deviceConfiguration[key] = value;
  }
  return { thingName, deviceConfiguration } satisfies RegisterThingAccepted;
}

function fieldReader(operation: Operation, body: Record<string, unknown>) {
  function string(name: string, options: { allowEmpty?: boolean } = {}): string {
    const value = body[name];
    if (typeof value !== "string" || (!options.allowEmpty && value === "")) {
      throw new MalformedAnswerError(
        `The ${operation} answer's ${name} is ${
          value === undefined ? "missing" : "not a non-empty string"
        }.`,
      );
    }
    return value;
  }
  return {
    string,
    number(name: string): number {
      const value = body[name];
      if (typeof value !== "number" || !Number.isInteger(value)) {
        throw new MalformedAnswerError(
          `The ${operation} answer's ${name} is ${
            value === undefined ? "missing" : "not an integer"
          }.`,
        );
      }
      return value;
    },
    certificateId(): string {
      const value = string("certificateId");
      if (!/^[0-9a-f]{64}$/.test(value)) {
        throw new MalformedAnswerError(
          `The ${operation} answer's certificateId is not 64 hex characters.`,
        );
      }
      return value;
    },
    pem(name: string, label: string): string {
      const value = string(name);
      if (
        !new RegExp(`-----BEGIN [A-Z ]*${label}-----[\\s\\S]+-----END [A-Z ]*${label}-----`).test(
          value,
        )
      ) {
        throw new MalformedAnswerError(`The ${operation} answer's ${name} is not a PEM ${label}.`);
      }
      return value;
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
