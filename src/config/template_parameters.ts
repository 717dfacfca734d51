// SPDX-License-Identifier: Apache-2.0
/**
 * `fleet-provisioning.template-parameters`: a string holding a JSON object
 * (Device Client) or a JSON object (fleetprov), whose values are strings.
 *
 * @module
 */
import { parse, type ParseError, printParseErrorCode } from "jsonc-parser";
import { MAX_PARAMETER_KEY_LENGTH, MAX_PARAMETER_VALUE_LENGTH } from "../protocol/mod.ts";

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

/** Human wording of a jsonc-parser error code. */
export function describeParseError(code: number): string {
  const name = printParseErrorCode(code);
  switch (name) {
    case "ColonExpected":
      return "a colon (:) is missing";
    case "CommaExpected":
      return "a comma (,) is missing";
    case "CloseBraceExpected":
      return "a closing brace (}) is missing";
    case "CloseBracketExpected":
      return "a closing bracket (]) is missing";
    case "PropertyNameExpected":
      return "a property name in double quotes is expected";
    case "ValueExpected":
      return "a value is expected";
    case "EndOfFileExpected":
      return "unexpected text after the end";
    case "UnexpectedEndOfString":
      return "a string is not closed";
    case "InvalidSymbol":
      return "an invalid character";
    case "InvalidCommentToken":
    case "UnexpectedEndOfComment":
      return "a comment is malformed";
    case "InvalidEscapeCharacter":
      return "an invalid escape sequence";
    default:
      return name;
  }
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
