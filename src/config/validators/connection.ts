// SPDX-License-Identifier: Apache-2.0
/**
 * Checks of the connection settings: the endpoint, the client ids, and the
 * settings every run needs (endpoint, claim certificate and key).
 *
 * @module
 */
import { MAX_THING_NAME_BYTES } from "../../protocol/limits.ts";
import type { Located, Problems } from "../problems.ts";
import type { SettingValues } from "../reader.ts";
import type { Entry } from "../schema.ts";
import { describe } from "../problems.ts";

/** `endpoint`: a host name only (no scheme, port or path). */
export function hostName(entry: Entry<string>): string | undefined {
  const value = entry.value;
  if (!value.includes("://") && !/[\s/?#@]/.test(value) && value.length <= 253) return undefined;
  return `${entry.origin} is ${
    describe(value)
  }; expected a host name only, such as abc123-ats.iot.us-east-1.amazonaws.com (no scheme, port or path).`;
}

/** `thing-name`, `client-id`: at most the bytes AWS IoT accepts in a client id. */
export function idLength(entry: Entry<string>): string | undefined {
  const bytes = new TextEncoder().encode(entry.value).length;
  if (bytes <= MAX_THING_NAME_BYTES) return undefined;
  return `${entry.origin} is ${bytes} bytes long; AWS IoT accepts at most ${MAX_THING_NAME_BYTES}.`;
}

/**
 * The settings every run needs: the endpoint, the claim certificate, and its
 * key unless a secure element holds it. A value given but invalid was
 * reported already: it is not "missing" too.
 */
export function checkRequired(
  values: SettingValues,
  claim: { cert?: Located; key?: Located },
  problems: Problems,
): void {
  if (!values.entry("endpoint") && !values.given("endpoint")) {
    problems.error(`The endpoint is missing: set "endpoint" in the config file or --endpoint.`);
  }
  if (!claim.cert && !values.given("cert")) {
    problems.error(`The claim certificate is missing: set "cert" in the config file or --cert.`);
  }
  if (!claim.key && !values.value<boolean>("secure-element.enabled") && !values.given("key")) {
    problems.error(`The claim private key is missing: set "key" in the config file or --key.`);
  }
}
