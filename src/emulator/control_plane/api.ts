// SPDX-License-Identifier: Apache-2.0
/**
 * What an operation of the control plane gets and gives, the input checks
 * AWS's shapes make (patterns, lengths, enums, query numbers), ARNs, and
 * pagination tokens.
 *
 * @module
 */
import type { IncomingHttpHeaders } from "node:http";
import { ARN_PREFIX } from "../defaults.ts";
import type { Registry } from "../registry/mod.ts";
import { constraint, invalid } from "./errors.ts";

/** A decoded request: path parameters, query, headers and the JSON body (an object). */
export interface ApiRequest {
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** What the operations act on. */
export interface ApiContext {
  registry: Registry;
  log: (line: string) => void;
  /** Closes the MQTT connections of a certificate; returns how many. */
  disconnectCertificate(certificateId: string): number;
  /** The MQTT endpoint devices use (DescribeEndpoint). */
  endpoint: { host: string; port: number };
  /**
   * Whether a request may set a `file:` hook (a command the emulator runs):
   * anyone who reaches the control plane could run commands as the emulator's user.
   */
  allowCommandHooks: boolean;
}

/** An operation's answer: a JSON body (none for AWS's empty answers). */
export type ApiResponse = Record<string, unknown> | undefined;

/** One operation. */
export type Handler = (context: ApiContext, request: ApiRequest) => ApiResponse;

/** A string shape of AWS's API: length bounds and a pattern. */
export interface Shape {
  min: number;
  max: number;
  pattern?: RegExp;
}

/** Names and ids, as AWS's API shapes define them. */
export const SHAPES = {
  thingName: { min: 1, max: 128, pattern: /^[a-zA-Z0-9:_-]+$/ },
  certificateId: { min: 64, max: 64, pattern: /^(0x)?[a-fA-F0-9]+$/ },
  policyName: { min: 1, max: 128, pattern: /^[\w+=,.@-]+$/ },
  templateName: { min: 1, max: 36, pattern: /^[0-9A-Za-z_-]+$/ },
  groupName: { min: 1, max: 128, pattern: /^[a-zA-Z0-9:_-]+$/ },
  description: { min: 0, max: 500, pattern: /^[^\p{C}]*$/u },
  roleArn: { min: 20, max: 2048 },
  payloadVersion: { min: 10, max: 32, pattern: /^[0-9-]+$/ },
  attributeName: { min: 1, max: 128, pattern: /^[a-zA-Z0-9_.,@/:#-]+$/ },
  attributeValue: { min: 0, max: 800, pattern: /^[a-zA-Z0-9_.,@/:#-]*$/ },
} satisfies Record<string, Shape>;

/** Checks a string against a shape; throws AWS's validation error naming `field`. */
export function string(value: unknown, field: string, shape: Shape): string {
  if (typeof value !== "string") {
    throw constraint(field, value, "Member must not be null and must be a string");
  }
  const length = [...value].length;
  if (length < shape.min) {
    throw constraint(field, value, `Member must have length greater than or equal to ${shape.min}`);
  }
  if (length > shape.max) {
    throw constraint(field, value, `Member must have length less than or equal to ${shape.max}`);
  }
  if (shape.pattern && !shape.pattern.test(value)) {
    throw constraint(
      field,
      value,
      `Member must satisfy regular expression pattern: ${
        shape.pattern.source.replace(/^\^|\$$/g, "")
      }`,
    );
  }
  return value;
}

/** An optional body field of type boolean. */
export function boolean(value: unknown, field: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw constraint(field, value, "Member must be a boolean");
  return value;
}

/** An integer query parameter within bounds (absent: undefined). */
export function queryInteger(query: URLSearchParams, name: string, max = 250): number | undefined {
  const text = query.get(name);
  if (text === null) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) {
    throw constraint(name, text, `Member must be an integer from 1 to ${max}`);
  }
  return value;
}

/** A boolean query parameter (absent: undefined). */
export function queryBoolean(query: URLSearchParams, name: string): boolean | undefined {
  const text = query.get(name);
  if (text === null) return undefined;
  if (text !== "true" && text !== "false") throw constraint(name, text, "Member must be a boolean");
  return text === "true";
}

/** ARNs of the emulator's account (123456789012) and region (us-east-1). */
export const arn = {
  certificate: (id: string): string => `${ARN_PREFIX}cert/${id}`,
  thing: (name: string): string => `${ARN_PREFIX}thing/${name}`,
  policy: (name: string): string => `${ARN_PREFIX}policy/${name}`,
  template: (name: string): string => `${ARN_PREFIX}provisioningtemplate/${name}`,
  thingGroup: (name: string): string => `${ARN_PREFIX}thinggroup/${name}`,
  thingType: (name: string): string => `${ARN_PREFIX}thingtype/${name}`,
  billingGroup: (name: string): string => `${ARN_PREFIX}billinggroup/${name}`,
};

/** The certificate id of a certificate ARN (any region and account), or undefined. */
export function certificateIdOfArn(text: string): string | undefined {
  const match = /^arn:aws[a-z-]*:iot:[a-z0-9-]*:\d{12}:cert\/([0-9a-f]{64})$/.exec(text);
  return match?.[1];
}

/** Epoch seconds, as AWS's REST JSON timestamps are. */
export function epochSeconds(iso: string): number {
  return Date.parse(iso) / 1000;
}

/**
 * One page of `items`: the request's token (base64 of an offset) and page
 * size (default 250); returns the page and the next token, if any.
 */
export function page<T>(
  items: T[],
  request: { token: string | null; size: number | undefined; field: string },
): { items: T[]; next?: string } {
  let offset = 0;
  if (request.token !== null) {
    let decoded = Number.NaN;
    try {
      decoded = Number(atob(request.token));
    } catch { /* not base64 */ }
    if (!/^\d+$/.test(String(decoded)) || !Number.isSafeInteger(decoded)) {
      throw invalid(`The ${request.field} is not one this emulator gave.`);
    }
    offset = decoded;
  }
  const size = request.size ?? 250;
  const slice = items.slice(offset, offset + size);
  const nextOffset = offset + slice.length;
  return nextOffset < items.length
    ? { items: slice, next: btoa(String(nextOffset)) }
    : { items: slice };
}
