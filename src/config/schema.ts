// SPDX-License-Identifier: Apache-2.0
/**
 * The shape of a row of the settings table (`table.ts`): what the generic
 * reader, `--help`, `--export-default-settings` and the ignored-keys list
 * need to know about one setting.
 *
 * @module
 */

/** How the generic reader reads a value, and what it accepts. */
export type ValueType =
  | { kind: "string" }
  /** A string holding a path; `~` and `$VAR` are expanded. */
  | { kind: "path" }
  /** `true` or `false` (JSON boolean; the flag takes `true|false`). */
  | { kind: "boolean" }
  | {
    kind: "number";
    integer?: boolean;
    min: number;
    max?: number;
    minExclusive?: boolean;
    /** What is expected, for the error message. */
    expected: string;
  }
  /** One of `choices`, compared after `normalize`. */
  | { kind: "choice"; choices: readonly string[]; normalize: "upper" | "lower" }
  /** Template parameters: a JSON object of strings, or a string holding one. */
  | { kind: "parameters" }
  /** A file with a format of its own (config file, proxy config), read by its loader. */
  | { kind: "file" }
  /** A flag taking no value (other Device Client features only). */
  | { kind: "switch" }
  /** Any value: settings of other Device Client features, ignored. */
  | { kind: "any" };

/** A value as read, with where it came from: `--endpoint` or `"endpoint" in /etc/x.conf`. */
export interface Entry<T> {
  value: T;
  origin: string;
}

/** A check of one value beyond its type: the problem as one sentence, or undefined. */
export type ValueCheck = (entry: Entry<string>) => string | undefined;

/** One setting. */
export interface Setting {
  /** Dotted config-file key (`fleet-provisioning.template-name`); absent for flag-only settings. */
  key?: string;
  /** Command-line flag; absent for settings only the config file holds. */
  flag?: string;
  /** Placeholder of the flag's value in `--help` (`true|false` for booleans). */
  value?: string;
  type: ValueType;
  /** The value when neither the flag nor the config file gives one. */
  default?: string | number | boolean;
  /** How `--help` shows the default when it is not the value itself. */
  shownDefault?: string;
  /** Written by `--export-default-settings`: a placeholder, or `true` for the default. */
  exported?: string | true;
  /** Never printed (type errors say "value not shown"). */
  secret?: true;
  /** The check of its value, from the validator file of its concern. */
  check?: ValueCheck;
  /** Device Client version that introduced it; "fleetprov" for fleetprov's extensions. */
  since: string;
  /** One line for `--help`. */
  help: string;
  /** A setting of another Device Client feature: accepted and ignored. */
  ignored?: true;
}
