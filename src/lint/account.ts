// SPDX-License-Identifier: Apache-2.0
/**
 * What lint knows of the AWS account, which it never calls: only what it is
 * given. `--policy` gives a policy the template attaches by name, with its
 * document (what `aws iot get-policy` prints, or `NAME=FILE` with the bare
 * document): it exists, and lint checks the new certificate's proof
 * connection against it. `--inventory` gives what `aws iot list-policies`,
 * `list-thing-groups`, `list-thing-types` or `list-billing-groups` prints:
 * the names of that kind that exist. A name of a kind lint has a listing of
 * exists or not; any other is unknown, and lint says it could not check it.
 *
 * @module
 */
import { existsSync } from "node:fs";
import type { ResourceKind } from "../template/mod.ts";
import type { Finding } from "./findings.ts";
import { readInput } from "./inputs.ts";

/** The account as lint was told of it. */
export interface AccountView {
  /** Policies given with `--policy`, by name: their file and document. */
  policies: Map<string, { file: string; document: unknown }>;
  /** The names of each kind an `--inventory` listing gave. */
  listed: Partial<Record<ResourceKind, Set<string>>>;
}

/** Whether a named resource exists, as far as lint was told. */
export type Existence = "exists" | "missing" | "unknown";

/** How the AWS CLI prints each listing: its list field and the name field of an item. */
const LISTINGS: { kind: ResourceKind; list: string; name: string; command: string }[] = [
  { kind: "policies", list: "policies", name: "policyName", command: "list-policies" },
  { kind: "thingGroups", list: "thingGroups", name: "groupName", command: "list-thing-groups" },
  { kind: "thingTypes", list: "thingTypes", name: "thingTypeName", command: "list-thing-types" },
  {
    kind: "billingGroups",
    list: "billingGroups",
    name: "groupName",
    command: "list-billing-groups",
  },
];

/** The listing command of a kind: `aws iot list-thing-groups`. */
export function listingCommand(kind: ResourceKind): string {
  return `aws iot ${LISTINGS.find((l) => l.kind === kind)!.command}`;
}

/** Whether `name` of `kind` exists in the account lint was told of. */
export function existence(view: AccountView, kind: ResourceKind, name: string): Existence {
  if (kind === "policies" && view.policies.has(name)) return "exists";
  const listed = view.listed[kind];
  if (listed === undefined) return "unknown";
  return listed.has(name) ? "exists" : "missing";
}

/** Reads the `--policy` and `--inventory` files; a file lint cannot use is a finding. */
export function readAccount(
  given: { policies: readonly string[]; inventories: readonly string[] },
): { view: AccountView; findings: Finding[] } {
  const view: AccountView = { policies: new Map(), listed: {} };
  const findings: Finding[] = [];
  for (const argument of given.policies) {
    const policy = readPolicyArgument(argument);
    if ("finding" in policy) findings.push(policy.finding);
    else view.policies.set(policy.name, { file: policy.file, document: policy.document });
  }
  for (const file of given.inventories) {
    const finding = readListing(file, view);
    if (finding) findings.push(finding);
  }
  return { view, findings };
}

/** `FILE` (get-policy's output names the policy) or `NAME=FILE` (a bare document). */
function readPolicyArgument(
  argument: string,
): { name: string; file: string; document: unknown } | { finding: Finding } {
  const split = argument.indexOf("=");
  const named = !existsSync(argument) && split > 0;
  const file = named ? argument.slice(split + 1) : argument;
  const read = readInput(file, "policy");
  if (!read.ok) return { finding: read.finding };
  const name = named ? argument.slice(0, split) : read.read.policyName;
  if (name === undefined || !/^[\w+=,.@-]{1,128}$/.test(name)) {
    return {
      finding: {
        severity: "error",
        source: "policy",
        file,
        message: name === undefined
          ? "is a policy document without its name, which the template's PolicyName refers to"
          : `names the policy ${JSON.stringify(name.slice(0, 40))}, which is not a policy name`,
        fix:
          "give what aws iot get-policy --policy-name NAME prints, or --policy NAME=FILE with the document",
      },
    };
  }
  return { name, file, document: read.read.document };
}

/** One listing into the view; a file that is none of them is a finding. */
function readListing(file: string, view: AccountView): Finding | undefined {
  const read = readInput(file, "inventory");
  if (!read.ok) return read.finding;
  const data = read.read.document;
  const record = typeof data === "object" && data !== null && !Array.isArray(data)
    ? data as Record<string, unknown>
    : {};
  const listing = LISTINGS.find((l) => Array.isArray(record[l.list]));
  const items = listing ? record[listing.list] as unknown[] : [];
  const names = items.map((item) =>
    typeof item === "object" && item !== null
      ? (item as Record<string, unknown>)[listing!.name]
      : undefined
  );
  if (!listing || names.some((n) => typeof n !== "string")) {
    return {
      severity: "error",
      source: "inventory",
      file,
      message: `is not a listing lint reads: it takes what ${
        LISTINGS.map((l) => `aws iot ${l.command}`).join(", ")
      } print`,
      fix: "give the AWS CLI's JSON output (--output json) of one of them",
    };
  }
  const set = view.listed[listing.kind] ?? new Set<string>();
  for (const name of names as string[]) set.add(name);
  view.listed[listing.kind] = set;
  return undefined;
}
