// SPDX-License-Identifier: Apache-2.0
/**
 * AWS IoT policy evaluation as AWS documents it ("AWS IoT Core policies":
 * by default everything is denied, an Allow grants, an explicit Deny in any
 * policy wins over every Allow). Actions match case-insensitively with `*`
 * and `?`; resources are ARNs matched with `*` (any characters, `/` too) and
 * `?` (one character), where MQTT's `+` and `#` are plain characters ("AWS
 * IoT Core policy variables"); `iot:Subscribe` is checked against
 * `topicfilter/` ARNs, `iot:Publish` and `iot:Receive` against `topic/`,
 * `iot:Connect` against `client/` ("Action resources"). Pure.
 *
 * @module
 */
import { type ArnScope, type IotAction, resourceOf, splitArn } from "./arn.ts";
import { actionMatches, type ParsedPolicy, type Statement } from "./document.ts";
import { LITERAL, type PolicyVariables, substitute } from "./variables.ts";

/** One MQTT action on one name: a client id, a topic or a topic filter. */
export interface PolicyRequest {
  action: IotAction;
  name: string;
}

/** Who asks and where: the connection's variables and what is known of the account. */
export interface EvaluationContext {
  variables: PolicyVariables;
  scope?: ArnScope;
}

/** A statement of a policy, as messages name it. */
export interface StatementRef {
  policy: string;
  /** 1-based. */
  index: number;
  sid?: string;
}

/** The verdict on one request and the statement that decided it. */
export interface Decision {
  allowed: boolean;
  /** `topicfilter/NAME` (or `topic/`, `client/`): the resource the request was checked against. */
  resource: string;
  /** The explicit Deny that refused it. */
  deniedBy?: StatementRef;
  /** The first Allow that granted it. */
  allowedBy?: StatementRef;
}

/** Evaluates `request` against every statement of every policy. */
export function evaluate(
  policies: readonly ParsedPolicy[],
  request: PolicyRequest,
  context: EvaluationContext,
): Decision {
  const resource = resourceOf(request.action, request.name);
  let allowedBy: StatementRef | undefined;
  for (const policy of policies) {
    for (const statement of policy.statements) {
      if (!statementCovers(statement, { action: request.action, resource }, context)) continue;
      const ref = refOf(policy, statement);
      if (statement.effect === "Deny") return { allowed: false, resource, deniedBy: ref };
      if (!statement.conditional) allowedBy ??= ref;
    }
  }
  return allowedBy ? { allowed: true, resource, allowedBy } : { allowed: false, resource };
}

/** Names a statement. */
export function refOf(policy: ParsedPolicy, statement: Statement): StatementRef {
  return {
    policy: policy.name,
    index: statement.index,
    ...(statement.sid === undefined ? {} : { sid: statement.sid }),
  };
}

/** Whether a statement's actions and resources cover `action` on `resource` (its Effect aside). */
export function statementCovers(
  statement: Statement,
  request: { action: string; resource: string },
  context: EvaluationContext,
): boolean {
  const action = statement.actions.some((p) => actionMatches(p, request.action));
  if (action === statement.notAction) return false;
  const resource = statement.resources.some((p) => resourceMatches(p, request.resource, context));
  return resource !== statement.notResource;
}

/** Whether one resource pattern (policy variables substituted) matches `resource` in scope. */
export function resourceMatches(
  pattern: string,
  resource: string,
  context: EvaluationContext,
): boolean {
  if (pattern === "*") return true;
  const substituted = substitute(pattern, context.variables);
  if (substituted.unresolved !== undefined) return false;
  return arnMatches(substituted.text, resource, context.scope ?? {});
}

/** An ARN pattern against `arn:PARTITION:iot:REGION:ACCOUNT:resource`; unknown fields are not checked. */
export function arnMatches(pattern: string, resource: string, scope: ArnScope): boolean {
  const fields = splitArn(pattern);
  if (fields) {
    return (scope.partition === undefined || glob(fields.partition, scope.partition)) &&
      glob(fields.service, "iot") &&
      (scope.region === undefined || glob(fields.region, scope.region)) &&
      (scope.account === undefined || glob(fields.account, scope.account)) &&
      glob(fields.resource, resource);
  }
  // Fewer than six fields: a `*` spans colons ("arn:aws:iot:*"). Unknown fields take the pattern's own.
  if (!pattern.startsWith("arn:")) return false;
  const own = pattern.split(":");
  const field = (i: number, known: string | undefined, fallback: string) =>
    known ?? (own[i] !== undefined && !own[i].includes("*") ? literal(own[i]) : fallback);
  const candidate = `arn:${field(1, scope.partition, "aws")}:iot:${
    field(3, scope.region, "region")
  }:${field(4, scope.account, "account")}:${resource}`;
  return glob(pattern, candidate);
}

function literal(text: string): string {
  return text.replaceAll(LITERAL, "");
}

const globCache = new Map<string, RegExp>();

/** `*` any characters, `?` one; a character after {@linkcode LITERAL} is itself. Case-sensitive. */
export function glob(pattern: string, value: string): boolean {
  let regex = globCache.get(pattern);
  if (!regex) {
    let source = "";
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i];
      if (c === LITERAL) source += escape(pattern[++i] ?? "");
      else if (c === "*") source += ".*";
      else if (c === "?") source += ".";
      else source += escape(c);
    }
    regex = new RegExp(`^${source}$`, "s");
    if (globCache.size > 1000) globCache.clear();
    globCache.set(pattern, regex);
  }
  return regex.test(value);
}

function escape(c: string): string {
  return c.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}
