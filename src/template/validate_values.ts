// SPDX-License-Identifier: Apache-2.0
/**
 * Static checks of the values of a template: the intrinsic functions AWS
 * supports, their argument shapes, and references (Ref, Fn::Sub variables,
 * Fn::FindInMap map and keys) that must resolve to something declared.
 *
 * @module
 */
import { isObject, type Json } from "./expressions.ts";
import { FUNCTION_NAMES, pathStep, PSEUDO_PARAMETERS } from "./vocabulary.ts";

/**
 * Checks a literal policy document as AWS IoT would at CreatePolicy: why it
 * is refused (one sentence), or undefined. The caller passes the policy
 * evaluator's check (`src/policy/`, which this module may not import).
 */
export type PolicyDocumentCheck = (document: Record<string, unknown>) => string | undefined;

/** What values are checked against: declared parameters, Mappings, where findings go. */
export interface Scope {
  declared: Set<string>;
  mappings: Record<string, Json>;
  add: (path: string, message: string, fix?: string) => void;
  /** The check of literal policy documents, when the caller has one. */
  policyDocument?: PolicyDocumentCheck;
}

/** True for an object whose keys name a function (`Ref`, `Fn::…`). */
export function isCall(node: Json): node is Record<string, Json> {
  return isObject(node) && Object.keys(node).some((k) => k === "Ref" || k.startsWith("Fn:"));
}

/** Whether a value holds a function call anywhere (its value is known only at RegisterThing). */
export function hasCall(node: Json): boolean {
  if (Array.isArray(node)) return node.some(hasCall);
  return isObject(node) && (isCall(node) || Object.values(node).some(hasCall));
}

/** Checks a value and everything inside it. */
export function checkValue(node: Json, path: string, scope: Scope): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => checkValue(item, `${path}${pathStep(i)}`, scope));
  } else if (isCall(node)) {
    checkCall(node, path, scope);
  } else if (isObject(node)) {
    for (const [key, value] of Object.entries(node)) {
      checkValue(value, `${path}${pathStep(key)}`, scope);
    }
  }
}

type Checker = (args: Json, path: string, scope: Scope) => void;

const CHECKERS: Record<(typeof FUNCTION_NAMES)[number], Checker> = {
  "Ref": checkRef,
  "Fn::Join": checkJoin,
  "Fn::Select": checkSelect,
  "Fn::Split": checkSplit,
  "Fn::Sub": checkSub,
  "Fn::FindInMap": checkFindInMap,
};

function checkCall(node: Record<string, Json>, path: string, scope: Scope): void {
  const keys = Object.keys(node);
  if (keys.length !== 1) {
    scope.add(
      path,
      `A function call must be the only key of its object, not beside ${
        keys.filter((k) => k !== "Ref" && !k.startsWith("Fn:")).join(", ") || "another call"
      }.`,
      "Put the call in an object of its own.",
    );
    return;
  }
  const name = keys[0];
  const where = `${path}${pathStep(name)}`;
  if (!Object.hasOwn(CHECKERS, name)) {
    const hint = name.startsWith("Fn:") && !name.startsWith("Fn::")
      ? ` (did you mean Fn::${name.slice(3)}?)`
      : "";
    scope.add(
      where,
      `${name} is not an intrinsic function of provisioning templates${hint}; AWS supports ${
        FUNCTION_NAMES.join(", ")
      }.`,
      hint
        ? `Write Fn::${name.slice(3)}.`
        : "Build the value with those, or have a pre-provisioning hook compute it (parameterOverrides).",
    );
    return;
  }
  CHECKERS[name as keyof typeof CHECKERS](node[name], where, scope);
}

/** A parameter that Ref and Fn::Sub may name: declared, or a pseudo parameter AWS fills. */
function known(name: string, scope: Scope): boolean {
  return scope.declared.has(name) || PSEUDO_PARAMETERS.includes(name);
}

function undeclared(name: string, path: string, scope: Scope): void {
  scope.add(
    path,
    `${JSON.stringify(name)} is not declared in Parameters.`,
    `Declare it: "Parameters": {${JSON.stringify(name)}: {"Type": "String"}}.`,
  );
}

function checkRef(args: Json, path: string, scope: Scope): void {
  if (typeof args !== "string") {
    scope.add(path, "Ref takes the name of a parameter (a string).");
  } else if (!known(args, scope)) {
    undeclared(args, path, scope);
  }
}

