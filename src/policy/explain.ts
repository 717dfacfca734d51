// SPDX-License-Identifier: Apache-2.0
/**
 * Why a request is denied, in words a person can act on, and the fix: the
 * explicit Deny that refuses it, or the Allow that nearly grants it (the
 * wrong resource type, MQTT wildcards, a variable a claim connection cannot
 * resolve, another region or account, the action missing, a misspelt
 * action, a Condition), or that no statement allows it; and the exact
 * statement that would allow it.
 *
 * @module
 */
import {
  type AllowStatement,
  allowStatement,
  arnOf,
  type ArnScope,
  RESOURCE_TYPE,
  resourceOf,
} from "./arn.ts";
import { actionMatches, nearestAction, type ParsedPolicy, type Statement } from "./document.ts";
import {
  evaluate,
  type EvaluationContext,
  glob,
  type PolicyRequest,
  refOf,
  resourceMatches,
  statementCovers,
  type StatementRef,
} from "./evaluate.ts";
import { substitute, variablesIn } from "./variables.ts";

export { type AllowStatement, allowStatement };

/** Why a request is denied and what fixes it. */
export interface Explanation {
  /** A sentence without the final period: "statement 2 … grants … but …". */
  because: string;
  /** The statement it is about (the Deny, or the near miss), if any. */
  statement?: StatementRef;
  /** The fix in words: "add {…}" or "narrow statement 3 …". */
  fix: string;
  /** The statement to add (undefined when a Deny must be narrowed instead). */
  add?: AllowStatement;
}

/** Another name the caller knows the request is often confused with, and why. */
export interface Alternative {
  name: string;
  /** What allowing that name instead means, e.g. "those are the JSON topics, but the device sends CBOR". */
  why: string;
}

/**
 * The two statements that let a client publish, receive and subscribe on
 * `topics`: iot:Publish and iot:Receive on their `topic/` ARNs, iot:Subscribe
 * on their `topicfilter/` ARNs. `arnPrefix` is `arn:aws:iot:REGION:ACCOUNT:`.
 */
export function topicStatements(
  arnPrefix: string,
  topics: readonly string[],
): [TopicStatement, TopicStatement] {
  return [
    {
      Effect: "Allow",
      Action: ["iot:Publish", "iot:Receive"],
      Resource: topics.map((t) => `${arnPrefix}topic/${t}`),
    },
    {
      Effect: "Allow",
      Action: "iot:Subscribe",
      Resource: topics.map((t) => `${arnPrefix}topicfilter/${t}`),
    },
  ];
}

/** A statement of {@linkcode topicStatements}. */
export interface TopicStatement {
  Effect: "Allow";
  Action: string | string[];
  Resource: string[];
}

/** "statement 3 (Sid "X") of the claim policy". */
export function describeRef(ref: StatementRef): string {
  return `statement ${ref.index}${
    ref.sid ? ` (Sid ${JSON.stringify(ref.sid)})` : ""
  } of ${ref.policy}`;
}

/**
 * Explains a denied request; `alternatives` are names whose being allowed
 * instead tells the likely mistake. The fix statement uses `fixScope`
 * (default: the evaluation's scope).
 */
export function explainDenial(
  policies: readonly ParsedPolicy[],
  request: PolicyRequest,
  options: { context: EvaluationContext; alternatives?: Alternative[]; fixScope?: ArnScope },
): Explanation {
  const { context } = options;
  const decision = evaluate(policies, request, context);
  const arn = arnOf(decision.resource, options.fixScope ?? context.scope);
  if (decision.deniedBy) {
    return {
      because: `${
        describeRef(decision.deniedBy)
      } denies it, and an explicit Deny wins over any Allow`,
      statement: decision.deniedBy,
      fix: `narrow ${describeRef(decision.deniedBy)} so it does not cover ${arn}`,
    };
  }
  const add = allowStatement(request.action, [request.name], options.fixScope ?? context.scope);
  const fix = `add ${JSON.stringify(add)}`;
  const near = nearestMiss(policies, request, options);
  return near
    ? { because: near.because, statement: near.statement, fix, add }
    : { because: `no statement allows ${request.action} on ${arn}`, fix, add };
}

/**
 * The Allow that nearly grants the request, most telling first: one whose
 * actions cover it (a Condition, a resource that nearly matches, an
 * alternative name), then a misspelt action, then one that names the
 * resource (not merely `*`) for other actions.
 */
function nearestMiss(
  policies: readonly ParsedPolicy[],
  request: PolicyRequest,
  options: { context: EvaluationContext; alternatives?: Alternative[] },
): { because: string; statement: StatementRef } | undefined {
  for (const phase of [coveredNearMiss, typoNearMiss, otherActionNearMiss]) {
    for (const policy of policies) {
      for (const statement of policy.statements) {
        if (statement.effect !== "Allow") continue;
        const why = phase(statement, request, options);
        if (why) {
          const sid = statement.sid === undefined ? "" : ` (Sid ${JSON.stringify(statement.sid)})`;
          return {
            because: `statement ${statement.index}${sid} ${why}`,
            statement: refOf(policy, statement),
          };
        }
      }
    }
  }
  return undefined;
}

