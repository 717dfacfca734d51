// SPDX-License-Identifier: Apache-2.0
/** The settings table: one row per setting, and everything derived from it agrees with it. */
import { assert, assertEquals } from "./support/assert.ts";
import { SETTINGS } from "../src/config/table.ts";
import { allFlags } from "../src/config/flags.ts";
import { FOREIGN_SECTIONS } from "../src/config/known_keys.ts";
import { defaultSettingsJson } from "../src/config/default_settings.ts";
import { helpText } from "../src/commands/help.ts";

Deno.test("settings table: keys and flags are unique; every row says which version introduced it", () => {
  const keys = SETTINGS.flatMap((s) => s.key === undefined ? [] : [s.key]);
  const flags = SETTINGS.flatMap((s) => s.flag === undefined ? [] : [s.flag]);
  assertEquals(new Set(keys).size, keys.length);
  assertEquals(new Set(flags).size, flags.length);
  for (const row of SETTINGS) {
    assert(row.key !== undefined || row.flag !== undefined, JSON.stringify(row));
    assert(
      /^(\d+\.\d+(\.\d+)?|fleetprov)$/.test(row.since),
      `${row.key ?? row.flag}: ${row.since}`,
    );
    if (!row.ignored && row.flag !== undefined) assert(row.help !== "", `${row.flag} has help`);
  }
});

Deno.test("settings table: --help shows exactly the flags of the settings fleetprov reads", () => {
  const text = helpText();
  const shown = allFlags().filter((f) => !f.foreign && !f.meta).map((f) => f.flag);
  assertEquals(
    shown,
    SETTINGS.filter((s) => !s.ignored && s.flag !== undefined).map((s) => s.flag),
  );
  for (const flag of shown) assert(text.includes(`\n  ${flag}`), flag);
  for (const row of SETTINGS.filter((s) => s.ignored && s.flag)) {
    assert(!text.includes(`${row.flag} `), `${row.flag} is not in --help`);
  }
});

Deno.test("settings table: --export-default-settings writes every exported row and only those", () => {
  const exported = JSON.parse(defaultSettingsJson());
  const paths: string[] = [];
  const walk = (node: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(node)) {
      if (typeof v === "object" && v !== null) walk(v as Record<string, unknown>, `${prefix}${k}.`);
      else paths.push(`${prefix}${k}`);
    }
  };
  walk(exported, "");
  assertEquals(paths, SETTINGS.filter((s) => s.exported !== undefined).map((s) => s.key));
});

Deno.test("settings table: the sections of other Device Client features are ignored whole", () => {
  assertEquals([...FOREIGN_SECTIONS].sort(), [
    "config-shadow",
    "device-defender",
    "jobs",
    "sample-shadow",
    "samples",
    "sensor-publish",
    "tunneling",
  ]);
});
