// SPDX-License-Identifier: Apache-2.0
/**
 * Text a server sent, made safe to print: control characters escaped (no
 * forged log lines, no terminal escapes) and the length capped (no journal
 * flooding). A minimal version for MQTT 5 reason strings; the field-conditions
 * work brings the one sanitiser every server-provided string goes through.
 *
 * @module
 */

/** Longest server text printed, in characters (before escaping). */
export const MAX_SERVER_TEXT = 200;

/**
 * `text` with C0/C1 control characters, DEL and Unicode line/paragraph
 * separators escaped as `\xNN` / `\uNNNN`, cut to `max` characters with "…".
 */
export function sanitizeServerText(text: string, max: number = MAX_SERVER_TEXT): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  // deno-lint-ignore no-control-regex
  const escaped = cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
  return text.length > max ? `${escaped}…` : escaped;
}
