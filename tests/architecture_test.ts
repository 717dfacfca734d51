// SPDX-License-Identifier: Apache-2.0
/**
 * The shape of src/, checked on every test run (ARCHITECTURE.md):
 * - the layers: every top folder of src/ and every file directly in src/ (a
 *   node) has a layer in {@linkcode LAYERS}; an import goes from a node to a
 *   node of a lower layer (a higher number), never sideways or up; a node
 *   without a layer fails, so a new folder is placed before it lands;
 * - no cycle between nodes (implied by the layers, checked on its own too);
 * - some nodes import only what {@linkcode ONLY_IMPORTS} lists (protocol/:
 *   only the leaf text.ts; policy/ and template/: protocol/ and text.ts);
 * - the device and the emulator: neither side imports the other
 *   ({@linkcode EMULATOR_SIDE}, {@linkcode SHARED_BY_BOTH});
 * - no import leaves src/;
 * - no piece of code over 80 lines (a function, a class static block, a class
 *   field's initialiser, a top-level loop, if, block, try or switch) and no
 *   file over 400 lines, except the commented allow-lists below.
 *
 * Every import counts: static, type-only, re-export, dynamic `import()` and
 * the type `import("…")` (as in `typeof import("…")`); relative specifiers are
 * resolved, so `./../x` is `../x`. The source is parsed with Deno's own
 * TypeScript parser (Deno.lint.runPlugin), so strings, comments and regular
 * expressions cannot fool the measurement. The last test feeds each evasion
 * the checks must catch through the same functions.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./support/assert.ts";
import { ROOT } from "./support/mod.ts";

const SRC = join(ROOT, "src");

/** Longest piece of code, in lines (first to last line, nested functions included). */
const MAX_CODE_LINES = 80;
/** Longest file, in lines. */
const MAX_FILE_LINES = 400;

/**
 * Code allowed past MAX_CODE_LINES, as "path:name" with the reason.
 * Keep it empty unless a function truly reads better whole.
 */
const LONG_CODE: Record<string, string> = {};

/** Files allowed past MAX_FILE_LINES, with the reason. Keep it empty if at all possible. */
const LONG_FILES: Record<string, string> = {};

/** The layer of the files used from any layer: they import none of fleetprov's modules. */
const SHARED = 100;

/**
 * The layers of ARCHITECTURE.md, top (1) to bottom: an import goes to a
 * higher number only. Nodes on one layer do not import each other (the device
 * and the emulator on layer 5). A new top folder or file of src/ gets one line
 * here (and its place in ARCHITECTURE.md), or this test fails.
 */
export const LAYERS: Record<string, number> = {
  "cli.ts": 1,
  "commands/": 2,
  "result_line.ts": 3,
  "notices.ts": 3,
  "lint/": 3,
  "status/": 3,
  "rotation/": 4,
  "provisioning/": 5,
  "emulator/": 5,
  "mqtt/": 6,
  "pkcs11/": 6,
  "log.ts": 6,
  "config/": 7,
  "policy/": 8,
  "template/": 8,
  "protocol/": 9,
  "pki/": 9,
  "runtime_config/": 9,
  "lock/": 9,
  "clock/": 9,
  "secure_files/": 10,
  "errors.ts": SHARED,
  "failpoints.ts": SHARED,
  "version.ts": SHARED,
  "text.ts": SHARED,
  "output.ts": SHARED,
  "embedded.ts": SHARED,
};

/** Nodes that may import only the nodes listed (besides themselves and packages). */
export const ONLY_IMPORTS: Record<string, readonly string[]> = {
  "protocol/": ["text.ts"],
  "policy/": ["protocol/", "text.ts"],
  "template/": ["protocol/", "text.ts"],
};

/**
 * The emulator's side of the program, as path prefixes under src/: only the
 * dispatcher (cli.ts) imports it, and it imports nothing of the device's.
 */
export const EMULATOR_SIDE: readonly string[] = ["emulator/", "commands/emulator.ts"];

