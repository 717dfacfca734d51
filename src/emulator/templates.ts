// SPDX-License-Identifier: Apache-2.0
/**
 * Provisioning templates as the emulator keeps them: the checks a template
 * passes before it is stored (the template validator of `src/template/`, plus
 * the policy documents it carries, checked as the emulator evaluates them),
 * its record, and the templates created at start (the default one, and any
 * other a caller names).
 *
 * @module
 */
import { policyDocumentError } from "../policy/mod.ts";
import { checkTemplate, type TemplateFinding } from "../template/mod.ts";
import { parseHookTarget } from "./hooks/mod.ts";
import type { Registry, TemplateRecord } from "./registry/mod.ts";

/** The role ARN the templates created at start name (the emulator assumes no role). */
export const DEFAULT_ROLE_ARN = "arn:aws:iam::123456789012:role/FleetprovEmulatorProvisioning";

/** A template created at start: its body, and optionally a hook, a description, enabled. */
export interface TemplateDefinition {
  /** The template (a JSON value, or its text). */
  template: unknown;
  /** A hook target: `file:/path/to/command` or `http(s)://…`. */
  preProvisioningHook?: string;
  description?: string;
  /** Default true (a template given at start is meant to be used). */
  enabled?: boolean;
}

/** Every problem of a template: the validator's, its literal policy documents checked as CreatePolicy would. */
export function templateProblems(name: string, body: unknown): TemplateFinding[] {
  return checkTemplate({
    name,
    body,
    policyDocument: (document) => policyDocumentError(document, "The policy document"),
  });
}

/** Findings as one line: "path: message (fix)" joined by "; ". */
export function describeFindings(findings: TemplateFinding[]): string {
  return findings
    .map((f) => `${f.path}: ${f.message}${f.fix ? ` Fix: ${f.fix}` : ""}`)
    .join("; ");
}

/** Checks a template given at start; throws one sentence listing every problem. */
export function checkStartTemplate(name: string, definition: TemplateDefinition): void {
  const findings = templateProblems(name, definition.template);
  if (findings.length > 0) {
    throw new Error(
      `The provisioning template ${name} is not one AWS accepts: ${describeFindings(findings)}`,
    );
  }
  if (definition.preProvisioningHook !== undefined) parseHookTarget(definition.preProvisioningHook);
}

/** Stores the templates given at start (replacing same-named ones, keeping their creation date). */
export function installTemplates(
  registry: Registry,
  templates: Record<string, TemplateDefinition>,
): void {
  const now = new Date().toISOString();
  for (const [templateName, definition] of Object.entries(templates)) {
    const existing = registry.template(templateName);
    const body = definition.template;
    const record: TemplateRecord = {
      templateName,
      description: definition.description ?? existing?.description ?? "",
      templateBody: typeof body === "string" ? body : JSON.stringify(body),
      enabled: definition.enabled ?? true,
      provisioningRoleArn: existing?.provisioningRoleArn ?? DEFAULT_ROLE_ARN,
      type: "FLEET_PROVISIONING",
      creationDate: existing?.creationDate ?? now,
      lastModifiedDate: now,
      defaultVersionId: 1,
      ...(definition.preProvisioningHook === undefined
        ? {}
        : { preProvisioningHook: { targetArn: definition.preProvisioningHook } }),
    };
    registry.putTemplate(record);
  }
}
