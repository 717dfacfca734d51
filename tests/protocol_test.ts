// SPDX-License-Identifier: Apache-2.0
/** Answer validation, rejection classes and backoff. */
import { assert, assertEquals, assertMatch, assertThrows } from "./support/assert.ts";
import {
  isRetryableRejection,
  MalformedAnswerError,
  MAX_ANSWER_BYTES,
  type Operation,
  parseAnswer,
  RejectionError,
} from "../src/protocol/mod.ts";
import { backoffDelay, isTransient } from "../src/provisioning/retry.ts";
import { SessionError } from "../src/mqtt/connection.ts";

const encode = (value: unknown) =>
  new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));
const CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
const ID = "a".repeat(64);

Deno.test("accepted answers are returned typed, unknown keys ignored", () => {
  const keys = parseAnswer("CreateKeysAndCertificate", {
    accepted: true,
    payload: encode({
      certificateId: ID,
      certificatePem: CERT,
      privateKey: KEY,
      certificateOwnershipToken: "tok",
      templateName: "old-sdk-extra",
    }),
  }, "json");
  assertEquals(keys.certificateId, ID);
  const thing = parseAnswer("RegisterThing", {
    accepted: true,
    payload: encode({ thingName: "board-1", deviceConfiguration: { a: "b" } }),
  }, "json");
  assertEquals(thing, { thingName: "board-1", deviceConfiguration: { a: "b" } });
});

const malformed: [string, Operation, unknown, RegExp][] = [
  ["not JSON", "CreateKeysAndCertificate", "{nope", /not valid JSON/],
  ["truncated", "CreateKeysAndCertificate", '{"certificateId":"', /not valid JSON/],
  ["an array", "RegisterThing", [], /not an object/],
  [
    "missing token",
    "CreateCertificateFromCsr",
    { certificateId: ID, certificatePem: CERT },
    /certificateOwnershipToken is missing/,
  ],
  ["id not hex", "CreateCertificateFromCsr", {
    certificateId: "xyz",
    certificatePem: CERT,
    certificateOwnershipToken: "t",
  }, /64 hex/],
  ["pem wrong", "CreateKeysAndCertificate", {
    certificateId: ID,
    certificatePem: "hello",
    privateKey: KEY,
    certificateOwnershipToken: "t",
  }, /not a PEM CERTIFICATE/],
  ["key wrong type", "CreateKeysAndCertificate", {
    certificateId: ID,
    certificatePem: CERT,
    privateKey: 5,
    certificateOwnershipToken: "t",
  }, /privateKey is not a non-empty string/],
  ["thing name too long", "RegisterThing", { thingName: "x".repeat(129) }, /invalid thingName/],
  ["thing name bad chars", "RegisterThing", { thingName: "a/b" }, /invalid thingName/],
  [
    "device config not strings",
    "RegisterThing",
    { thingName: "t", deviceConfiguration: { a: 1 } },
    /deviceConfiguration.a is not a string/,
  ],
];
for (const [name, operation, body, pattern] of malformed) {
  Deno.test(`malformed answer: ${name}`, () => {
    const error = assertThrows(
      () =>
        parseAnswer(
          operation as "RegisterThing",
          { accepted: true, payload: encode(body) },
          "json",
        ),
      MalformedAnswerError,
    );
    assertMatch(error.message, pattern);
    assert(isTransient(error));
  });
}

Deno.test("an oversized answer is refused before parsing", () => {
  const error = assertThrows(
    () =>
      parseAnswer("RegisterThing", {
        accepted: true,
        payload: new Uint8Array(MAX_ANSWER_BYTES + 1),
      }, "json"),
    MalformedAnswerError,
  );
  assertMatch(error.message, /more than the/);
});

Deno.test("rejections: one line with status, code, message and a hint; retry class", () => {
  const error = assertThrows(() =>
    parseAnswer("RegisterThing", {
      accepted: false,
      payload: encode({
        statusCode: 400,
        errorCode: "InvalidCertificateOwnershipToken",
        errorMessage: "Certificate ownership token cannot be empty.",
      }),
    }, "json"), RejectionError);
  assertMatch(
    error.message,
    /^RegisterThing was rejected: statusCode=400 errorCode=InvalidCertificateOwnershipToken errorMessage="Certificate ownership token cannot be empty\."\. Hint: .*token/,
  );
  assert(!error.message.includes("\n"));
  assert(!error.retryable);
  assert(isRetryableRejection({ statusCode: 429, errorCode: "x", errorMessage: "" }));
  assert(isRetryableRejection({ statusCode: 503, errorCode: "x", errorMessage: "" }));
  assert(
    isRetryableRejection({ statusCode: 400, errorCode: "ThrottlingException", errorMessage: "" }),
  );
  assert(!isRetryableRejection({ statusCode: 403, errorCode: "ACCESS_DENIED", errorMessage: "" }));
  assertThrows(
    () =>
      parseAnswer(
        "RegisterThing",
        { accepted: false, payload: encode({ statusCode: "400" }) },
        "json",
      ),
    MalformedAnswerError,
  );
});

Deno.test("backoff: full jitter below an exponential ceiling capped at the maximum", () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1000 };
  assertEquals(backoffDelay(1, policy, () => 0.999), 99);
  assertEquals(backoffDelay(3, policy, () => 0.999), 399);
  assertEquals(backoffDelay(10, policy, () => 0.999), 999);
  assertEquals(backoffDelay(4, policy, () => 0), 0);
});

Deno.test("transient: network failures and a broker closing the connection; TLS and refusals are final", () => {
  assert(isTransient(new SessionError("x", "network", "ECONNREFUSED")));
  assert(isTransient(new SessionError("x", "closed")));
  assert(!isTransient(new SessionError("x", "tls")));
  assert(!isTransient(new SessionError("x", "refused", "5")));
  assert(!isTransient(new Error("bug")));
});
