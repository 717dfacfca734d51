// SPDX-License-Identifier: Apache-2.0
/**
 * `fleet-provisioning.template-parameters`: a string holding a JSON object
 * (Device Client) or a JSON object (fleetprov), whose values are strings.
 *
 * @module
 */
import { parse, type ParseError } from "jsonc-parser";
import { MAX_PARAMETER_KEY_LENGTH, MAX_PARAMETER_VALUE_LENGTH } from "../protocol/limits.ts";

/** Parsed parameters, or one line per problem (without the origin prefix). */
export type ParsedParameters =
  | { ok: true; parameters: Record<string, string> }
  | { ok: false; problems: string[] };

const EXAMPLE = `{"SerialNumber": "SN-1"}`;

/**
 * Parses template parameters given as a string holding JSON or as an
 * already-parsed value. Values must be strings, as the RegisterThing API and
 * the Device Client's SDK require: numbers and booleans are refused with the
 * quoted form to write instead.
 */
export function parseTemplateParameters(value: unknown): ParsedParameters {
  let data: unknown = value;
  if (typeof value === "string") {
    if (value.trim() === "") {
      return {
        ok: false,
        problems: [
          `is an empty string; expected a JSON object such as ${EXAMPLE}, or leave it out`,
        ],
      };
    }
    const errors: ParseError[] = [];
    data = parse(value, errors, { allowTrailingComma: false, disallowComments: true });
    if (errors.length > 0) {
      const first = errors[0];
      return {
        ok: false,
        problems: [
          `is not valid JSON: ${describeParseError(first.error)} at character ${
            first.offset + 1
          } (near '${excerpt(value, first.offset)}'); expected a JSON object such as ${EXAMPLE}`,
        ],
      };
    }
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return {
      ok: false,
      problems: [
        `is ${describe(data)}; expected a JSON object of strings such as ${EXAMPLE}`,
      ],
    };
  }
  const problems: string[] = [];
  const parameters: Record<string, string> = {};
  for (const [key, v] of Object.entries(data as Record<string, unknown>)) {
    if (key === "") problems.push(`has an empty parameter name`);
    else if (key.length > MAX_PARAMETER_KEY_LENGTH) {
      problems.push(
        `has a parameter name longer than ${MAX_PARAMETER_KEY_LENGTH} characters (${
          JSON.stringify(key.slice(0, 20))
        }...)`,
      );
    }
    if (typeof v === "string") {
      if (v.length > MAX_PARAMETER_VALUE_LENGTH) {
        problems.push(
          `has parameter ${
            JSON.stringify(key)
          } longer than ${MAX_PARAMETER_VALUE_LENGTH} characters`,
        );
      }
      parameters[key] = v;
    } else if (typeof v === "number" || typeof v === "boolean") {
      problems.push(
        `has parameter ${JSON.stringify(key)} = ${
          JSON.stringify(v)
        } (${typeof v}); values must be strings: write ${JSON.stringify(String(v))}`,
      );
    } else {
      problems.push(
        `has parameter ${JSON.stringify(key)} = ${describe(v)}; values must be strings`,
      );
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, parameters };
}

/**
 * Human wording of jsonc-parser's error codes (its `ParseErrorCode` values,
 * part of its API); the rest by their name. Only `parse` of jsonc-parser is
 * bundled into the binary (build/bundle.ts): its formatter builds tables at
 * load time that a config file never needs.
 */
const PARSE_ERRORS: Record<number, string> = {
  1: "an invalid character",
  2: "InvalidNumberFormat",
  3: "a property name in double quotes is expected",
  4: "a value is expected",
  5: "a colon (:) is missing",
  6: "a comma (,) is missing",
  7: "a closing brace (}) is missing",
  8: "a closing bracket (]) is missing",
  9: "unexpected text after the end",
  10: "a comment is malformed",
  11: "a comment is malformed",
  12: "a string is not closed",
  13: "UnexpectedEndOfNumber",
  14: "InvalidUnicode",
  15: "an invalid escape sequence",
  16: "InvalidCharacter",
};

/** Human wording of a jsonc-parser error code. */
export function describeParseError(code: number): string {
  return PARSE_ERRORS[code] ?? "<unknown ParseErrorCode>";
}

function excerpt(text: string, offset: number): string {
  if (text.length <= 40) return text;
  const start = Math.max(0, offset - 15);
  return (start > 0 ? "..." : "") + text.slice(start, offset + 15) +
    (offset + 15 < text.length ? "..." : "");
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `${JSON.stringify(value)} (${typeof value})`;
}
