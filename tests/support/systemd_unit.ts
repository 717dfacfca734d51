// SPDX-License-Identifier: Apache-2.0
/**
 * Reading systemd unit files in tests.
 *
 * @module
 */

/** `[Section] Key=Value` lines of a unit file, keyed "Section.Key" (repeats joined by " "). */
export function parseUnit(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const at = line.indexOf("=");
    const key = `${section}.${line.slice(0, at)}`;
    const value = line.slice(at + 1);
    entries.set(key, entries.has(key) ? `${entries.get(key)} ${value}` : value);
  }
  return entries;
}
