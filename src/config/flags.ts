// SPDX-License-Identifier: Apache-2.0
/**
 * The command-line flags: the commands (help, version, export, dry run) and
 * the flags of the settings table (every Device Client flag, those of other
 * DC features accepted and ignored, and fleetprov's extensions), and a
 * strict parser (unknown flag, flag given twice, flag without value: fatal).
 *
 * @module
 */
import type { Setting } from "./schema.ts";
import { SETTINGS } from "./table.ts";
import { describe } from "./problems.ts";

/** One command-line flag. */
export interface FlagSpec {
  /** The flag, e.g. `--endpoint`. */
  flag: string;
  /** Placeholder of its value, or undefined for a flag that takes no value. */
  value?: string;
  /** The config-file key it overrides (dotted), if any. */
  key?: string;
  /** One-line description for `--help`. */
  help: string;
  /** Default, as shown by `--help`. */
  default?: string;
  /** A fleetprov extension (not a Device Client flag). */
  extension?: boolean;
  /** A flag of another Device Client feature: accepted and ignored. */
  foreign?: boolean;
  /** Handled before settings are loaded (help, version, export, dry run). */
  meta?: boolean;
  /** Only `true` or `false` are accepted. */
  boolean?: boolean;
}

/** Flags handled before settings are loaded: they are commands, not settings. */
const META_FLAGS: readonly FlagSpec[] = [
  { flag: "--help", help: "Print this help and exit.", meta: true },
  { flag: "--version", help: "Print the version and exit.", meta: true },
  {
    flag: "--export-default-settings",
    value: "FILE",
    help: "Write a Device Client style config file with the defaults to FILE and exit.",
    meta: true,
  },
  {
    flag: "--dry-run",
    help: "Same as the `check` subcommand: validate everything, connect nowhere.",
    meta: true,
    extension: true,
  },
];

/** The flag of a setting, as `--help` and the parser see it. */
function flagOf(row: Setting & { flag: string }): FlagSpec {
  const kind = row.type.kind;
  const shown = row.shownDefault ?? (row.default === undefined ? undefined : String(row.default));
  return {
    flag: row.flag,
    ...(kind === "boolean" ? { value: "true|false", boolean: true } : {}),
    ...(kind !== "boolean" && kind !== "switch" ? { value: row.value ?? "VALUE" } : {}),
    ...(row.key !== undefined && !row.ignored ? { key: row.key } : {}),
    help: row.help,
    ...(shown !== undefined ? { default: shown } : {}),
    ...(row.since === "fleetprov" ? { extension: true } : {}),
    ...(row.ignored ? { foreign: true } : {}),
  };
}

/** Every flag fleetprov accepts, in `--help` order: the commands, then the settings' flags. */
export function allFlags(): readonly FlagSpec[] {
  return [
    ...META_FLAGS,
    ...SETTINGS.filter((row): row is Setting & { flag: string } => row.flag !== undefined)
      .map(flagOf),
  ];
}

/**
 * The table's row of each flag, and the specs made from them as they are
 * looked up: a run only needs the few flags it was given.
 */
let rowsByFlag: Map<string, Setting & { flag: string }> | undefined;
const specs = new Map<string, FlagSpec>(META_FLAGS.map((spec) => [spec.flag, spec]));

/** Looks up a flag by name (`--endpoint`). */
export function flagSpec(flag: string): FlagSpec | undefined {
  const known = specs.get(flag);
  if (known) return known;
  rowsByFlag ??= new Map(
    SETTINGS.filter((row): row is Setting & { flag: string } => row.flag !== undefined)
      .map((row) => [row.flag, row]),
  );
  const row = rowsByFlag.get(flag);
  if (!row) return undefined;
  const spec = flagOf(row);
  specs.set(flag, spec);
  return spec;
}

/** Parsed command line. */
export interface ParsedFlags {
  /** Flag → value ("" for flags without value), flags of other features excluded. */
  values: Map<string, string>;
  /** Flags of other Device Client features that were given. */
  ignored: string[];
  /** One line per problem. */
  errors: string[];
}

/**
 * Parses `--flag value` (and `--flag=value`) pairs strictly: an unknown
 * flag, a flag given twice, a flag without its value, a stray argument and a
 * `--enable-…` value other than `true`/`false` are errors naming the flag.
 */
export function parseFlags(args: readonly string[]): ParsedFlags {
  const values = new Map<string, string>();
  const ignored: string[] = [];
  const errors: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("-")) {
      errors.push(
        `Unexpected argument ${JSON.stringify(arg)}: values must follow the flag they belong to.`,
      );
      continue;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = flagSpec(name);
    if (!spec) {
      errors.push(`Unknown flag ${name}; run fleetprov --help for the list of flags.`);
      if (eq < 0 && i + 1 < args.length && !args[i + 1].startsWith("-")) i++;
      continue;
    }
    if (seen.has(name)) {
      errors.push(`Flag ${name} is given more than once; give it once.`);
    }
    seen.add(name);
    let value = "";
    if (spec.value === undefined) {
      if (eq > 0) errors.push(`Flag ${name} takes no value, but was given ${arg.slice(eq)}.`);
    } else if (eq > 0) {
      value = arg.slice(eq + 1);
    } else if (i + 1 >= args.length || args[i + 1].startsWith("--")) {
      errors.push(`Flag ${name} needs a value: ${name} ${spec.value}.`);
      continue;
    } else {
      value = args[++i];
    }
    if (spec.boolean && value !== "true" && value !== "false") {
      errors.push(`Flag ${name} is ${describe(value)}; expected true or false.`);
      continue;
    }
    if (spec.foreign) {
      if (!ignored.includes(name)) ignored.push(name);
      continue;
    }
    if (!values.has(name)) values.set(name, value);
  }
  return { values, ignored, errors };
}
