// SPDX-License-Identifier: Apache-2.0
/**
 * A small AWS IoT policy evaluator: Allow/Deny statements over `iot:Connect`,
 * `iot:Publish`, `iot:Subscribe` and `iot:Receive`, with `*`/`?` wildcards and
 * the `${iot:ClientId}` and `${iot:Connection.Thing.*}` policy variables.
 * Explicit Deny wins; no Allow means denied. Pure.
 *
 * @module
 */

/** The IoT actions the emulator checks. */
export type IotAction = "iot:Connect" | "iot:Publish" | "iot:Subscribe" | "iot:Receive";

/** Values of policy variables for one connection. */
export interface PolicyVariables {
  clientId: string;
  /** The thing attached to the certificate whose name equals the client id, if any. */
  thingName?: string;
}

/** The resource part of the ARN an action applies to. */
export function resourceOf(action: IotAction, name: string): string {
  switch (action) {
    case "iot:Connect":
      return `client/${name}`;
    case "iot:Subscribe":
      return `topicfilter/${name}`;
    default:
      return `topic/${name}`;
  }
}

/** Whether the policy documents allow `action` on `name` (client id, topic or topic filter). */
export function isAllowed(
  documents: readonly unknown[],
  request: { action: IotAction; name: string },
  variables: PolicyVariables,
): boolean {
  const resource = resourceOf(request.action, request.name);
  let allowed = false;
  for (const document of documents) {
    for (const statement of statementsOf(document)) {
      if (!matchesAction(statement.Action, request.action)) continue;
      if (!matchesResource(statement.Resource, resource, variables)) continue;
      if (statement.Effect === "Deny") return false;
      if (statement.Effect === "Allow") allowed = true;
    }
  }
  return allowed;
}

interface Statement {
  Effect?: unknown;
  Action?: unknown;
  Resource?: unknown;
}

function statementsOf(document: unknown): Statement[] {
  if (typeof document !== "object" || document === null) return [];
  const statements = (document as { Statement?: unknown }).Statement;
  if (Array.isArray(statements)) {
    return statements.filter((s) => typeof s === "object" && s !== null) as Statement[];
  }
  if (typeof statements === "object" && statements !== null) return [statements as Statement];
  return [];
}

function listOf(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.filter((v) => typeof v === "string");
  return [];
}

function matchesAction(actions: unknown, action: IotAction): boolean {
  return listOf(actions).some((pattern) => glob(pattern.toLowerCase(), action.toLowerCase()));
}

function matchesResource(
  resources: unknown,
  resource: string,
  variables: PolicyVariables,
): boolean {
  for (const raw of listOf(resources)) {
    if (raw === "*") return true;
    const pattern = substitute(arnResource(raw), variables);
    if (pattern !== undefined && glob(pattern, resource)) return true;
  }
  return false;
}

/** `arn:aws:iot:<region>:<account>:<resource>` -> `<resource>`; anything else as is. */
function arnResource(arn: string): string {
  if (!arn.startsWith("arn:")) return arn;
  const parts = arn.split(":");
  return parts.length >= 6 ? parts.slice(5).join(":") : arn;
}

function substitute(pattern: string, variables: PolicyVariables): string | undefined {
  let unresolved = false;
  const out = pattern.replace(/\$\{([^}]*)\}/g, (_m, name: string) => {
    switch (name) {
      case "iot:ClientId":
        return variables.clientId;
      case "iot:Connection.Thing.ThingName":
        if (variables.thingName === undefined) unresolved = true;
        return variables.thingName ?? "";
      case "iot:Connection.Thing.IsAttached":
        return variables.thingName === undefined ? "false" : "true";
      case "*":
      case "?":
      case "$":
        return `\u0000${name}`;
      default:
        unresolved = true;
        return "";
    }
  });
  return unresolved ? undefined : out;
}

const globCache = new Map<string, RegExp>();

function glob(pattern: string, value: string): boolean {
  let regex = globCache.get(pattern);
  if (!regex) {
    let source = "";
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i];
      if (c === "\u0000") {
        source += escape(pattern[++i]);
      } else if (c === "*") source += ".*";
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

const STATEMENT_KEYS = new Set(["Sid", "Effect", "Action", "Resource"]);

/**
 * Checks a policy document the emulator is given (e.g. a claim policy file):
 * `{"Version"?, "Statement": [...]}`, each statement with Effect Allow|Deny,
 * Action `iot:...` (or `*`) and Resource (strings or lists of strings).
 * Conditions and NotAction/NotResource are not evaluated, so they are refused
 * rather than silently ignored. Throws a sentence naming `source`.
 */
export function checkPolicyDocument(document: unknown, source: string): void {
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    throw new Error(`${source} must be an AWS IoT policy: a JSON object with "Statement".`);
  }
  const raw = (document as { Statement?: unknown }).Statement;
  const statements = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (statements.length === 0) throw new Error(`${source} has no "Statement".`);
  statements.forEach((statement, i) => checkStatement(statement, `${source}: statement ${i + 1}`));
}

function checkStatement(statement: unknown, where: string): void {
  if (typeof statement !== "object" || statement === null || Array.isArray(statement)) {
    throw new Error(`${where} must be an object with Effect, Action and Resource.`);
  }
  const s = statement as Record<string, unknown>;
  for (const key of Object.keys(s)) {
    if (!STATEMENT_KEYS.has(key)) {
      throw new Error(
        `${where} has "${key}", which the emulator does not evaluate (it knows Effect, Action, Resource).`,
      );
    }
  }
  if (s.Effect !== "Allow" && s.Effect !== "Deny") {
    throw new Error(`${where}: "Effect" must be "Allow" or "Deny".`);
  }
  const strings = (value: unknown) =>
    (typeof value === "string" && value !== "") ||
    (Array.isArray(value) && value.length > 0 &&
      value.every((v) => typeof v === "string" && v !== ""));
  if (!strings(s.Action) || !listOf(s.Action).every((a) => a === "*" || /^iot:/i.test(a))) {
    throw new Error(`${where}: "Action" must be "iot:..." actions (a string or a list).`);
  }
  if (!strings(s.Resource)) {
    throw new Error(`${where}: "Resource" must be a string or a list of strings.`);
  }
}