/** Nodes both sides use; every other node is the device's. */
export const SHARED_BY_BOTH: readonly string[] = [
  "policy/",
  "template/",
  "protocol/",
  "pki/",
  "secure_files/",
  ...Object.keys(LAYERS).filter((node) => LAYERS[node] === SHARED),
];

/** The file that dispatches to both sides. */
const DISPATCHER = "cli.ts";

/** A piece of code found in the source: a function, a static block, a field, a top-level statement. */
export interface CodeSize {
  file: string;
  name: string;
  lines: number;
}

/** What one source file holds. */
export interface FileFacts {
  /** Path relative to src/. */
  file: string;
  lines: number;
  code: CodeSize[];
  /** Import specifiers (static, type-only, re-exports, dynamic, `import("…")` types). */
  imports: string[];
}

/** Every .ts file under `dir`, relative to `dir`, sorted. */
export function sourceFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.endsWith(".ts"))
    .sort();
}

type Node = {
  type: string;
  range: [number, number];
  parent?: Node;
  id?: { name?: string } | null;
  key?: { name?: string; value?: string };
  value?: Node | null;
  source?: { value?: unknown } | null;
  argument?: { literal?: { value?: unknown } };
  body?: Node[];
};

const FUNCTIONS = new Set(["FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression"]);

/** Top-level statements measured as code (declarations are measured through their functions). */
const TOP_LEVEL_CODE = new Set([
  "ForStatement",
  "ForInStatement",
  "ForOfStatement",
  "WhileStatement",
  "DoWhileStatement",
  "IfStatement",
  "BlockStatement",
  "TryStatement",
  "SwitchStatement",
  "LabeledStatement",
]);

function keyName(node: Node | undefined): string {
  return node?.key?.name ?? String(node?.key?.value ?? "?");
}

function functionName(node: Node): string {
  if (node.id?.name) return node.id.name;
  const parent = node.parent;
  if (parent?.type === "VariableDeclarator") return (parent.id as { name?: string })?.name ?? "?";
  if (
    parent?.type === "MethodDefinition" || parent?.type === "Property" ||
    parent?.type === "PropertyDefinition"
  ) {
    return keyName(parent);
  }
  return "(anonymous)";
}

/** The class a static block or field belongs to (ClassBody's parent). */
function className(node: Node): string {
  return node.parent?.parent?.id?.name ?? "(anonymous class)";
}

/** Parses one file and returns its size, its pieces of code and its imports. */
export function factsOf(file: string, text: string): FileFacts {
  const lineOf = (offset: number) => text.slice(0, offset).split("\n").length;
  const code: CodeSize[] = [];
  const imports: string[] = [];
  const measure = (node: Node, name: string) =>
    code.push({ file, name, lines: lineOf(node.range[1]) - lineOf(node.range[0]) + 1 });
  const plugin: Deno.lint.Plugin = {
    name: "architecture",
    rules: {
      facts: {
        create() {
          return {
            "FunctionDeclaration, FunctionExpression, ArrowFunctionExpression"(node: unknown) {
              const n = node as Node;
              measure(n, functionName(n));
            },
            StaticBlock(node: unknown) {
              const n = node as Node;
              measure(n, `${className(n)} static block`);
            },
            PropertyDefinition(node: unknown) {
              const n = node as Node;
              // A function as the value is measured as a function.
              if (n.value && !FUNCTIONS.has(n.value.type)) {
                measure(n, `${className(n)}.${keyName(n)} initialiser`);
              }
            },
            Program(node: unknown) {
              for (const statement of (node as Node).body ?? []) {
                if (!TOP_LEVEL_CODE.has(statement.type)) continue;
                measure(
                  statement,
                  `top-level ${statement.type} at line ${lineOf(statement.range[0])}`,
                );
              }
            },
            "ImportDeclaration, ExportNamedDeclaration, ExportAllDeclaration, ImportExpression"(
              node: unknown,
            ) {
              const value = (node as Node).source?.value;
              if (typeof value === "string") imports.push(value);
            },
            TSImportType(node: unknown) {
              const value = (node as Node).argument?.literal?.value;
              if (typeof value === "string") imports.push(value);
            },
          };
        },
      },
    },
  };
  Deno.lint.runPlugin(plugin, file, text);
  const lines = text.endsWith("\n") ? text.split("\n").length - 1 : text.split("\n").length;
  return { file, lines, code, imports };
}

