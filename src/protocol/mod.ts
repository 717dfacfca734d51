// SPDX-License-Identifier: Apache-2.0
/**
 * The vocabulary of the AWS IoT fleet provisioning MQTT API, shared by the
 * device (provisioning, mqtt, config) and the emulator: topics, request and
 * answer shapes, the JSON/CBOR codec, answer validation and the API's limits.
 * It imports nothing of fleetprov's.
 *
 * @module
 */
export {
  AWS_MQTT_ALPN,
  type Operation,
  type OperationTopics,
  operationTopics,
  type PayloadFormat,
  type Route,
  routeOf,
} from "./topics.ts";
export type {
  CreateCertificateFromCsrAccepted,
  CreateCertificateFromCsrRequest,
  CreateKeysAndCertificateAccepted,
  RegisterThingAccepted,
  RegisterThingRequest,
  Rejection,
} from "./shapes.ts";
export { decodePayload, encodePayload } from "./codec.ts";
export { definiteStrings } from "./cbor.ts";
export {
  isRetryableRejection,
  MalformedAnswerError,
  parseAnswer,
  RejectionError,
  rejectionHint,
} from "./answers.ts";
export {
  MAX_ANSWER_BYTES,
  MAX_PARAMETER_KEY_LENGTH,
  MAX_PARAMETER_VALUE_LENGTH,
  MAX_THING_NAME_BYTES,
  TEMPLATE_NAME_PATTERN,
  THING_NAME_PATTERN,
} from "./limits.ts";
export { DEFAULT_ROTATION_TEMPLATE_NAME, ROTATION_PARAMETERS } from "./rotation.ts";
