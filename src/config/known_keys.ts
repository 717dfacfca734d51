// SPDX-License-Identifier: Apache-2.0
/**
 * Which keys of a config file fleetprov reads, which belong to other Device
 * Client features (ignored, listed once) and which are unknown (a warning),
 * all derived from the settings table.
 *
 * @module
 */
import { describe, type Problems } from "./problems.ts";
import { SETTINGS } from "./table.ts";

/** A key of a section: read by fleetprov (true) or of another feature (false). */
type Section = Map<string, boolean>;

const TOP_LEVEL = new Set<string>();
const SECTIONS = new Map<string, Section>();
for (const row of SETTINGS) {
  if (row.key === undefined) continue;
  const [first, ...rest] = row.key.split(".");
  if (rest.length === 0) {
    if (!row.ignored) TOP_LEVEL.add(first);
    continue;
  }
  if (!SECTIONS.has(first)) SECTIONS.set(first, new Map());
  SECTIONS.get(first)!.set(rest.join("."), !row.ignored);
}

/** Top-level keys whose whole section belongs to other Device Client features. */
export const FOREIGN_SECTIONS: readonly string[] = [...SECTIONS]
  .filter(([, keys]) => ![...keys.values()].some((own) => own))
  .map(([name]) => name);

/**
 * Sorts the keys of a config file: returns the keys of other features
 * (whole sections, or `section.key`), warns about unknown keys and the
 * `runtime-config` section, and reports a section that is not an object.
 */
export function inventoryKeys(
  json: Record<string, unknown>,
  where: { configFile?: string; runtimeConfigPath: string },
  problems: Problems,
): string[] {
  const inFile = (key: string) => `"${key}" in ${where.configFile}`;
  const ignored: string[] = [];
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(json)) {
    const section = SECTIONS.get(key);
    if (FOREIGN_SECTIONS.includes(key)) {
      ignored.push(key);
    } else if (key === "runtime-config") {
      problems.warn(
        `${
          inFile(key)
        } is ignored: fleetprov reads the runtime config only from ${where.runtimeConfigPath}.`,
      );
    } else if (section) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        problems.error(`${inFile(key)} is ${describe(value)}; expected an object ({ ... }).`);
        continue;
      }
      for (const sub of Object.keys(value)) {
        const own = section.get(sub);
        if (own === false) ignored.push(`${key}.${sub}`);
        else if (own === undefined) unknown.push(`${key}.${sub}`);
      }
    } else if (!TOP_LEVEL.has(key)) {
      unknown.push(key);
    }
  }
  warnUnknown(unknown, where.configFile, problems);
  return ignored;
}

/** Unknown keys named in one warning; this many at most, the rest counted. */
export const MAX_UNKNOWN_KEYS_NAMED = 10;

/** One warning for all the unknown keys of a file (one cause: keys fleetprov does not read). */
function warnUnknown(keys: string[], configFile: string | undefined, problems: Problems): void {
  if (keys.length === 0) return;
  const quote = (key: string) => JSON.stringify(key.length > 80 ? `${key.slice(0, 77)}...` : key);
  if (keys.length === 1) {
    problems.warn(`${quote(keys[0])} in ${configFile} is not a known key; ignored.`);
    return;
  }
  const named = keys.slice(0, MAX_UNKNOWN_KEYS_NAMED).map(quote).join(", ");
  const rest = keys.length - MAX_UNKNOWN_KEYS_NAMED;
  problems.warn(
    `${keys.length} keys in ${configFile} are not known keys; ignored: ${named}${
      rest > 0 ? ` and ${rest} more` : ""
    }.`,
  );
}
