// SPDX-License-Identifier: Apache-2.0
/**
 * The generic reader: reads every setting of the table from the flags and
 * the config file (the flag wins), checks it against its type and its row's
 * check, and reports each problem once, naming the flag or the key and file.
 *
 * @module
 */
import { expandPath } from "./paths.ts";
import { describe, type LoadContext, orList } from "./problems.ts";
import type { Entry, Setting, ValueType } from "./schema.ts";
import { setting } from "./table.ts";
import { parseTemplateParameters } from "./template_parameters.ts";

/** Where values come from: the parsed flags and the config file's JSON. */
export interface SettingSources {
  /** Flag → value ("" for a flag without value). */
  flags: ReadonlyMap<string, string>;
  /** The config file's top-level object ({} without a file). */
  json: Record<string, unknown>;
  /** The config file's path, for messages. */
  configFile?: string;
}

/** A value as found, before any check. */
interface Found {
  value: unknown;
  origin: string;
  /** True when it came from a flag (flags are strings; `true|false` already checked). */
  cli: boolean;
}

type NumberType = Extract<ValueType, { kind: "number" }>;
type ChoiceType = Extract<ValueType, { kind: "choice" }>;

/** The settings of one run, read and type-checked; problems go to the load's context. */
export class SettingValues {
  readonly #sources: SettingSources;
  readonly #context: LoadContext;
  readonly #entries = new Map<string, Entry<unknown> | undefined>();

  /** Reads every setting fleetprov uses (in table order, so problems come in that order). */
  constructor(rows: readonly Setting[], sources: SettingSources, context: LoadContext) {
    this.#sources = sources;
    this.#context = context;
    for (const row of rows) {
      if (row.ignored || row.type.kind === "file" || row.key === undefined) continue;
      this.#entries.set(row.key, this.#read(row));
    }
  }

  /** The value of a setting with where it came from; undefined when absent or not valid. */
  entry<T = string>(key: string): Entry<T> | undefined {
    if (!this.#entries.has(key)) setting(key); // throws for a key the table lacks
    return this.#entries.get(key) as Entry<T> | undefined;
  }

  /** The value of a setting, else its default. */
  value<T = string>(key: string): T | undefined {
    return (this.entry<T>(key)?.value ?? setting(key).default) as T | undefined;
  }

  /** True when the flag or the config file gives the setting (valid or not). */
  given(key: string): boolean {
    return this.#find(setting(key)) !== undefined;
  }

  /** Where a given setting came from (`--generate-key`, `"…" in FILE`). */
  origin(key: string): string {
    return this.#find(setting(key))!.origin;
  }

  #find(row: Setting): Found | undefined {
    const { flags, json, configFile } = this.#sources;
    if (row.flag !== undefined && flags.has(row.flag)) {
      return { value: flags.get(row.flag), origin: row.flag, cli: true };
    }
    if (row.key === undefined) return undefined;
    let node: unknown = json;
    for (const part of row.key.split(".")) {
      if (typeof node !== "object" || node === null || Array.isArray(node)) return undefined;
      node = (node as Record<string, unknown>)[part];
    }
    return node === undefined
      ? undefined
      : { value: node, origin: `"${row.key}" in ${configFile}`, cli: false };
  }

  #read(row: Setting): Entry<unknown> | undefined {
    const found = this.#find(row);
    if (!found) return undefined;
    const type = row.type;
    switch (type.kind) {
      case "string":
        return this.#checked(row, this.#string(found, row.secret));
      case "path":
        return this.#path(found);
      case "boolean":
        return this.#boolean(found);
      case "number":
        return this.#number(found, type);
      case "choice":
        return this.#choice(found, type);
      case "parameters":
        return this.#parameters(found);
      default:
        throw new Error(`Setting ${row.key} has type ${type.kind}, which the reader cannot read.`);
    }
  }

  #checked(row: Setting, entry: Entry<string> | undefined): Entry<string> | undefined {
    const problem = entry && row.check?.(entry);
    if (problem) this.#context.problems.error(problem);
    return entry;
  }

  #string(found: Found, secret = false): Entry<string> | undefined {
    const problems = this.#context.problems;
    if (typeof found.value !== "string") {
      problems.error(
        `${found.origin} is ${
          secret ? `a ${typeof found.value} (value not shown)` : describe(found.value)
        }; expected a string.`,
      );
      return undefined;
    }
    if (found.value === "") {
      if (found.cli) {
        problems.error(`${found.origin} is empty; give a value or leave the flag out.`);
      } else problems.warn(`${found.origin} is empty; ignored.`);
      return undefined;
    }
    return { value: found.value, origin: found.origin };
  }

  #path(found: Found): Entry<string> | undefined {
    const entry = this.#string(found);
    if (!entry) return undefined;
    const expanded = expandPath(entry.value, this.#context.expand);
    if (!expanded.ok) {
      this.#context.problems.error(
        `${entry.origin} is ${describe(entry.value)}: it ${expanded.reason}.`,
      );
      return undefined;
    }
    return { value: expanded.path, origin: entry.origin };
  }

  #boolean(found: Found): Entry<boolean> | undefined {
    if (found.cli) return { value: found.value === "true", origin: found.origin };
    if (typeof found.value !== "boolean") {
      this.#context.problems.error(
        `${found.origin} is ${describe(found.value)}; expected true or false.`,
      );
      return undefined;
    }
    return { value: found.value, origin: found.origin };
  }

  #number(found: Found, rule: NumberType): Entry<number> | undefined {
    let n = NaN;
    if (found.cli) {
      const text = found.value as string;
      if (/^\d+(\.\d+)?$/.test(text)) n = Number(text);
    } else if (typeof found.value === "number") n = found.value;
    const ok = Number.isFinite(n) && (!rule.integer || Number.isInteger(n)) &&
      (rule.minExclusive ? n > rule.min : n >= rule.min) &&
      (rule.max === undefined || n <= rule.max);
    if (!ok) {
      this.#context.problems.error(
        `${found.origin} is ${describe(found.value)}; expected ${rule.expected}.`,
      );
      return undefined;
    }
    return { value: n, origin: found.origin };
  }

  #choice(found: Found, rule: ChoiceType): Entry<string> | undefined {
    const entry = this.#string(found);
    if (!entry) return undefined;
    const value = rule.normalize === "upper"
      ? entry.value.toUpperCase()
      : entry.value.toLowerCase();
    if (!rule.choices.includes(value)) {
      this.#context.problems.error(
        `${entry.origin} is ${describe(entry.value)}; expected ${orList(rule.choices)}.`,
      );
      return undefined;
    }
    return { value, origin: entry.origin };
  }

  #parameters(found: Found): Entry<Record<string, string>> | undefined {
    const problems = this.#context.problems;
    const value = found.value;
    if (
      !found.cli && typeof value !== "string" &&
      (typeof value !== "object" || value === null || Array.isArray(value))
    ) {
      problems.error(
        `${found.origin} is ${
          describe(value)
        }; expected a JSON object of strings, or a string holding one.`,
      );
      return undefined;
    }
    const parsed = parseTemplateParameters(value);
    if (parsed.ok) return { value: parsed.parameters, origin: found.origin };
    for (const p of parsed.problems) problems.error(`${found.origin} ${p}.`);
    return undefined;
  }
}
