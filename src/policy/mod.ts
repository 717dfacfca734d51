// SPDX-License-Identifier: Apache-2.0
/**
 * AWS IoT policies, one evaluator for lint, the device's error lines and the
 * emulator: a document read into statements with its problems
 * (`document.ts`), resource ARNs and the region of an endpoint (`arn.ts`),
 * policy variables (`variables.ts`), the evaluation (`evaluate.ts`) and why
 * a request is denied with the statement that fixes it (`explain.ts`). The
 * certificate variables of a PEM certificate are in `certificate.ts` (it
 * needs node:crypto). Imports nothing of fleetprov's.
 *
 * @module
 */
import type { ArnScope, IotAction } from "./arn.ts";
import { type ParsedPolicy, parsePolicy, type PolicyProblem } from "./document.ts";
import { evaluate } from "./evaluate.ts";
import type { PolicyVariables } from "./variables.ts";

export {
  arnOf,
  type ArnScope,
  type IotAction,
  isAccountId,
  RESOURCE_TYPE,
  resourceOf,
  scopeOfEndpoint,
} from "./arn.ts";
export {
  IOT_ACTIONS,
  type ParsedPolicy,
  parsePolicy,
  type PolicyProblem,
  type Statement,
} from "./document.ts";
export {
  type Decision,
  evaluate,
  type EvaluationContext,
  type PolicyRequest,
  type StatementRef,
} from "./evaluate.ts";
export {
  type AllowStatement,
  allowStatement,
  type Alternative,
  describeRef,
  explainDenial,
  type Explanation,
  type TopicStatement,
  topicStatements,
} from "./explain.ts";
export type { CertificateFacts, PolicyVariables } from "./variables.ts";

const parsed = new WeakMap<object, ParsedPolicy>();

/** A document read once: the same object is parsed again only when it is a new object. */
function cachedPolicy(document: unknown): ParsedPolicy {
  if (typeof document !== "object" || document === null) return parsePolicy(document, "policy");
  let policy = parsed.get(document);
  if (!policy) {
    policy = parsePolicy(document, "policy");
    parsed.set(document, policy);
  }
  return policy;
}

/**
 * Whether the policy documents allow `action` on `name` (client id, topic or
 * topic filter) for a connection with these variables; `scope` unset checks
 * no region or account.
 */
export function isAllowed(
  documents: readonly unknown[],
  request: { action: IotAction; name: string },
  variables: PolicyVariables,
  scope?: ArnScope,
): boolean {
  return evaluate(documents.map(cachedPolicy), request, { variables, scope }).allowed;
}

/** A problem as one line: "SOURCE: statement 2 (Sid "x") has …" or "SOURCE has no …". */
export function problemLine(source: string, problem: PolicyProblem): string {
  if (problem.statement === undefined) return `${source} ${problem.message}`;
  const sid = problem.sid === undefined ? "" : ` (Sid ${JSON.stringify(problem.sid)})`;
  return `${source}: statement ${problem.statement}${sid} ${problem.message}`;
}

/**
 * Checks a policy document the emulator is given: throws a sentence naming
 * `source` for the first error (AWS IoT would refuse the document); returns
 * the warnings, one line each (what is evaluated, but likely not as meant).
 */
export function checkPolicyDocument(document: unknown, source: string): string[] {
  const refused = policyDocumentError(document, source);
  if (refused !== undefined) throw new Error(refused);
  return parsePolicy(document, source).problems.map((p) => problemLine(source, p));
}

/** Why AWS IoT would refuse the document (its first error, one line naming `source`), or undefined. */
export function policyDocumentError(document: unknown, source: string): string | undefined {
  const error = parsePolicy(document, source).problems.find((p) => p.severity === "error");
  return error === undefined ? undefined : problemLine(source, error);
}
