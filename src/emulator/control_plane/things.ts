// SPDX-License-Identifier: Apache-2.0
/**
 * Things and their principals: ListThings, DescribeThing,
 * ListThingPrincipals, AttachThingPrincipal, DetachThingPrincipal.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ThingRecord } from "../registry/mod.ts";
import {
  type ApiContext,
  type ApiRequest,
  type ApiResponse,
  arn,
  certificateIdOfArn,
  type Handler,
  page,
  queryBoolean,
  queryInteger,
  SHAPES,
  string,
} from "./api.ts";
import { invalid, notFound, shown } from "./errors.ts";

/** AWS's thingId is a UUID; the emulator's is the name's SHA-256 in that form. */
function thingId(name: string): string {
  const hex = createHash("sha256").update(name).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20, 32)
  }`;
}

function requireThing(context: ApiContext, request: ApiRequest): ThingRecord {
  const name = string(request.params.thingName, "thingName", SHAPES.thingName);
  const thing = context.registry.thing(name);
  if (!thing) throw notFound(`Thing ${name} cannot be found.`);
  return thing;
}

/** The certificate id of the `x-amzn-principal` header (a certificate ARN). */
function principalOf(request: ApiRequest): string {
  const header = request.headers["x-amzn-principal"];
  const principal = Array.isArray(header) ? header[0] : header;
  if (!principal) throw invalid("The principal (x-amzn-principal) is required.");
  const id = certificateIdOfArn(principal);
  if (!id) {
    throw invalid(
      `Principal ${
        shown(principal)
      } is not a certificate ARN (arn:aws:iot:REGION:ACCOUNT:cert/ID): the emulator's things have certificates as principals.`,
    );
  }
  return id;
}

const listThings: Handler = (context, request) => {
  const { query } = request;
  const attributeName = query.get("attributeName");
  const attributeValue = query.get("attributeValue");
  const thingTypeName = query.get("thingTypeName");
  const prefix = queryBoolean(query, "usePrefixAttributeValue") ?? false;
  if (attributeValue !== null && attributeName === null) {
    throw invalid("attributeValue needs attributeName.");
  }
  const things = context.registry.things()
    .filter((t) => thingTypeName === null || t.thingTypeName === thingTypeName)
    .filter((t) => {
      if (attributeName === null) return true;
      const value = t.attributes[attributeName];
      if (value === undefined) return false;
      if (attributeValue === null) return true;
      return prefix ? value.startsWith(attributeValue) : value === attributeValue;
    })
    .sort((a, b) => a.thingName.localeCompare(b.thingName));
  const { items, next } = page(things, {
    token: query.get("nextToken"),
    size: queryInteger(query, "maxResults"),
    field: "nextToken",
  });
  return {
    things: items.map((t) => ({
      thingName: t.thingName,
      ...(t.thingTypeName ? { thingTypeName: t.thingTypeName } : {}),
      thingArn: arn.thing(t.thingName),
      attributes: t.attributes,
      version: t.version,
    })),
    ...(next ? { nextToken: next } : {}),
  };
};

const describeThing: Handler = (context, request): ApiResponse => {
  const thing = requireThing(context, request);
  return {
    defaultClientId: thing.thingName,
    thingName: thing.thingName,
    thingId: thingId(thing.thingName),
    thingArn: arn.thing(thing.thingName),
    ...(thing.thingTypeName ? { thingTypeName: thing.thingTypeName } : {}),
    attributes: thing.attributes,
    version: thing.version,
    ...(thing.billingGroup ? { billingGroupName: thing.billingGroup } : {}),
  };
};

const listThingPrincipals: Handler = (context, request) => {
  const thing = requireThing(context, request);
  const { items, next } = page(thing.principals, {
    token: request.query.get("nextToken"),
    size: queryInteger(request.query, "maxResults"),
    field: "nextToken",
  });
  return { principals: items.map(arn.certificate), ...(next ? { nextToken: next } : {}) };
};

const attachThingPrincipal: Handler = (context, request) => {
  const thing = requireThing(context, request);
  const id = principalOf(request);
  if (!context.registry.peekCertificate(id)) throw notFound(`Certificate ${id} does not exist.`);
  context.registry.attachThing(id, thing.thingName);
  return {};
};

const detachThingPrincipal: Handler = (context, request) => {
  const thing = requireThing(context, request);
  context.registry.detachThing(principalOf(request), thing.thingName);
  return {};
};

/** The thing operations by name. */
export const THING_OPERATIONS: Record<string, Handler> = {
  ListThings: listThings,
  DescribeThing: describeThing,
  ListThingPrincipals: listThingPrincipals,
  AttachThingPrincipal: attachThingPrincipal,
  DetachThingPrincipal: detachThingPrincipal,
};
