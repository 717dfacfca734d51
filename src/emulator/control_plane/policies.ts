// SPDX-License-Identifier: Apache-2.0
/**
 * IoT policies: CreatePolicy (the document is checked as the emulator
 * evaluates it), GetPolicy, ListPolicies, and their attachment to
 * certificates: AttachPolicy, DetachPolicy, ListAttachedPolicies.
 *
 * @module
 */
import { checkPolicyDocument } from "../../policy/mod.ts";
import {
  type ApiContext,
  arn,
  certificateIdOfArn,
  epochSeconds,
  type Handler,
  page,
  queryBoolean,
  queryInteger,
  SHAPES,
  string,
} from "./api.ts";
import { alreadyExists, ApiError, invalid, notFound, shown } from "./errors.ts";

/** AWS's limit on CreatePolicy's policyDocument, in characters. */
const MAX_POLICY_DOCUMENT_CHARS = 404_600;

function malformed(message: string): ApiError {
  return new ApiError(400, "MalformedPolicyException", message);
}

function requirePolicy(context: ApiContext, name: string): void {
  if (!context.registry.hasPolicy(name)) {
    throw notFound(`Policy ${name} does not exist.`);
  }
}

/** The certificate id of an attachment target (the emulator attaches to certificates only). */
function targetCertificate(context: ApiContext, target: unknown): string {
  if (typeof target !== "string" || target === "") throw invalid("target is required.");
  const id = certificateIdOfArn(target);
  if (!id) {
    throw invalid(
      `Target ${
        shown(target)
      } is not a certificate ARN (arn:aws:iot:REGION:ACCOUNT:cert/ID): the emulator attaches policies to certificates only.`,
    );
  }
  if (!context.registry.peekCertificate(id)) {
    throw notFound(`The certificate ${id} does not exist.`);
  }
  return id;
}

const createPolicy: Handler = (context, request) => {
  const name = string(request.params.policyName, "policyName", SHAPES.policyName);
  const text = string(request.body.policyDocument, "policyDocument", {
    min: 0,
    max: MAX_POLICY_DOCUMENT_CHARS,
  });
  if (context.registry.hasPolicy(name)) {
    throw alreadyExists(`Policy ${name} already exists.`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw malformed(`The policy document is not valid JSON: ${(error as Error).message}.`);
  }
  try {
    checkPolicyDocument(document, `Policy ${name}`);
  } catch (error) {
    throw malformed((error as Error).message);
  }
  context.registry.putPolicy(name, document, text);
  return {
    policyName: name,
    policyArn: arn.policy(name),
    policyDocument: text,
    policyVersionId: "1",
  };
};

const getPolicy: Handler = (context, request) => {
  const name = string(request.params.policyName, "policyName", SHAPES.policyName);
  requirePolicy(context, name);
  const info = context.registry.policyInfo(name)!;
  const created = epochSeconds(info.createdAt);
  return {
    policyName: name,
    policyArn: arn.policy(name),
    policyDocument: info.text ?? JSON.stringify(context.registry.policy(name)),
    defaultVersionId: "1",
    creationDate: created,
    lastModifiedDate: created,
    generationId: info.createdAt,
  };
};

const listPolicies: Handler = (context, request) => {
  const ascending = queryBoolean(request.query, "ascendingOrder") ?? true;
  const names = context.registry.policyNames().sort();
  if (!ascending) names.reverse();
  const { items, next } = page(names, {
    token: request.query.get("marker"),
    size: queryInteger(request.query, "pageSize"),
    field: "marker",
  });
  return {
    policies: items.map((n) => ({ policyName: n, policyArn: arn.policy(n) })),
    ...(next ? { nextMarker: next } : {}),
  };
};

const attachPolicy: Handler = (context, request) => {
  const name = string(request.params.policyName, "policyName", SHAPES.policyName);
  requirePolicy(context, name);
  context.registry.attachPolicy(targetCertificate(context, request.body.target), name);
  return undefined;
};

const detachPolicy: Handler = (context, request) => {
  const name = string(request.params.policyName, "policyName", SHAPES.policyName);
  requirePolicy(context, name);
  context.registry.detachPolicy(targetCertificate(context, request.body.target), name);
  return undefined;
};

const listAttachedPolicies: Handler = (context, request) => {
  const id = targetCertificate(context, request.params.target);
  const { items, next } = page(context.registry.policiesOf(id), {
    token: request.query.get("marker"),
    size: queryInteger(request.query, "pageSize"),
    field: "marker",
  });
  return {
    policies: items.map((n) => ({ policyName: n, policyArn: arn.policy(n) })),
    ...(next ? { nextMarker: next } : {}),
  };
};

/** The policy operations by name. */
export const POLICY_OPERATIONS: Record<string, Handler> = {
  CreatePolicy: createPolicy,
  GetPolicy: getPolicy,
  ListPolicies: listPolicies,
  AttachPolicy: attachPolicy,
  DetachPolicy: detachPolicy,
  ListAttachedPolicies: listAttachedPolicies,
};
