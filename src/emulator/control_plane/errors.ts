// SPDX-License-Identifier: Apache-2.0
/**
 * Errors as AWS IoT's REST API shapes them: an HTTP status, the error type in
 * the `x-amzn-ErrorType` header and `{"message": "..."}` as the body, so the
 * AWS CLI prints "An error occurred (Type) when calling the Operation
 * operation: message" and the SDKs throw the named exception.
 *
 * @module
 */
import { untrusted } from "../../text.ts";

/** A control-plane error: status, AWS error type, message. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;

  /** Creates an error answered with `status` and `x-amzn-ErrorType: type`. */
  constructor(status: number, type: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
  }
}

/** 400 InvalidRequestException. */
export function invalid(message: string): ApiError {
  return new ApiError(400, "InvalidRequestException", message);
}

/** 404 ResourceNotFoundException. */
export function notFound(message: string): ApiError {
  return new ApiError(404, "ResourceNotFoundException", message);
}

/** 409 ResourceAlreadyExistsException. */
export function alreadyExists(message: string): ApiError {
  return new ApiError(409, "ResourceAlreadyExistsException", message);
}

/** A request value shown in a message: capped and escaped (it came from outside). */
export function shown(value: unknown): string {
  return `'${untrusted(value, { maxChars: 80 })}'`;
}

/**
 * AWS's wording for a value that breaks its shape:
 * "1 validation error detected: Value 'x' at 'field' failed to satisfy constraint: …".
 */
export function constraint(field: string, value: unknown, rule: string): ApiError {
  return invalid(
    `1 validation error detected: Value ${
      shown(value)
    } at '${field}' failed to satisfy constraint: ${rule}`,
  );
}
