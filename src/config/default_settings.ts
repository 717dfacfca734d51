// SPDX-License-Identifier: Apache-2.0
/**
 * The default settings as a Device Client style config file, for
 * `--export-default-settings`: every row of the settings table marked
 * `exported`, with its default or a placeholder to replace.
 *
 * @module
 */
import { SETTINGS } from "./table.ts";

/**
 * The default settings as a Device Client style config file (JSON), with
 * fleetprov's extension keys. Required values are placeholders to replace.
 */
export function defaultSettingsJson(): string {
  const config: Record<string, unknown> = {};
  for (const row of SETTINGS) {
    if (row.key === undefined || row.exported === undefined) continue;
    const parts = row.key.split(".");
    let node = config;
    for (const part of parts.slice(0, -1)) {
      node = (node[part] ??= {}) as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = row.exported === true ? row.default : row.exported;
  }
  return JSON.stringify(config, null, 4) + "\n";
}