type NearMiss = (
  statement: Statement,
  request: PolicyRequest,
  options: { context: EvaluationContext; alternatives?: Alternative[] },
) => string | undefined;

function coversAction(statement: Statement, action: string): boolean {
  return statement.actions.some((p) => actionMatches(p, action)) !== statement.notAction;
}

/** A statement whose actions cover the request: a Condition, a near resource, an alternative. */
const coveredNearMiss: NearMiss = (statement, request, options) => {
  const { context } = options;
  const { action, name } = request;
  if (!coversAction(statement, action)) return undefined;
  const resource = resourceOf(action, name);
  const covers = (r: string) =>
    statementCovers({ ...statement, conditional: false }, { action, resource: r }, context);
  if (statement.conditional && covers(resource)) {
    return `would allow it but has a "Condition", which is not evaluated: an Allow with a Condition counts as granting nothing`;
  }
  if (statement.notResource) return undefined;
  const why = resourceNearMiss(statement, request, context);
  if (why) return why;
  for (const alternative of options.alternatives ?? []) {
    const other = resourceOf(action, alternative.name);
    if (covers(other)) {
      return `allows ${action} on ${other}, not on ${resource}: ${alternative.why}`;
    }
  }
  return undefined;
};

/** A statement with a misspelling of the action, on a resource that matches. */
const typoNearMiss: NearMiss = (statement, request, { context }) => {
  const resource = resourceOf(request.action, request.name);
  if (!statement.resources.some((p) => resourceMatches(p, resource, context))) return undefined;
  const typo = statement.actions.find((a) =>
    !actionMatches(a, request.action) &&
    nearestAction(a)?.toLowerCase() === request.action.toLowerCase()
  );
  return typo
    ? `has ${
      JSON.stringify(typo)
    }, which is not an AWS IoT action (did you mean ${request.action}?)`
    : undefined;
};

/** A statement that names this resource (not merely `*`) for other actions. */
const otherActionNearMiss: NearMiss = (statement, request, { context }) => {
  const resource = resourceOf(request.action, request.name);
  if (coversAction(statement, request.action) || statement.notResource) return undefined;
  const specific = statement.resources.some((p) =>
    p !== "*" && !/^arn:[^:]*:[^:]*:[^:]*:[^:]*:\*$/.test(p) &&
    resourceMatches(p, resource, context)
  );
  return specific
    ? `covers ${resource} for ${statement.actions.join(", ")}${
      statement.notAction ? " (NotAction)" : ""
    } but not for ${request.action}`
    : undefined;
};

/** For a statement whose actions cover the request: why one of its resources nearly matches. */
function resourceNearMiss(
  statement: Statement,
  request: PolicyRequest,
  context: EvaluationContext,
): string | undefined {
  const { action, name } = request;
  const wanted = RESOURCE_TYPE[action];
  const resource = resourceOf(action, name);
  for (const pattern of statement.resources) {
    const typed = pattern.replace(/(:|^)(topicfilter|topic|client)\//, `$1${wanted}/`);
    if (typed !== pattern && resourceMatches(typed, resource, context)) {
      const type = /(topicfilter|topic|client)\//.exec(pattern)![1];
      return `grants ${action} on ${type}/… (${
        JSON.stringify(pattern)
      }), while AWS IoT checks ${action} against ${wanted}/ ARNs`;
    }
    const starred = pattern.replace(/[+#]/g, "*");
    if (starred !== pattern && resourceMatches(starred, resource, context)) {
      return `has ${
        JSON.stringify(pattern)
      }, whose MQTT wildcards + and # are plain characters in a policy: use * instead`;
    }
    const unresolved = substitute(pattern, context.variables).unresolved;
    if (unresolved !== undefined) {
      const loose = pattern.replaceAll(`\${${unresolved}}`, "*");
      if (variablesIn(loose).length === 0 && resourceMatches(loose, resource, context)) {
        return `has ${
          JSON.stringify(pattern)
        }, but \${${unresolved}} does not resolve on this connection${
          !unresolved.startsWith("iot:Connection.Thing.")
            ? ""
            : context.variables.thingName === undefined
            ? " (a claim certificate has no thing attached)"
            : " (a thing's type and attributes are not evaluated: they count as unresolved)"
        }, so it matches nothing`;
      }
    }
    if (context.scope && resourceMatches(pattern, resource, { ...context, scope: {} })) {
      return `has ${JSON.stringify(pattern)}, which names another ${
        scopeMismatch(pattern, context.scope)
      }`;
    }
  }
  return undefined;
}

function scopeMismatch(pattern: string, scope: ArnScope): string {
  const [, partition, , region, account] = pattern.split(":");
  if (scope.region !== undefined && region !== undefined && !glob(region, scope.region)) {
    return `region than the endpoint's (${scope.region})`;
  }
  if (
    scope.account !== undefined && account !== undefined &&
    !glob(account, scope.account)
  ) return `account than ${scope.account}`;
  return `partition than ${scope.partition ?? "aws"} (${partition})`;
}
