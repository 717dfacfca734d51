// SPDX-License-Identifier: Apache-2.0
/**
 * Provisioning templates: CreateProvisioningTemplate (refused with every
 * problem AWS would refuse it for), DescribeProvisioningTemplate,
 * UpdateProvisioningTemplate, ListProvisioningTemplates,
 * DeleteProvisioningTemplate. A pre-provisioning hook's `targetArn` is a
 * `file:` command or an `http(s):` URL in place of a Lambda ARN.
 *
 * @module
 */
import { MAX_TARGET_CHARS, parseHookTarget } from "../hooks/mod.ts";
import type { HookRecord, TemplateRecord } from "../registry/mod.ts";
import { describeFindings, templateProblems } from "../templates.ts";
import {
  type ApiContext,
  arn,
  boolean,
  epochSeconds,
  type Handler,
  page,
  queryInteger,
  SHAPES,
  string,
} from "./api.ts";
import { alreadyExists, constraint, invalid, notFound } from "./errors.ts";

function requireTemplate(context: ApiContext, name: unknown): TemplateRecord {
  const templateName = string(name, "templateName", SHAPES.templateName);
  const record = context.registry.template(templateName);
  if (!record) throw notFound(`The provisioning template ${templateName} does not exist.`);
  return record;
}

/** A preProvisioningHook of a request: targetArn (file: or http:) and payloadVersion. */
function hookOf(context: ApiContext, value: unknown): HookRecord | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid("preProvisioningHook must be an object with targetArn.");
  }
  const { targetArn, payloadVersion } = value as Record<string, unknown>;
  const target = string(targetArn, "preProvisioningHook.targetArn", {
    min: 1,
    max: MAX_TARGET_CHARS,
  });
  let kind: string;
  try {
    kind = parseHookTarget(target).kind;
  } catch (error) {
    throw invalid((error as Error).message);
  }
  if (kind === "file" && !context.allowCommandHooks) {
    throw invalid(
      "A file: hook runs a command, and the control plane accepts any credentials: it takes file: targets only when the emulator was started with --allow-command-hooks (allowCommandHooks); an http(s): target needs nothing.",
    );
  }
  if (payloadVersion === undefined) return { targetArn: target };
  return {
    targetArn: target,
    payloadVersion: string(
      payloadVersion,
      "preProvisioningHook.payloadVersion",
      SHAPES.payloadVersion,
    ),
  };
}

function tagsOf(value: unknown): { Key: string; Value: string }[] | undefined {
  if (value === undefined) return undefined;
  const ok = Array.isArray(value) && value.length <= 50 &&
    value.every((t) =>
      typeof t?.Key === "string" && (t.Value === undefined || typeof t.Value === "string")
    );
  if (!ok) throw invalid("tags must be a list of at most 50 {Key, Value} strings.");
  return (value as { Key: string; Value?: string }[]).map((t) => ({
    Key: t.Key,
    Value: t.Value ?? "",
  }));
}

const createTemplate: Handler = (context, { body }) => {
  const templateName = string(body.templateName, "templateName", SHAPES.templateName);
  if (typeof body.templateBody !== "string") {
    throw constraint(
      "templateBody",
      body.templateBody,
      "Member must not be null and must be a string",
    );
  }
  const provisioningRoleArn = string(
    body.provisioningRoleArn,
    "provisioningRoleArn",
    SHAPES.roleArn,
  );
  const description = body.description === undefined
    ? ""
    : string(body.description, "description", SHAPES.description);
  if (body.type !== undefined && body.type !== "FLEET_PROVISIONING") {
    throw invalid(
      body.type === "JITP"
        ? "The emulator serves FLEET_PROVISIONING templates only, not JITP."
        : constraint(
          "type",
          body.type,
          "Member must satisfy enum value set: [FLEET_PROVISIONING, JITP]",
        ).message,
    );
  }
  const hook = hookOf(context, body.preProvisioningHook);
  const tags = tagsOf(body.tags);
  const enabled = boolean(body.enabled, "enabled") ?? false;
  if (context.registry.template(templateName)) {
    throw alreadyExists(`The provisioning template ${templateName} already exists.`);
  }
  const findings = templateProblems(templateName, body.templateBody);
  if (findings.length > 0) {
    throw invalid(`The template body is invalid: ${describeFindings(findings)}`);
  }
  const now = new Date().toISOString();
  context.registry.putTemplate({
    templateName,
    description,
    templateBody: body.templateBody,
    enabled,
    provisioningRoleArn,
    type: "FLEET_PROVISIONING",
    creationDate: now,
    lastModifiedDate: now,
    defaultVersionId: 1,
    ...(hook ? { preProvisioningHook: hook } : {}),
    ...(tags ? { tags } : {}),
  });
  context.log(`created provisioning template ${templateName}${enabled ? "" : " (disabled)"}`);
  return { templateArn: arn.template(templateName), templateName, defaultVersionId: 1 };
};

