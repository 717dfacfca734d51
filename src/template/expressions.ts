// SPDX-License-Identifier: Apache-2.0
/**
 * The expressions of a provisioning template: `Ref` and the intrinsic
 * functions (`Fn::Join`, `Fn::Split`, `Fn::Select`, `Fn::Sub`,
 * `Fn::FindInMap`), one evaluator each, dispatched by name.
 *
 * @module
 */

/** A JSON value of the template. */
export type Json = unknown;

/** Why a template failed; `errorCode` is the rejection's error code. */
export class TemplateError extends Error {
  /** `InvalidParameters` (the request's fault) or `ResourceRegistrationFailure` (the template's). */
  readonly errorCode: string;
  /** The rejection's status code (400 unless said otherwise). */
  readonly statusCode: number;

  /** Creates an error with the rejection code (and status) it maps to. */
  constructor(errorCode: string, message: string, statusCode = 400) {
    super(message);
    this.name = "TemplateError";
    this.errorCode = errorCode;
    this.statusCode = statusCode;
  }
}

/** What expressions are evaluated against: the parameter values and the template's Mappings. */
export interface Context {
  values: Record<string, string>;
  mappings: Record<string, Json>;
}

/** Evaluates every expression in `node`; `where` names the node in errors. */
export function evaluate(node: Json, context: Context, where: string): Json {
  if (Array.isArray(node)) return node.map((item, i) => evaluate(item, context, `${where}[${i}]`));
  if (!isObject(node)) return node;
  const keys = Object.keys(node);
  if (keys.length === 1 && (keys[0] === "Ref" || keys[0].startsWith("Fn::"))) {
    const name = keys[0];
    const evaluator = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
    if (!evaluator) {
      throw new TemplateError(
        "ResourceRegistrationFailure",
        `${where}.${name}: unsupported function ${name}.`,
      );
    }
    return evaluator(node[name], context, `${where}.${name}`);
  }
  const out: Record<string, Json> = {};
  for (const key of keys) out[key] = evaluate(node[key], context, `${where}.${key}`);
  return out;
}

type Evaluator = (raw: Json, context: Context, where: string) => Json;

/** The functions, by name. */
const FUNCTIONS: Record<string, Evaluator> = {
  "Ref": ref,
  "Fn::Join": join,
  "Fn::Split": split,
  "Fn::Select": select,
  "Fn::Sub": sub,
  "Fn::FindInMap": findInMap,
};

/** `{"Ref": "Name"}`: a declared parameter's value. */
function ref(raw: Json, context: Context, where: string): Json {
  if (typeof raw !== "string") fail(where, "takes a parameter name");
  if (!Object.hasOwn(context.values, raw)) {
    throw new TemplateError(
      "ResourceRegistrationFailure",
      `${where} refers to ${raw}, which is not a declared parameter.`,
    );
  }
  return context.values[raw];
}

/** `{"Fn::Join": [delimiter, [values]]}`. */
function join(raw: Json, context: Context, where: string): Json {
  const args = evaluate(raw, context, where);
  if (!Array.isArray(args) || args.length !== 2 || typeof args[0] !== "string") {
    fail(where, "takes [delimiter, [values]]");
  }
  const list = args[1];
  if (!Array.isArray(list)) fail(where, "takes [delimiter, [values]]");
  return list.map((item) => scalar(item, where)).join(args[0]);
}

/** `{"Fn::Split": [delimiter, string]}`. */
function split(raw: Json, context: Context, where: string): Json {
  const args = evaluate(raw, context, where);
  if (!Array.isArray(args) || args.length !== 2 || typeof args[0] !== "string") {
    fail(where, "takes [delimiter, string]");
  }
  if (args[0] === "") fail(where, "needs a non-empty delimiter");
  return scalar(args[1], where).split(args[0]);
}

/** `{"Fn::Select": [index, [values]]}`. */
function select(raw: Json, context: Context, where: string): Json {
  const args = evaluate(raw, context, where);
  if (!Array.isArray(args) || args.length !== 2 || !Array.isArray(args[1])) {
    fail(where, "takes [index, [values]]");
  }
  const index = Number(args[0]);
  if (!Number.isInteger(index) || index < 0 || index >= args[1].length) {
    fail(where, `index ${String(args[0])} is out of range 0..${args[1].length - 1}`);
  }
  return args[1][index];
}

/** `{"Fn::Sub": "text ${Name}"}` or `{"Fn::Sub": ["text ${Var}", {"Var": value}]}`; `${!X}` is literal. */
function sub(raw: Json, context: Context, where: string): Json {
  let text: Json = raw;
  let variables: Record<string, string> = {};
  if (Array.isArray(raw)) {
    if (raw.length !== 2 || typeof raw[0] !== "string") {
      fail(where, "takes string or [string, {vars}]");
    }
    text = raw[0];
    const vars = evaluate(raw[1], context, where);
    if (!isObject(vars)) fail(where, "takes string or [string, {vars}]");
    variables = Object.fromEntries(
      Object.entries(vars).map(([k, v]) => [k, scalar(v, `${where}.${k}`)]),
    );
  }
  if (typeof text !== "string") fail(where, "takes string or [string, {vars}]");
  return text.replace(/\$\{(!?)([^}]*)\}/g, (_match, bang: string, key: string) => {
    if (bang) return `\${${key}}`;
    if (Object.hasOwn(variables, key)) return variables[key];
    if (Object.hasOwn(context.values, key)) return context.values[key];
    throw new TemplateError(
      "ResourceRegistrationFailure",
      `${where} refers to \${${key}}, which is not a declared parameter.`,
    );
  });
}

/** `{"Fn::FindInMap": [MapName, TopLevelKey, SecondLevelKey]}`. */
function findInMap(raw: Json, context: Context, where: string): Json {
  const args = evaluate(raw, context, where);
  if (!Array.isArray(args) || args.length !== 3) {
    fail(where, "takes [MapName, TopLevelKey, SecondLevelKey]");
  }
  const [mapName, top, second] = args.map((a) => scalar(a, where));
  const map = context.mappings[mapName];
  if (!isObject(map)) fail(where, `Mappings has no map ${mapName}`);
  const level = map[top];
  if (!isObject(level)) fail(where, `Mappings.${mapName} has no key ${top}`);
  if (!Object.hasOwn(level, second)) {
    fail(where, `Mappings.${mapName}.${top} has no key ${second}`);
  }
  return level[second];
}

/** A value that must be a string (numbers and booleans become strings). */
export function scalar(value: Json, where: string): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  fail(where, "must evaluate to a string");
}

/** Throws the template's fault: `where` and what is wrong with it. */
export function fail(where: string, message: string): never {
  throw new TemplateError("ResourceRegistrationFailure", `${where} ${message}.`);
}

/** True for a JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