/** The graph node of a file: its top folder under src/, or the file itself at the top. */
export function nodeOf(file: string): string {
  const first = file.split("/")[0];
  return first === file ? file : `${first}/`;
}

/**
 * The file an import specifier names, relative to src/ (it may start with
 * `..` when it leaves src/), or undefined for a package or built-in.
 */
export function targetOf(file: string, spec: string): string | undefined {
  let absolute: string;
  if (spec.startsWith("file:")) absolute = fileURLToPath(spec);
  else if (spec.startsWith("/")) absolute = normalize(spec);
  else if (spec.startsWith(".")) absolute = resolve(SRC, dirname(file), spec);
  else return undefined;
  return relative(SRC, absolute);
}

/** One import, resolved: from which file and node to which file and node. */
interface Edge {
  file: string;
  spec: string;
  from: string;
  target: string;
  to: string;
}

/** Every import of fleetprov's own modules between two different nodes (and every one leaving src/). */
export function edgesOf(facts: FileFacts[]): Edge[] {
  const edges: Edge[] = [];
  for (const f of facts) {
    for (const spec of f.imports) {
      const target = targetOf(f.file, spec);
      if (target === undefined) continue;
      const from = nodeOf(f.file);
      const to = target.startsWith("..") ? "outside src/" : nodeOf(target);
      if (to !== from) edges.push({ file: f.file, spec, from, target, to });
    }
  }
  return edges;
}

/** Node-level import edges "from → to", from the facts of every file. */
export function folderEdges(facts: FileFacts[]): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const { from, to } of edgesOf(facts)) {
    if (!edges.has(from)) edges.set(from, new Set());
    edges.get(from)!.add(to);
  }
  return edges;
}

/** Every elementary cycle found by depth-first search, as "a → b → a" strings. */
export function cycles(edges: Map<string, Set<string>>): string[] {
  const found = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const done = new Set<string>();
  function visit(node: string): void {
    path.push(node);
    onPath.add(node);
    for (const next of edges.get(node) ?? []) {
      if (onPath.has(next)) {
        found.add([...path.slice(path.indexOf(next)), next].join(" → "));
      } else if (!done.has(next)) visit(next);
    }
    path.pop();
    onPath.delete(node);
    done.add(node);
  }
  for (const node of [...edges.keys()].sort()) if (!done.has(node)) visit(node);
  return [...found].sort();
}

/** Nodes of these files that have no layer. */
export function unplaced(facts: FileFacts[]): string[] {
  return [...new Set(facts.map((f) => nodeOf(f.file)))].filter((node) => !(node in LAYERS))
    .sort();
}

function sideOf(file: string): "emulator" | "shared" | "dispatcher" | "device" {
  if (EMULATOR_SIDE.some((prefix) => file.startsWith(prefix))) return "emulator";
  if (file === DISPATCHER) return "dispatcher";
  return SHARED_BY_BOTH.includes(nodeOf(file)) ? "shared" : "device";
}

/** Every import that breaks the layers, an ONLY_IMPORTS list, the sides, or leaves src/. */
export function layerViolations(facts: FileFacts[]): string[] {
  const out: string[] = [];
  for (const e of edgesOf(facts)) {
    const what = `${e.file} imports ${e.spec}`;
    if (e.to === "outside src/") {
      out.push(`${what}, outside src/`);
      continue;
    }
    const [from, to] = [LAYERS[e.from], LAYERS[e.to]];
    if (from !== undefined && to !== undefined && to <= from) {
      out.push(`${what}: layer ${e.from} (${from}) may not import ${e.to} (${to})`);
    }
    const only = ONLY_IMPORTS[e.from];
    if (only && !only.includes(e.to)) {
      out.push(`${what}: ${e.from} imports only ${only.join(", ")}`);
    }
    const [a, b] = [sideOf(e.file), sideOf(e.target)];
    if ((a === "emulator" && b === "device") || (a === "device" && b === "emulator")) {
      out.push(`${what}: the ${a} never imports the ${b}`);
    }
  }
  return out.sort();
}

