// SPDX-License-Identifier: Apache-2.0
/**
 * An AWS IoT policy document read into statements the evaluator can use, and
 * every problem found on the way, each naming its statement. Never throws:
 * the document is untrusted input. A statement with an error (no Effect, no
 * Action, a list of numbers, an element IAM does not know) is left out of the
 * evaluation; a warning (a Condition, an action AWS IoT does not define, a
 * resource that is not an ARN, a resource type AWS IoT does not have) leaves
 * it in, evaluated as documented on {@linkcode Statement}.
 *
 * @module
 */
import { KNOWN_RESOURCE_TYPES, splitArn } from "./arn.ts";
import { isKnownVariable, variablesIn } from "./variables.ts";

/** One statement, normalized. */
export interface Statement {
  /** 1-based position in the document's `Statement` list. */
  index: number;
  sid?: string;
  effect: "Allow" | "Deny";
  /** `Action`'s patterns; with `notAction` true, `NotAction`'s (the statement covers every other action). */
  actions: string[];
  notAction: boolean;
  /** `Resource`'s patterns; with `notResource` true, `NotResource`'s. */
  resources: string[];
  notResource: boolean;
  /**
   * The statement has a `Condition`, which is not evaluated: an Allow with one
   * grants nothing, a Deny with one denies as if it had none. So lint never
   * passes what a condition could refuse, and the emulator judges the same.
   */
  conditional: boolean;
}

/** A problem of the document, naming the statement when it is about one. */
export interface PolicyProblem {
  severity: "error" | "warning";
  /** 1-based statement index, when the problem is about a statement. */
  statement?: number;
  sid?: string;
  message: string;
}

/** A policy document read for evaluation. */
export interface ParsedPolicy {
  /** How messages name it, e.g. "the claim policy" or a file name. */
  name: string;
  statements: Statement[];
  problems: PolicyProblem[];
}

/** The data-plane actions AWS IoT Core policies define ("AWS IoT Core policy actions"). */
export const IOT_ACTIONS: readonly string[] = [
  "iot:Connect",
  "iot:Publish",
  "iot:Receive",
  "iot:Subscribe",
  "iot:RetainPublish",
  "iot:GetRetainedMessage",
  "iot:ListRetainedMessages",
  "iot:DeleteThingShadow",
  "iot:GetThingShadow",
  "iot:UpdateThingShadow",
  "iot:ListNamedShadowsForThing",
  "iot:DescribeJobExecution",
  "iot:GetPendingJobExecutions",
  "iot:UpdateJobExecution",
  "iot:StartNextPendingJobExecution",
  "iot:AssumeRoleWithCertificate",
];

const ELEMENTS = new Set([
  "Sid",
  "Effect",
  "Action",
  "NotAction",
  "Resource",
  "NotResource",
  "Condition",
]);

/** Reads a policy document; see the module documentation. */
export function parsePolicy(document: unknown, name: string): ParsedPolicy {
  const parsed: ParsedPolicy = { name, statements: [], problems: [] };
  const error = (message: string) => parsed.problems.push({ severity: "error", message });
  if (!isObject(document)) {
    error('is not an AWS IoT policy: a JSON object with "Statement".');
    return parsed;
  }
  const version = document.Version;
  if (version !== undefined && version !== "2012-10-17" && version !== "2008-10-17") {
    parsed.problems.push({
      severity: "warning",
      message: `has "Version" ${JSON.stringify(version)}; AWS IoT policies use "2012-10-17".`,
    });
  }
  const raw = document.Statement;
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (list.length === 0) error('has no "Statement".');
  list.forEach((item, i) => {
    const statement = readStatement(item, i + 1, parsed.problems);
    if (statement) parsed.statements.push(statement);
  });
  return parsed;
}

/** One statement, or undefined (with an error) when it cannot be evaluated. */
function readStatement(
  raw: unknown,
  index: number,
  problems: PolicyProblem[],
): Statement | undefined {
  if (!isObject(raw)) {
    problems.push({
      severity: "error",
      statement: index,
      message: "is not an object with Effect, Action and Resource.",
    });
    return undefined;
  }
  const sid = typeof raw.Sid === "string" ? raw.Sid : undefined;
  const found: PolicyProblem[] = [];
  const error = (message: string) =>
    found.push({ severity: "error", statement: index, sid, message });
  for (const key of Object.keys(raw)) {
    if (!ELEMENTS.has(key)) error(`has "${key}", which is not a policy statement element.`);
  }
  if (raw.Effect !== "Allow" && raw.Effect !== "Deny") error('has no "Effect" Allow or Deny.');
  const actions = pick(raw, "Action", error);
  const resources = pick(raw, "Resource", error);
  problems.push(...found);
  if (found.length > 0 || !actions || !resources) return undefined;
  const statement: Statement = {
    index,
    ...(sid === undefined ? {} : { sid }),
    effect: raw.Effect as "Allow" | "Deny",
    actions: actions.values,
    notAction: actions.not,
    resources: resources.values,
    notResource: resources.not,
    conditional: raw.Condition !== undefined,
  };
  problems.push(...warningsOf(statement));
  return statement;
}

