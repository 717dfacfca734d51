// SPDX-License-Identifier: Apache-2.0
/** The settings table: one row per setting, and everything derived from it agrees with it. */
import { assert, assertEquals } from "./support/assert.ts";
import { SETTINGS } from "../src/config/table.ts";
import { allFlags } from "../src/config/flags.ts";
import { FOREIGN_SECTIONS } from "../src/config/known_keys.ts";
import { defaultSettingsJson } from "../src/config/default_settings.ts";
import { helpText } from "../src/commands/help.ts";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./support/mod.ts";

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

/** Every `--flag` in `text`. */
function flagsIn(text: string): Set<string> {
  return new Set(text.match(/--[a-z0-9][a-z0-9-]*/g) ?? []);
}

const sorted = (set: Iterable<string>) => [...set].sort();

/** The README's configuration reference table, its flag column. */
function readmeTableFlags(readme: string): Set<string> {
  const start = readme.indexOf("| config key ");
  assert(start >= 0, "README has the configuration reference table");
  const rows = readme.slice(start).split("\n\n")[0].split("\n").slice(2);
  return flagsIn(rows.map((row) => row.split("|")[2] ?? "").join(" "));
}

Deno.test("settings table: --help, the README's reference table and the table name the same flags; ignored flags in none but the README's list", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  // What the user reads, parsed from the texts themselves: --help's "Flags:" section (the
  // commands' own flags, such as lint's, are in its usage lines) and the README's table.
  const text = helpText();
  const section = text.slice(text.indexOf("\nFlags:\n"), text.indexOf("\nExit codes:\n"));
  assert(section.length > 100, "--help has a Flags: section before its exit codes");
  const help = flagsIn(section);
  const table = readmeTableFlags(readme);
  // Two rows of the README's table are documented in --help's usage lines instead.
  const inUsage = ["--output", "--third-party-notices"];
  for (const flag of inUsage) assert(text.includes(flag), `--help mentions ${flag}`);
  assertEquals(sorted([...help, ...inUsage]), sorted(table), "--help and the README's table");
  // The settings table's read flags are exactly those of the texts, less the command flags.
  const read = SETTINGS.filter((s) => !s.ignored && s.flag !== undefined).map((s) => s.flag!);
  const commands = ["--help", "--version", "--dry-run", "--export-default-settings"];
  assertEquals(sorted([...read, ...commands]), sorted(help), "the settings table and --help");
  // The flags of other Device Client features: the README lists them; --help shows none.
  const list = /the flags (`--enable-jobs`[^.]*)\./.exec(readme.replace(/\n/g, " "));
  assert(list, "README lists the ignored flags");
  const ignored = SETTINGS.filter((s) => s.ignored && s.flag !== undefined).map((s) => s.flag!);
  assertEquals(sorted(flagsIn(list[1])), sorted(ignored), "the README's ignored flags");
  for (const flag of ignored) assert(!flagsIn(text).has(flag), `${flag} is not in --help`);
  // Each read flag is also parsed as such (not as a foreign flag).
  const parsed = allFlags().filter((f) => !f.foreign && !f.meta).map((f) => f.flag);
  assertEquals(sorted(parsed), sorted(read));
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
