// SPDX-License-Identifier: Apache-2.0
/**
 * What a template's thing may name, which AWS requires to exist before
 * RegisterThing: CreateThingGroup, CreateThingType, CreateBillingGroup
 * (idempotent for an existing name, as AWS answers a same-named create), and
 * their lists (ListThingGroups, ListThingTypes, ListBillingGroups: what
 * `fleetprov lint --inventory` reads). And DescribeEndpoint, for scripts that
 * ask where devices connect.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { CatalogKind, CatalogRecord } from "../registry/mod.ts";
import {
  type ApiContext,
  type ApiRequest,
  arn,
  epochSeconds,
  type Handler,
  page,
  queryInteger,
  SHAPES,
  string,
} from "./api.ts";
import { invalid } from "./errors.ts";

/** A stable id for a named resource (AWS's are UUIDs). */
function idOf(kind: string, name: string): string {
  const hex = createHash("sha256").update(`${kind}/${name}`).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20, 32)
  }`;
}

/** Creates (or finds) a catalog entry; returns its name. */
function create(
  context: ApiContext,
  kind: CatalogKind,
  name: string,
  description?: unknown,
): string {
  if (!context.registry.hasCatalog(kind, name)) {
    context.registry.putCatalog(kind, {
      name,
      createdAt: new Date().toISOString(),
      ...(typeof description === "string" ? { description } : {}),
    });
    context.log(
      `created ${kind.replace(/s$/, "").replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`)} ${name}`,
    );
  }
  return name;
}

function properties(body: Record<string, unknown>, key: string): Record<string, unknown> {
  const value = body[key];
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(`${key} must be an object.`);
  }
  return value as Record<string, unknown>;
}

const createThingGroup: Handler = (context, { params, body }) => {
  const name = string(params.thingGroupName, "thingGroupName", SHAPES.groupName);
  if (body.parentGroupName !== undefined) {
    throw invalid("The emulator's thing groups are flat: parentGroupName is not supported.");
  }
  const described = properties(body, "thingGroupProperties").thingGroupDescription;
  create(context, "thingGroups", name, described);
  return {
    thingGroupName: name,
    thingGroupArn: arn.thingGroup(name),
    thingGroupId: idOf("thinggroup", name),
  };
};

const createThingType: Handler = (context, { params, body }) => {
  const name = string(params.thingTypeName, "thingTypeName", SHAPES.groupName);
  const described = properties(body, "thingTypeProperties").thingTypeDescription;
  create(context, "thingTypes", name, described);
  return {
    thingTypeName: name,
    thingTypeArn: arn.thingType(name),
    thingTypeId: idOf("thingtype", name),
  };
};

const createBillingGroup: Handler = (context, { params, body }) => {
  const name = string(params.billingGroupName, "billingGroupName", SHAPES.groupName);
  const described = properties(body, "billingGroupProperties").billingGroupDescription;
  create(context, "billingGroups", name, described);
  return {
    billingGroupName: name,
    billingGroupArn: arn.billingGroup(name),
    billingGroupId: idOf("billinggroup", name),
  };
};

/** One page of a catalog, sorted by name, filtered by `namePrefixFilter` where AWS has it. */
function listed(
  context: ApiContext,
  kind: CatalogKind,
  request: ApiRequest,
  keep: (record: CatalogRecord) => boolean = () => true,
): { items: CatalogRecord[]; next?: string } {
  const prefix = request.query.get("namePrefixFilter") ?? "";
  const records = context.registry.catalog(kind)
    .filter((r) => r.name.startsWith(prefix) && keep(r))
    .sort((a, b) => a.name.localeCompare(b.name));
  return page(records, {
    token: request.query.get("nextToken"),
    size: queryInteger(request.query, "maxResults"),
    field: "nextToken",
  });
}

const listThingGroups: Handler = (context, request) => {
  if (request.query.get("parentGroup") !== null) {
    throw invalid("The emulator's thing groups are flat: parentGroup is not supported.");
  }
  const { items, next } = listed(context, "thingGroups", request);
  return {
    thingGroups: items.map((r) => ({ groupName: r.name, groupArn: arn.thingGroup(r.name) })),
    ...(next ? { nextToken: next } : {}),
  };
};

const listThingTypes: Handler = (context, request) => {
  const only = request.query.get("thingTypeName");
  // Filtered before paging: a page holds only the types asked for.
  const { items, next } = listed(
    context,
    "thingTypes",
    request,
    (r) => only === null || r.name === only,
  );
  return {
    thingTypes: items.map((r) => ({
      thingTypeName: r.name,
      thingTypeArn: arn.thingType(r.name),
      thingTypeProperties: r.description === undefined
        ? {}
        : { thingTypeDescription: r.description },
      thingTypeMetadata: { deprecated: false, creationDate: epochSeconds(r.createdAt) },
    })),
    ...(next ? { nextToken: next } : {}),
  };
};

const listBillingGroups: Handler = (context, request) => {
  const { items, next } = listed(context, "billingGroups", request);
  return {
    billingGroups: items.map((r) => ({ groupName: r.name, groupArn: arn.billingGroup(r.name) })),
    ...(next ? { nextToken: next } : {}),
  };
};

const describeEndpoint: Handler = (context) => ({ endpointAddress: context.endpoint.host });

/** The catalog operations and DescribeEndpoint by name. */
export const CATALOG_OPERATIONS: Record<string, Handler> = {
  CreateThingGroup: createThingGroup,
  CreateThingType: createThingType,
  CreateBillingGroup: createBillingGroup,
  ListThingGroups: listThingGroups,
  ListThingTypes: listThingTypes,
  ListBillingGroups: listBillingGroups,
  DescribeEndpoint: describeEndpoint,
};
