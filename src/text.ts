// SPDX-License-Identifier: Apache-2.0
/**
 * Text that came from outside (the broker, the TLS peer, the network) made
 * safe to print: every control character escaped visibly, length capped with
 * a marker saying how much was cut. One function for every server-provided
 * string that reaches a log line, an error or a result line, so no answer can
 * forge a log line, move the cursor, reorder text or flood the journal.
 * This module imports nothing (protocol/ may use it).
 *
 * @module
 */

/** How many characters of one untrusted value are kept by default. */
export const UNTRUSTED_MAX_CHARS = 256;

/**
 * C0 controls, DEL, C1 controls, the Unicode line and paragraph separators,
 * the bidirectional embeddings, overrides and isolates, the directional marks
 * (LRM, RLM, ALM), the byte-order mark / zero-width no-break space, and lone
 * surrogates.
 */
const UNSAFE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** Options of {@linkcode untrusted}. */
export interface UntrustedOptions {
  /** Characters kept before the cut marker (default {@linkcode UNTRUSTED_MAX_CHARS}). */
  maxChars?: number;
}

/**
 * Makes an untrusted value printable on one line: control and bidi characters
 * become `\n`, `\r`, `\t`, `\xNN` or `\u{NNNN}`, a backslash becomes `\\`
 * (so an escape in the output is always ours), and anything over `maxChars`
 * characters is cut, with `…[N more characters]` saying how much. A
 * non-string is shown as JSON first.
 */
export function untrusted(value: unknown, options: UntrustedOptions = {}): string {
  const max = options.maxChars ?? UNTRUSTED_MAX_CHARS;
  let text = typeof value === "string" ? value : safeJson(value);
  let cut = 0;
  // Count code points, so the cut never splits a surrogate pair.
  if (text.length > max) {
    const points = Array.from(text);
    if (points.length > max) {
      cut = points.length - max;
      text = points.slice(0, max).join("");
    }
  }
  const escaped = text.replace(/\\/g, "\\\\").replace(UNSAFE, escapeChar);
  return cut > 0 ? `${escaped}…[${cut} more characters]` : escaped;
}

/** Escapes only the control and bidi characters of a whole line (no cap): a last line of defence. */
export function escapeControls(line: string): string {
  return line.replace(UNSAFE, escapeChar);
}

function escapeChar(char: string): string {
  const named = NAMED[char];
  if (named) return named;
  const code = char.charCodeAt(0);
  return code < 0x100
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u{${code.toString(16).padStart(4, "0")}}`;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
