// SPDX-License-Identifier: Apache-2.0
/**
 * Reading JSON config files with comments (JSONC), with parse errors
 * reported by line and column.
 *
 * @module
 */
import { readFileSync, statSync } from "node:fs";
import { createScanner, parse, type ParseError } from "jsonc-parser";
import { osCondition } from "../errors.ts";
import type { ProblemKind } from "./problems.ts";
import { describeParseError } from "./template_parameters.ts";

/**
 * Largest config file fleetprov reads. The Device Client refuses files over
 * 5000 bytes; fleetprov accepts more (comments make files longer) but refuses
 * sizes no config file has, so a wrong path cannot make it read a huge file.
 */
export const MAX_CONFIG_FILE_BYTES = 64 * 1024;

/**
 * Deepest nesting of objects and arrays a config file may have. The Device
 * Client's files nest three levels; the limit keeps a hostile file from
 * overflowing the (recursive) parser's stack.
 */
export const MAX_CONFIG_DEPTH = 32;

/** jsonc-parser's SyntaxKind values (a const enum its types cannot export as values). */
const OPEN_BRACE = 1;
const CLOSE_BRACE = 2;
const OPEN_BRACKET = 3;
const CLOSE_BRACKET = 4;
const EOF = 17;

/** The offset where nesting first passes `max` levels, or -1 (an iterative scan). */
export function tooDeepAt(text: string, max: number = MAX_CONFIG_DEPTH): number {
  const scanner = createScanner(text, true);
  let depth = 0;
  for (let token = scanner.scan(); token !== EOF; token = scanner.scan()) {
    if (token === OPEN_BRACE || token === OPEN_BRACKET) {
      if (++depth > max) return scanner.getTokenOffset();
    } else if (token === CLOSE_BRACE || token === CLOSE_BRACKET) {
      depth--;
    }
  }
  return -1;
}

/** A parsed JSON object, or the one line saying why there is none, and its kind. */
export type JsonFileResult =
  | { ok: true; data: Record<string, unknown> }
  | { ok: false; error: string; kind: ProblemKind };

/** The failure of a file that cannot be read: an OS condition (EACCES 77, EIO 74) or a config error. */
function unreadable(what: string, path: string, error: unknown): JsonFileResult {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") {
    return { ok: false, error: `${what} ${path} does not exist.`, kind: "config" };
  }
  const condition = osCondition(code);
  if (condition?.kind === "permission" || condition?.kind === "io-error") {
    return {
      ok: false,
      error: `${what} ${path} cannot be read: ${condition.what} (${code}); ${condition.advice}.`,
      kind: condition.kind,
    };
  }
  return { ok: false, error: `${what} ${path} cannot be read (${code}).`, kind: "config" };
}

/**
 * Reads a JSON (JSONC: comments and trailing commas allowed) file whose top
 * level must be an object. `what` names it in messages ("Config file"). A
 * file that cannot be read or parsed is one problem, one line: the first
 * parse error, with a count of the others.
 */
export function readJsoncFile(path: string, what: string): JsonFileResult {
  const fail = (error: string): JsonFileResult => ({ ok: false, error, kind: "config" });
  let size: number;
  try {
    const stats = statSync(path);
    if (!stats.isFile()) {
      return fail(
        `${what} ${path} is ${
          stats.isDirectory() ? "a directory" : "not a regular file"
        }; expected a file.`,
      );
    }
    size = stats.size;
  } catch (error) {
    return unreadable(what, path, error);
  }
  if (size > MAX_CONFIG_FILE_BYTES) {
    return fail(
      `${what} ${path} is ${size} bytes; config files larger than ${MAX_CONFIG_FILE_BYTES} bytes are refused.`,
    );
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    return unreadable(what, path, error);
  }
  const deep = tooDeepAt(text);
  if (deep >= 0) {
    const { line, column } = lineAndColumn(text, deep);
    return fail(
      `${what} ${path} is nested too deeply: line ${line}, column ${column} opens level ${
        MAX_CONFIG_DEPTH + 1
      }; config files nest at most ${MAX_CONFIG_DEPTH} levels.`,
    );
  }
  const { data, parseErrors } = parseJsonc(text);
  if (parseErrors.length > 0) {
    const { line, column } = lineAndColumn(text, parseErrors[0].offset);
    const more = parseErrors.length - 1;
    return fail(
      `${what} ${path} is not valid JSON: line ${line}, column ${column}: ${
        describeParseError(parseErrors[0].error)
      }${more > 0 ? ` (and ${more} more error${more === 1 ? "" : "s"} after it)` : ""}.`,
    );
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return fail(`${what} ${path} must hold a JSON object ({ ... }) at the top level.`);
  }
  return { ok: true, data: data as Record<string, unknown> };
}

/**
 * JSON with comments and trailing commas. Plain JSON, what most config files
 * are, goes through the runtime's JSON.parse (the same value, a hundred times
 * faster than the JSONC parser on a board); anything else, and every error,
 * through jsonc-parser.
 */
function parseJsonc(text: string): { data: unknown; parseErrors: ParseError[] } {
  try {
    return { data: JSON.parse(text), parseErrors: [] };
  } catch {
    // Comments, trailing commas or an error: the JSONC parser says which.
  }
  const parseErrors: ParseError[] = [];
  const data: unknown = parse(text, parseErrors, {
    allowTrailingComma: true,
    disallowComments: false,
    allowEmptyContent: false,
  });
  return { data, parseErrors };
}

/** 1-based line and column of a character offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === "\n") {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}
