// SPDX-License-Identifier: Apache-2.0
/**
 * Path values of the config file and flags: `~` and `$VAR` / `${VAR}`
 * expansion, and refusal of the characters the Device Client refuses.
 *
 * @module
 */
import { resolve } from "node:path";

/** Characters the Device Client refuses in paths (it expands them with wordexp). */
export const FORBIDDEN_PATH_CHARACTERS = "|&;<>(){}";

/** Environment used for expansion. */
export type Environment = Record<string, string | undefined>;

/** Result of {@linkcode expandPath}: the absolute path, or why it cannot be used. */
export type ExpandedPath = { ok: true; path: string } | { ok: false; reason: string };

const VARIABLE = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/**
 * Expands a leading `~` (or `~/`) to `home`, `$VAR` and `${VAR}` from `env`,
 * and resolves a relative result against the working directory. Refuses the
 * characters `| & ; < > ( ) { }` (braces of `${VAR}` excepted), unset
 * variables and empty values.
 */
export function expandPath(
  value: string,
  options: { env: Environment; home: string },
): ExpandedPath {
  if (value === "") return { ok: false, reason: "is empty; expected a file path" };
  const withoutReferences = value.replace(VARIABLE, "");
  const bad = [...withoutReferences].filter((c) => FORBIDDEN_PATH_CHARACTERS.includes(c));
  if (bad.length > 0) {
    return {
      ok: false,
      reason: `contains ${
        [...new Set(bad)].map((c) => `'${c}'`).join(" ")
      }; paths may not contain any of | & ; < > ( ) { }`,
    };
  }
  const missing: string[] = [];
  let expanded = value.replace(VARIABLE, (_match, braced?: string, bare?: string) => {
    const name = (braced ?? bare) as string;
    const found = options.env[name];
    if (found === undefined) missing.push(name);
    return found ?? "";
  });
  if (missing.length > 0) {
    return {
      ok: false,
      reason: `uses ${missing.map((n) => `$${n}`).join(", ")}, which ${
        missing.length > 1 ? "are" : "is"
      } not set in the environment`,
    };
  }
  if (expanded === "~") expanded = options.home;
  else if (expanded.startsWith("~/")) expanded = options.home + expanded.slice(1);
  else if (expanded.startsWith("~")) {
    return { ok: false, reason: "uses ~user, which is not supported; write the full path" };
  }
  return { ok: true, path: resolve(expanded) };
}

/** Quotes a path for a shell command shown to the user (`chmod 600 '/a b'`). */
export function shellQuote(path: string): string {
  return /^[A-Za-z0-9_./@%+=:,-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}