/** Pieces of code over the limit, not allowed by LONG_CODE. */
export function longCode(facts: FileFacts[]): string[] {
  return facts.flatMap((f) => f.code)
    .filter((c) => c.lines > MAX_CODE_LINES && !(`${c.file}:${c.name}` in LONG_CODE))
    .map((c) => `${c.file}:${c.name} ${c.lines}`)
    .sort();
}

const facts = sourceFiles(SRC).map((file) => factsOf(file, readFileSync(join(SRC, file), "utf8")));

Deno.test("architecture: every top folder and file of src/ has a layer, and ARCHITECTURE.md names it", () => {
  assertEquals(unplaced(facts), []);
  const doc = readFileSync(join(ROOT, "ARCHITECTURE.md"), "utf8");
  const unnamed = Object.keys(LAYERS).filter((node) => !doc.includes(`\`src/${node}\``));
  assertEquals(unnamed, [], "each node appears in ARCHITECTURE.md as `src/<node>`");
  // Layers that exist have their nodes: a renamed folder does not leave a stale line.
  const nodes = new Set(facts.map((f) => nodeOf(f.file)));
  assertEquals(Object.keys(LAYERS).filter((node) => !nodes.has(node)), []);
});

Deno.test("architecture: imports go down the layers; protocol/, policy/ and template/ import only their lists; the device and the emulator never import each other", () => {
  assertEquals(layerViolations(facts), []);
});

Deno.test("architecture: the nodes of src/ import each other without cycles", () => {
  assertEquals(cycles(folderEdges(facts)), []);
  // text.ts, which protocol/ may use, imports nothing itself.
  assertEquals(facts.find((f) => f.file === "text.ts")?.imports, []);
});

Deno.test(`architecture: no function, static block, field initialiser or top-level statement in src/ is longer than ${MAX_CODE_LINES} lines`, () => {
  assertEquals(longCode(facts), []);
});

Deno.test(`architecture: no file in src/ is longer than ${MAX_FILE_LINES} lines`, () => {
  const long = facts
    .filter((f) => f.lines > MAX_FILE_LINES && !(f.file in LONG_FILES))
    .map((f) => `${f.file} ${f.lines}`);
  assertEquals(long, []);
});

/** `n` lines of filler: statements, or array elements. */
function filler(n: number, kind: "statements" | "elements" = "statements"): string {
  return Array.from({ length: n }, (_, i) => kind === "statements" ? `    void ${i};` : `    ${i},`)
    .join("\n");
}

