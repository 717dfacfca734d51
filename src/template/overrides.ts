// SPDX-License-Identifier: Apache-2.0
/**
 * OverrideSettings: what a template does to a thing that already exists
 * (AWS: DO_NOTHING by default, REPLACE, FAIL with ResourceConflictsException,
 * MERGE for attributes and thing groups).
 *
 * @module
 */
import { TemplateError } from "./expressions.ts";
import type { ThingResource } from "./mod.ts";

/** The registry's view of a thing, as far as a template can change it. */
export interface ExistingThing {
  thingName: string;
  attributes: Record<string, string>;
  thingTypeName?: string;
  thingGroups: string[];
  billingGroup?: string;
  /** Incremented when the template changes the thing. */
  version: number;
}

/**
 * Applies OverrideSettings to an existing thing (default DO_NOTHING); returns
 * a changed copy. Throws `ResourceConflictsException` (409) when a property
 * set to FAIL would change.
 */
export function mergeThing<T extends ExistingThing>(existing: T, wanted: ThingResource): T {
  const next: T = structuredClone(existing);
  const action = (property: string) => wanted.overrides[property] ?? "DO_NOTHING";
  const failIf = (property: string, differs: boolean) => {
    if (differs) {
      throw new TemplateError(
        "ResourceConflictsException",
        `Thing ${existing.thingName} exists and its ${property} differs; the template's OverrideSettings say FAIL.`,
        409,
      );
    }
  };
  if (wanted.attributes !== undefined) {
    switch (action("AttributePayload")) {
      case "REPLACE":
        next.attributes = { ...wanted.attributes };
        break;
      case "MERGE":
        next.attributes = { ...existing.attributes, ...wanted.attributes };
        break;
      case "FAIL":
        failIf("AttributePayload", !sameRecord(existing.attributes, wanted.attributes));
    }
  }
  if (wanted.thingGroups !== undefined) {
    const groups = [...new Set(wanted.thingGroups)];
    switch (action("ThingGroups")) {
      case "REPLACE":
        next.thingGroups = groups;
        break;
      case "MERGE":
        next.thingGroups = [...new Set([...existing.thingGroups, ...groups])];
        break;
      case "FAIL":
        failIf(
          "ThingGroups",
          groups.sort().join("\n") !== [...existing.thingGroups].sort().join("\n"),
        );
    }
  }
  if (wanted.thingTypeName !== undefined) {
    switch (action("ThingTypeName")) {
      case "REPLACE":
        next.thingTypeName = wanted.thingTypeName;
        break;
      case "FAIL":
        failIf("ThingTypeName", existing.thingTypeName !== wanted.thingTypeName);
    }
  }
  if (JSON.stringify(next) !== JSON.stringify(existing)) next.version++;
  return next;
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