const describeTemplate: Handler = (context, request) => {
  const t = requireTemplate(context, request.params.templateName);
  return {
    templateArn: arn.template(t.templateName),
    templateName: t.templateName,
    description: t.description,
    creationDate: epochSeconds(t.creationDate),
    lastModifiedDate: epochSeconds(t.lastModifiedDate),
    defaultVersionId: t.defaultVersionId,
    templateBody: t.templateBody,
    enabled: t.enabled,
    provisioningRoleArn: t.provisioningRoleArn,
    ...(t.preProvisioningHook ? { preProvisioningHook: t.preProvisioningHook } : {}),
    type: t.type,
  };
};

const updateTemplate: Handler = (context, request) => {
  const record = requireTemplate(context, request.params.templateName);
  const { body } = request;
  const remove = boolean(body.removePreProvisioningHook, "removePreProvisioningHook") ?? false;
  if (remove && body.preProvisioningHook !== undefined) {
    throw invalid("Give preProvisioningHook or removePreProvisioningHook, not both.");
  }
  if (body.defaultVersionId !== undefined && body.defaultVersionId !== record.defaultVersionId) {
    throw notFound(
      `Version ${body.defaultVersionId} of provisioning template ${record.templateName} does not exist (the emulator keeps version 1).`,
    );
  }
  const next: TemplateRecord = { ...record, lastModifiedDate: new Date().toISOString() };
  if (body.description !== undefined) {
    next.description = string(body.description, "description", SHAPES.description);
  }
  const enabled = boolean(body.enabled, "enabled");
  if (enabled !== undefined) next.enabled = enabled;
  if (body.provisioningRoleArn !== undefined) {
    next.provisioningRoleArn = string(
      body.provisioningRoleArn,
      "provisioningRoleArn",
      SHAPES.roleArn,
    );
  }
  const hook = hookOf(context, body.preProvisioningHook);
  if (hook) next.preProvisioningHook = hook;
  if (remove) delete next.preProvisioningHook;
  context.registry.putTemplate(next);
  context.log(`updated provisioning template ${record.templateName}`);
  return undefined;
};

const listTemplates: Handler = (context, request) => {
  const templates = context.registry.templates()
    .sort((a, b) => a.templateName.localeCompare(b.templateName));
  const { items, next } = page(templates, {
    token: request.query.get("nextToken"),
    size: queryInteger(request.query, "maxResults"),
    field: "nextToken",
  });
  return {
    templates: items.map((t) => ({
      templateArn: arn.template(t.templateName),
      templateName: t.templateName,
      description: t.description,
      creationDate: epochSeconds(t.creationDate),
      lastModifiedDate: epochSeconds(t.lastModifiedDate),
      enabled: t.enabled,
      type: t.type,
    })),
    ...(next ? { nextToken: next } : {}),
  };
};

const deleteTemplate: Handler = (context, request) => {
  const record = requireTemplate(context, request.params.templateName);
  context.registry.deleteTemplate(record.templateName);
  context.log(`deleted provisioning template ${record.templateName}`);
  return {};
};

/** The provisioning template operations by name. */
export const TEMPLATE_OPERATIONS: Record<string, Handler> = {
  CreateProvisioningTemplate: createTemplate,
  DescribeProvisioningTemplate: describeTemplate,
  UpdateProvisioningTemplate: updateTemplate,
  ListProvisioningTemplates: listTemplates,
  DeleteProvisioningTemplate: deleteTemplate,
};
