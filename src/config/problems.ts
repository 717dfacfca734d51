// SPDX-License-Identifier: Apache-2.0
/**
 * What one load of the settings collects on its way (every error and
 * warning, so all are reported at once) and what its checks share.
 *
 * @module
 */
import type { Environment } from "./paths.ts";
import type { Finding, Identity } from "./permissions.ts";

/**
 * What an error is about: "config" (exit 78), "permission" (mode, owner,
 * EACCES: 77 when every error is one), "io-error" (the storage: 74).
 */
export type ProblemKind = Finding["kind"] | "io-error";

/** Most warnings one load prints; the rest are counted on one more line. */
export const MAX_WARNINGS = 20;

/** Collects every error and warning of one load. */
export class Problems {
  /** Errors, with their kind, which decides the exit code. */
  readonly errors: { kind: ProblemKind; message: string }[] = [];
  /** Non-fatal findings: at most {@linkcode MAX_WARNINGS}, then one line counting the rest. */
  readonly warnings: string[] = [];
  #dropped = 0;

  /** Adds an error line. */
  error(message: string, kind: ProblemKind = "config"): void {
    this.errors.push({ kind, message });
  }

  /** Adds a warning line (past the cap, counts it on the last line instead). */
  warn(message: string): void {
    if (this.warnings.length < MAX_WARNINGS) {
      this.warnings.push(message);
      return;
    }
    this.#dropped++;
    this.warnings[MAX_WARNINGS] = `... and ${this.#dropped} more warning${
      this.#dropped === 1 ? "" : "s"
    } like those above.`;
  }

  /** Adds permission findings; returns true when none is fatal. */
  findings(findings: Finding[]): boolean {
    let ok = true;
    for (const f of findings) {
      if (f.severity === "fatal") {
        this.error(f.message, f.kind);
        ok = false;
      } else this.warn(f.message);
    }
    return ok;
  }
}

/** What the checks of one load share. */
export interface LoadContext {
  problems: Problems;
  /** The identity file ownership is checked against. */
  identity: Identity;
  /** Directories already checked, so each is reported once. */
  checkedDirs: Set<string>;
  /** Environment and home for `~` and `$VAR` expansion. */
  expand: { env: Environment; home: string };
  /** A board's config loaded elsewhere (lint): the board's files are not checked here. */
  offline?: boolean;
}

/** A path setting: the expanded path and where it came from. */
export interface Located {
  path: string;
  origin: string;
}

/** A short description of a value for messages: JSON for scalars (capped), the type otherwise. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}..."` : text;
}

/** "a", "a or b", "a, b or c". */
export function orList(items: readonly string[]): string {
  return items.length === 1
    ? items[0]
    : `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`;
}