/** Checks a list argument: a literal list (each item checked) or a call that yields one. */
function checkList(node: Json, path: string, scope: Scope): boolean {
  if (Array.isArray(node) || isCall(node)) {
    checkValue(node, path, scope);
    return true;
  }
  return false;
}

function checkJoin(args: Json, path: string, scope: Scope): void {
  if (!Array.isArray(args) || args.length !== 2 || typeof args[0] !== "string") {
    scope.add(path, 'Fn::Join takes ["delimiter", [values]].');
    return;
  }
  if (!checkList(args[1], `${path}[1]`, scope)) {
    scope.add(`${path}[1]`, "Fn::Join's second argument must be a list of values.");
  }
}

function checkSelect(args: Json, path: string, scope: Scope): void {
  if (!Array.isArray(args) || args.length !== 2) {
    scope.add(path, "Fn::Select takes [index, [values]].");
    return;
  }
  const [index, list] = args;
  if (isCall(index)) checkValue(index, `${path}[0]`, scope);
  else if (!Number.isInteger(Number(index)) || Number(index) < 0 || typeof index === "boolean") {
    scope.add(`${path}[0]`, "Fn::Select's index must be a whole number from 0.");
  } else if (Array.isArray(list) && Number(index) >= list.length) {
    scope.add(
      `${path}[0]`,
      `Fn::Select's index ${index} is out of the list's bounds (0..${
        list.length - 1
      }); AWS fails the provisioning request.`,
    );
  }
  if (!checkList(list, `${path}[1]`, scope)) {
    scope.add(`${path}[1]`, "Fn::Select's second argument must be a list.");
  }
}

function checkSplit(args: Json, path: string, scope: Scope): void {
  if (!Array.isArray(args) || args.length !== 2 || typeof args[0] !== "string" || args[0] === "") {
    scope.add(path, 'Fn::Split takes ["delimiter", "string"] with a non-empty delimiter.');
    return;
  }
  if (typeof args[1] !== "string" && !isCall(args[1])) {
    scope.add(`${path}[1]`, "Fn::Split splits a string.");
  } else checkValue(args[1], `${path}[1]`, scope);
}

function checkSub(args: Json, path: string, scope: Scope): void {
  let text = args;
  let variables: Record<string, Json> = {};
  if (Array.isArray(args)) {
    if (args.length !== 2 || typeof args[0] !== "string" || !isObject(args[1]) || isCall(args[1])) {
      scope.add(path, 'Fn::Sub takes "text with ${Name}" or ["text with ${Var}", {"Var": value}].');
      return;
    }
    text = args[0];
    variables = args[1];
    checkValue(variables, `${path}[1]`, scope);
  }
  if (typeof text !== "string") {
    scope.add(path, 'Fn::Sub takes "text with ${Name}" or ["text with ${Var}", {"Var": value}].');
    return;
  }
  for (const match of text.matchAll(/\$\{(!?)([^}]*)\}/g)) {
    const [, bang, name] = match;
    if (bang || Object.hasOwn(variables, name) || known(name, scope)) continue;
    undeclared(name, Array.isArray(args) ? `${path}[0]` : path, scope);
  }
}

function checkFindInMap(args: Json, path: string, scope: Scope): void {
  if (!Array.isArray(args) || args.length !== 3) {
    scope.add(path, "Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey].");
    return;
  }
  args.forEach((arg, i) => {
    if (isCall(arg)) checkValue(arg, `${path}[${i}]`, scope);
    else if (typeof arg !== "string") {
      scope.add(`${path}[${i}]`, "Fn::FindInMap's keys are strings.");
    }
  });
  const [mapName, top, second] = args;
  if (typeof mapName !== "string") return;
  const map = scope.mappings[mapName];
  if (!isObject(map)) {
    scope.add(`${path}[0]`, `Mappings has no map ${JSON.stringify(mapName)}.`);
    return;
  }
  if (typeof top !== "string") return;
  const level = map[top];
  if (!isObject(level)) {
    scope.add(`${path}[1]`, `Mappings.${mapName} has no key ${JSON.stringify(top)}.`);
  } else if (typeof second === "string" && !Object.hasOwn(level, second)) {
    scope.add(`${path}[2]`, `Mappings.${mapName}.${top} has no key ${JSON.stringify(second)}.`);
  }
}
