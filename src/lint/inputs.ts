// SPDX-License-Identifier: Apache-2.0
/**
 * The documents lint is given, read as untrusted input: at most
 * {@linkcode MAX_INPUT_BYTES} bytes each, JSON (a parse error is one line
 * with its position), and unwrapped when they are what the AWS CLI prints:
 * `aws iot get-policy` (the document is the JSON string `policyDocument`, and
 * the policy's name `policyName`),
 * `aws iot describe-provisioning-template` (the string `templateBody`, with
 * the template's name, whether it is enabled, its type and its hook).
 *
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { parse, type ParseError } from "jsonc-parser";
import { lineAndColumn, tooDeepAt } from "../config/config_file.ts";
import { describeParseError } from "../config/template_parameters.ts";
import type { Finding, FindingSource } from "./findings.ts";

/**
 * Largest policy or template file lint reads. AWS's own limits are far
 * smaller (a template body of 10,240 characters, a policy document of 2,048
 * characters without white space); the cap leaves room for pretty-printed
 * JSON and the AWS CLI's wrapping.
 */
export const MAX_INPUT_BYTES = 65536;

/** Deepest nesting of objects and arrays lint reads (AWS's templates and policies nest under ten). */
export const MAX_INPUT_DEPTH = 32;

/** A document that was read, with what the AWS CLI said about it. */
export interface ReadDocument {
  document: unknown;
  /** The document's text: the file's, or the string the AWS CLI's output wraps (a template body as AWS has it). */
  text: string;
  /** `describe-provisioning-template`: the template's name, `enabled`, `type`, and whether it has a hook. */
  template?: { name?: string; enabled?: boolean; type?: string; hook: boolean };
  /** `get-policy`: the policy's name. */
  policyName?: string;
}

/** The string field of the AWS CLI's output that holds the document, per input. */
const WRAPPED: Record<FindingSource, string | undefined> = {
  "config": undefined,
  "claim-policy": "policyDocument",
  "policy": "policyDocument",
  "template": "templateBody",
  "rotation-template": "templateBody",
  "inventory": undefined,
};

/** The result of reading one input: the document, or the one finding that says why not. */
export type InputResult = { ok: true; read: ReadDocument } | { ok: false; finding: Finding };

/** Reads the file of a `--claim-policy`, `--template`, `--rotation-template`, `--policy` or `--inventory` flag. */
export function readInput(path: string, source: FindingSource): InputResult {
  const fail = (message: string, fix: string): InputResult => ({
    ok: false,
    finding: { severity: "error", source, file: path, message, fix },
  });
  const text = readCapped(path);
  if (typeof text !== "string") return fail(text.problem, text.fix);
  const data = parseJson(text);
  if (typeof data === "string") {
    return fail(
      data,
      "give the policy or template document as AWS IoT shows it, or the AWS CLI's JSON output",
    );
  }
  const inner = WRAPPED[source];
  if (inner === undefined || !isObject(data.value) || typeof data.value[inner] !== "string") {
    return { ok: true, read: { document: data.value, text } };
  }
  const wrapped = data.value[inner] as string;
  const parsed = parseJson(wrapped);
  if (typeof parsed === "string") return fail(`has "${inner}" that ${parsed}`, `check ${inner}`);
  const read: ReadDocument = { document: parsed.value, text: wrapped };
  if (source === "template" || source === "rotation-template") {
    read.template = templateFacts(data.value);
  } else if (typeof data.value.policyName === "string") read.policyName = data.value.policyName;
  return { ok: true, read };
}

function templateFacts(data: Record<string, unknown>): ReadDocument["template"] {
  return {
    ...(typeof data.templateName === "string" ? { name: data.templateName } : {}),
    ...(typeof data.enabled === "boolean" ? { enabled: data.enabled } : {}),
    ...(typeof data.type === "string" ? { type: data.type } : {}),
    hook: isObject(data.preProvisioningHook),
  };
}

/** The file's text, or why it cannot be read (missing, a directory, over the cap). */
function readCapped(path: string): string | { problem: string; fix: string } {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    return {
      problem: `cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`,
      fix: "give the path of a readable file",
    };
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { problem: "is not a regular file", fix: "give a JSON file" };
    if (stat.size > MAX_INPUT_BYTES) {
      return {
        problem: `is ${stat.size} bytes; lint reads at most ${MAX_INPUT_BYTES}`,
        fix: "give the policy or template document itself",
      };
    }
    const buffer = new Uint8Array(MAX_INPUT_BYTES + 1);
    let length = 0;
    for (let n = 1; n > 0 && length <= MAX_INPUT_BYTES;) {
      n = readSync(fd, buffer, length, buffer.length - length, null);
      length += n;
    }
    if (length > MAX_INPUT_BYTES) {
      return {
        problem: `is over ${MAX_INPUT_BYTES} bytes; lint reads at most ${MAX_INPUT_BYTES}`,
        fix: "give the policy or template document itself",
      };
    }
    return new TextDecoder().decode(buffer.subarray(0, length));
  } finally {
    closeSync(fd);
  }
}

/** The value, or why the text is not JSON (its position, never its content: it may be a key). */
function parseJson(text: string): { value: unknown } | string {
  const deep = tooDeepAt(text, MAX_INPUT_DEPTH);
  if (deep >= 0) {
    const { line, column } = lineAndColumn(text, deep);
    return `is nested too deeply: line ${line}, column ${column} opens level ${
      MAX_INPUT_DEPTH + 1
    }; lint reads at most ${MAX_INPUT_DEPTH} levels`;
  }
  try {
    return { value: JSON.parse(text) };
  } catch {
    // jsonc-parser says where.
  }
  const errors: ParseError[] = [];
  parse(text, errors, {
    allowTrailingComma: false,
    disallowComments: true,
    allowEmptyContent: false,
  });
  if (errors.length === 0) return "is not valid JSON";
  const { line, column } = lineAndColumn(text, errors[0].offset);
  return `is not valid JSON: line ${line}, column ${column}: ${
    describeParseError(errors[0].error)
  }`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
