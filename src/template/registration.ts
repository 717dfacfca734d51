// SPDX-License-Identifier: Apache-2.0
/**
 * What RegisterThing checks of an evaluated template before it changes
 * anything, as the emulator runs it and `fleetprov lint` predicts it: the
 * template is enabled; its certificate resource names the certificate being
 * registered; and the resources it names by name (policies, thing type,
 * billing group, thing groups) exist in the account. Pure: the caller says
 * what exists.
 *
 * @module
 */
import { TemplateError } from "./expressions.ts";
import type { TemplateResult } from "./mod.ts";
import { CERTIFICATE_ID_PARAMETER } from "./vocabulary.ts";

/**
 * RegisterThing on a disabled template: AWS documents no code for it; the
 * emulator answers 400 InvalidRequest, and lint predicts the same.
 */
export function disabledTemplateError(templateName: string): TemplateError {
  return new TemplateError(
    "InvalidRequest",
    `Provisioning template ${templateName} is disabled; enable it (aws iot update-provisioning-template --template-name ${templateName} --enabled).`,
  );
}

/** Throws the template's fault when its certificate resource cannot activate `certificateId`. */
export function checkRegistration(result: TemplateResult, certificateId: string): void {
  if (!result.certificate) {
    throw new TemplateError(
      "ResourceRegistrationFailure",
      "The template has no AWS::IoT::Certificate resource, so the new certificate cannot be activated.",
    );
  }
  if (result.certificate.certificateId !== certificateId) {
    throw new TemplateError(
      "ResourceRegistrationFailure",
      `The template's certificate resource names ${result.certificate.certificateId}, not the certificate being registered (${certificateId}); use {"Ref": "${CERTIFICATE_ID_PARAMETER}"}.`,
    );
  }
}

/** The kinds of account resources a template names (the emulator's registry has the same). */
export type ResourceKind = "policies" | "thingTypes" | "billingGroups" | "thingGroups";

/** A resource the template names, which must exist before RegisterThing. */
export interface RequiredResource {
  kind: ResourceKind;
  name: string;
  /** Where in the evaluated template: `PolicyName`, `ThingTypeName`, `BillingGroup`, `ThingGroups`. */
  property: string;
}

const WHAT: Record<ResourceKind, { what: string; create: string }> = {
  policies: { what: "Policy", create: "create-policy --policy-name" },
  thingTypes: { what: "Thing type", create: "create-thing-type --thing-type-name" },
  billingGroups: { what: "Billing group", create: "create-billing-group --billing-group-name" },
  thingGroups: { what: "Thing group", create: "create-thing-group --thing-group-name" },
};

/** Every resource the evaluated template names, in the order RegisterThing checks them. */
export function requiredResources(result: TemplateResult): RequiredResource[] {
  const out: RequiredResource[] = [];
  for (const policy of result.policies) {
    if ("policyName" in policy) {
      out.push({ kind: "policies", name: policy.policyName, property: "PolicyName" });
    }
  }
  const thing = result.thing;
  if (thing?.thingTypeName !== undefined) {
    out.push({ kind: "thingTypes", name: thing.thingTypeName, property: "ThingTypeName" });
  }
  if (thing?.billingGroup !== undefined) {
    out.push({ kind: "billingGroups", name: thing.billingGroup, property: "BillingGroup" });
  }
  for (const group of new Set(thing?.thingGroups ?? [])) {
    out.push({ kind: "thingGroups", name: group, property: "ThingGroups" });
  }
  return out;
}

/** "Thing group plant-7". */
export function resourceLabel(resource: Pick<RequiredResource, "kind" | "name">): string {
  return `${WHAT[resource.kind].what} ${resource.name}`;
}

/** The command that creates a resource (`aws iot create-thing-group --thing-group-name X`). */
export function createCommand(resource: Pick<RequiredResource, "kind" | "name">): string {
  return `aws iot ${WHAT[resource.kind].create} ${resource.name}`;
}

/** RegisterThing's rejection when a required resource does not exist. */
export function missingResourceError(resource: RequiredResource): TemplateError {
  return new TemplateError(
    "ResourceRegistrationFailure",
    `${resourceLabel(resource)} does not exist; create it first (${createCommand(resource)}).`,
  );
}