Deno.test("architecture: the checks see what they measure, and catch each evasion", async (t) => {
  await t.step("imports of every kind, functions by name", () => {
    const sample = factsOf(
      "x/a.ts",
      [
        'import type { T } from "../y/b.ts";',
        'export { U } from "./c.ts";',
        "function outer(): void {",
        "  const inner = () => {",
        '    const s = "} { /* not a comment";',
        "  };",
        '  void import("../z/mod.ts");',
        "}",
        'type M = typeof import("../w/mod.ts");',
        "",
      ].join("\n"),
    );
    assertEquals(sample.lines, 9);
    assertEquals(sample.imports, ["../y/b.ts", "./c.ts", "../z/mod.ts", "../w/mod.ts"]);
    assertEquals(sample.code.map((f) => [f.name, f.lines]), [["outer", 6], ["inner", 3]]);
  });
  await t.step("cycles", () => {
    assertEquals(
      cycles(
        new Map([["a/", new Set(["b/"])], ["b/", new Set(["c.ts"])], ["c.ts", new Set(["a/"])]]),
      ),
      ["a/ → b/ → c.ts → a/"],
    );
    assertEquals(cycles(new Map([["a/", new Set(["b/"])], ["b/", new Set(["c.ts"])]])), []);
  });
  await t.step("over 80 lines: a class static block, a field initialiser, a top-level loop", () => {
    const sample = factsOf(
      "x/long.ts",
      [
        "class A {",
        "  static {",
        filler(100),
        "  }",
        "  table = [",
        filler(100, "elements"),
        "  ];",
        "}",
        "for (const x of [1]) {",
        filler(100),
        "}",
        "",
      ].join("\n"),
    );
    assertEquals(longCode([sample]), [
      "x/long.ts:A static block 102",
      "x/long.ts:A.table initialiser 102",
      "x/long.ts:top-level ForOfStatement at line 207 102",
    ]);
  });
  const violations = (file: string, line: string) => layerViolations([factsOf(file, line)]);
  await t.step("`typeof import(...)` and `./../` are imports like the others", () => {
    assertEquals(violations("protocol/a.ts", 'type C = typeof import("../config/mod.ts");'), [
      "protocol/a.ts imports ../config/mod.ts: layer protocol/ (9) may not import config/ (7)",
      "protocol/a.ts imports ../config/mod.ts: protocol/ imports only text.ts",
    ]);
    assertEquals(violations("protocol/a.ts", 'import { x } from "./../secure_files/mod.ts";'), [
      "protocol/a.ts imports ./../secure_files/mod.ts: protocol/ imports only text.ts",
    ]);
    assertEquals(violations("protocol/a.ts", 'import { x } from "./b.ts";'), []);
  });
  await t.step("an import up the layers, sideways, or out of src/", () => {
    assertEquals(violations("config/a.ts", 'import { x } from "../mqtt/mod.ts";'), [
      "config/a.ts imports ../mqtt/mod.ts: layer config/ (7) may not import mqtt/ (6)",
    ]);
    assertEquals(violations("errors.ts", 'import { x } from "./text.ts";'), [
      "errors.ts imports ./text.ts: layer errors.ts (100) may not import text.ts (100)",
    ]);
    assertEquals(violations("config/a.ts", 'import { x } from "../../tests/support/mod.ts";'), [
      "config/a.ts imports ../../tests/support/mod.ts, outside src/",
    ]);
  });
  await t.step("the device never imports the emulator, nor the emulator the device", () => {
    assertEquals(violations("provisioning/a.ts", 'import "../emulator/mod.ts";'), [
      "provisioning/a.ts imports ../emulator/mod.ts: layer provisioning/ (5) may not import emulator/ (5)",
      "provisioning/a.ts imports ../emulator/mod.ts: the device never imports the emulator",
    ]);
    assertEquals(violations("commands/check.ts", 'await import("../emulator/mod.ts");'), [
      "commands/check.ts imports ../emulator/mod.ts: the device never imports the emulator",
    ]);
    assertEquals(violations("commands/emulator.ts", 'import "../emulator/mod.ts";'), []);
    assertEquals(violations("commands/emulator.ts", 'import "../config/mod.ts";'), [
      "commands/emulator.ts imports ../config/mod.ts: the emulator never imports the device",
    ]);
    assertEquals(violations("emulator/a.ts", 'import "../mqtt/packets.ts";'), [
      "emulator/a.ts imports ../mqtt/packets.ts: the emulator never imports the device",
    ]);
    assertEquals(violations("emulator/a.ts", 'import "../policy/mod.ts";'), []);
    assertEquals(violations("cli.ts", 'import "./commands/emulator.ts";'), []);
  });
  await t.step("a new top folder without a layer", () => {
    assertEquals(unplaced([factsOf("newthing/a.ts", "export const a = 1;\n")]), ["newthing/"]);
    assert(!unplaced(facts).length);
  });
});