/** `Action` or `NotAction` (`Resource` or `NotResource`): exactly one, strings. */
function pick(
  raw: Record<string, unknown>,
  element: "Action" | "Resource",
  error: (message: string) => void,
): { values: string[]; not: boolean } | undefined {
  const not = `Not${element}`;
  if (raw[element] !== undefined && raw[not] !== undefined) {
    error(`has both "${element}" and "${not}"; give one.`);
    return undefined;
  }
  const key = raw[element] !== undefined ? element : not;
  const value = raw[key];
  const values = typeof value === "string" ? [value] : value;
  if (
    !Array.isArray(values) || values.length === 0 ||
    !values.every((v) => typeof v === "string" && v !== "")
  ) {
    error(
      value === undefined
        ? `has no "${element}".`
        : `has "${key}" that is not a string or a list of strings.`,
    );
    return undefined;
  }
  return { values, not: key === not };
}

/** What is evaluated but probably not what was meant. */
function warningsOf(statement: Statement): PolicyProblem[] {
  const out: PolicyProblem[] = [];
  const { index, sid } = statement;
  const warn = (message: string) =>
    out.push({ severity: "warning", statement: index, sid, message });
  if (statement.conditional) {
    warn(
      `has a "Condition", which lint and the emulator do not evaluate: ${
        statement.effect === "Allow"
          ? "this Allow is counted as granting nothing"
          : "this Deny is counted as always applying"
      }.`,
    );
  }
  for (const action of statement.actions) {
    const problem = actionProblem(action);
    if (problem) warn(problem);
  }
  for (const resource of statement.resources) {
    const problem = resourceProblem(resource);
    if (problem) warn(problem);
    for (const name of variablesIn(resource)) {
      if (!isKnownVariable(name)) {
        warn(
          `uses \${${name}} in ${
            JSON.stringify(resource)
          }, which lint and the emulator do not resolve: that resource matches nothing.`,
        );
      }
    }
  }
  return out;
}

/** Why an action pattern names no AWS IoT action, with the nearest one when it looks like a typo. */
export function actionProblem(action: string): string | undefined {
  if (action === "*" || IOT_ACTIONS.some((known) => actionMatches(action, known))) return undefined;
  // A Greengrass core device's AWS IoT policy carries Greengrass's own actions, as the Greengrass
  // V2 guide's device policies do ("greengrass:*"): not MQTT, but not a mistake either.
  if (/^greengrass:/i.test(action)) return undefined;
  if (!/^iot:/i.test(action)) {
    return `has action ${
      JSON.stringify(action)
    }, which is not an AWS IoT action: it grants nothing on an MQTT connection.`;
  }
  const near = nearestAction(action);
  return `has action ${JSON.stringify(action)}, which AWS IoT does not define${
    near ? ` (did you mean ${near}?)` : ""
  }.`;
}

/** The known action within two edits of `action` (case-insensitive), if any. */
export function nearestAction(action: string): string | undefined {
  let best: { action: string; distance: number } | undefined;
  for (const known of IOT_ACTIONS) {
    const distance = editDistance(action.toLowerCase(), known.toLowerCase());
    if (distance <= 2 && (!best || distance < best.distance)) best = { action: known, distance };
  }
  return best?.action;
}

function resourceProblem(resource: string): string | undefined {
  if (resource === "*") return undefined;
  const arn = splitArn(resource);
  if (!arn) {
    if (resource.startsWith("arn:") && resource.includes("*")) return undefined;
    return `has resource ${
      JSON.stringify(resource)
    }, which is not an ARN (arn:aws:iot:REGION:ACCOUNT:TYPE/NAME): it matches nothing.`;
  }
  const type = arn.resource.split("/")[0];
  if (arn.resource.includes("/") && !/[*?]/.test(type) && !KNOWN_RESOURCE_TYPES.includes(type)) {
    return `has resource ${JSON.stringify(resource)}, whose type "${type}" AWS IoT does not have (${
      KNOWN_RESOURCE_TYPES.join(", ")
    }).`;
  }
  return undefined;
}

const actionCache = new Map<string, RegExp>();

/** Whether an action pattern (`*`, `?` wildcards, case-insensitive) covers `action`. */
export function actionMatches(pattern: string, action: string): boolean {
  let regex = actionCache.get(pattern);
  if (!regex) {
    const source = pattern.replace(/[.+^${}()|[\]\\/]/g, "\\$&").replace(/\*/g, ".*")
      .replace(/\?/g, ".");
    regex = new RegExp(`^${source}$`, "is");
    if (actionCache.size > 1000) actionCache.clear();
    actionCache.set(pattern, regex);
  }
  return regex.test(action);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        previous[j] + 1,
        row[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
