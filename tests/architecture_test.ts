// SPDX-License-Identifier: Apache-2.0
/**
 * The shape of src/, checked on every test run (ARCHITECTURE.md):
 * - no cycle between folders (each folder of src/, and each file directly in
 *   src/, is one node; every import counts: static, type-only, re-export and
 *   dynamic `import()`);
 * - src/protocol/ imports nothing of fleetprov's but itself;
 * - no function over 80 lines and no file over 400 lines, except the
 *   commented allow-list below.
 *
 * The source is parsed with Deno's own TypeScript parser (Deno.lint.runPlugin),
 * so strings, comments and regular expressions cannot fool the measurement.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { assertEquals } from "./support/assert.ts";
import { ROOT } from "./support/mod.ts";

const SRC = join(ROOT, "src");

/** Longest function, in lines (first to last line of its body, nested functions included). */
const MAX_FUNCTION_LINES = 80;
/** Longest file, in lines. */
const MAX_FILE_LINES = 400;

/**
 * Functions allowed past MAX_FUNCTION_LINES, as "path:name" with the reason.
 * Keep it empty unless a function truly reads better whole.
 */
const LONG_FUNCTIONS: Record<string, string> = {};

/** Files allowed past MAX_FILE_LINES, with the reason. Keep it empty if at all possible. */
const LONG_FILES: Record<string, string> = {};

/** A function found in the source. */
export interface FunctionSize {
  file: string;
  name: string;
  lines: number;
}

/** What one source file holds. */
export interface FileFacts {
  /** Path relative to src/. */
  file: string;
  lines: number;
  functions: FunctionSize[];
  /** Import specifiers (static, type-only, re-exports, dynamic). */
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
  source?: { value?: unknown } | null;
};

function functionName(node: Node): string {
  if (node.id?.name) return node.id.name;
  const parent = node.parent;
  if (parent?.type === "VariableDeclarator") return (parent.id as { name?: string })?.name ?? "?";
  if (
    parent?.type === "MethodDefinition" || parent?.type === "Property" ||
    parent?.type === "PropertyDefinition"
  ) {
    return parent.key?.name ?? String(parent.key?.value ?? "?");
  }
  return "(anonymous)";
}

/** Parses one file and returns its size, its functions and its imports. */
export function factsOf(file: string, text: string): FileFacts {
  const lineOf = (offset: number) => text.slice(0, offset).split("\n").length;
  const functions: FunctionSize[] = [];
  const imports: string[] = [];
  const importSource = (node: Node) => {
    const value = node.source?.value;
    if (typeof value === "string") imports.push(value);
  };
  const plugin: Deno.lint.Plugin = {
    name: "architecture",
    rules: {
      facts: {
        create() {
          return {
            "FunctionDeclaration, FunctionExpression, ArrowFunctionExpression"(node: unknown) {
              const n = node as Node;
              functions.push({
                file,
                name: functionName(n),
                lines: lineOf(n.range[1]) - lineOf(n.range[0]) + 1,
              });
            },
            "ImportDeclaration, ExportNamedDeclaration, ExportAllDeclaration, ImportExpression"(
              node: unknown,
            ) {
              importSource(node as Node);
            },
          };
        },
      },
    },
  };
  Deno.lint.runPlugin(plugin, file, text);
  const lines = text.endsWith("\n") ? text.split("\n").length - 1 : text.split("\n").length;
  return { file, lines, functions, imports };
}

/** The graph node of a file: its top folder under src/, or the file itself at the top. */
export function nodeOf(file: string): string {
  const first = file.split("/")[0];
  return first === file ? file : `${first}/`;
}

/** Folder-level import edges "from → to" (to ≠ from), from the facts of every file. */
export function folderEdges(facts: FileFacts[]): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const f of facts) {
    const from = nodeOf(f.file);
    for (const spec of f.imports) {
      if (!spec.startsWith(".")) continue;
      const target = relative(SRC, resolve(SRC, dirname(f.file), spec));
      if (target.startsWith("..")) continue;
      const to = nodeOf(target);
      if (to === from) continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from)!.add(to);
    }
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

const facts = sourceFiles(SRC).map((file) => factsOf(file, readFileSync(join(SRC, file), "utf8")));

Deno.test("architecture: the folders of src/ import each other without cycles", () => {
  assertEquals(cycles(folderEdges(facts)), []);
});

Deno.test("architecture: src/protocol/ imports only itself and packages", () => {
  const outside = facts
    .filter((f) => f.file.startsWith("protocol/"))
    .flatMap((f) =>
      f.imports
        .filter((spec) => spec.startsWith(".") && !spec.startsWith("./"))
        .map((spec) => `${f.file} imports ${spec}`)
    );
  assertEquals(facts.some((f) => f.file.startsWith("protocol/")), true);
  assertEquals(outside, []);
});

Deno.test(`architecture: no function in src/ is longer than ${MAX_FUNCTION_LINES} lines`, () => {
  const long = facts.flatMap((f) => f.functions)
    .filter((fn) => fn.lines > MAX_FUNCTION_LINES && !(`${fn.file}:${fn.name}` in LONG_FUNCTIONS))
    .map((fn) => `${fn.file}:${fn.name} ${fn.lines}`);
  assertEquals(long, []);
});

Deno.test(`architecture: no file in src/ is longer than ${MAX_FILE_LINES} lines`, () => {
  const long = facts
    .filter((f) => f.lines > MAX_FILE_LINES && !(f.file in LONG_FILES))
    .map((f) => `${f.file} ${f.lines}`);
  assertEquals(long, []);
});

Deno.test("architecture: the checks see what they measure", () => {
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
      "",
    ].join("\n"),
  );
  assertEquals(sample.lines, 8);
  assertEquals(sample.imports, ["../y/b.ts", "./c.ts", "../z/mod.ts"]);
  assertEquals(sample.functions.map((f) => [f.name, f.lines]), [["outer", 6], ["inner", 3]]);
  assertEquals(
    cycles(
      new Map([["a/", new Set(["b/"])], ["b/", new Set(["c.ts"])], ["c.ts", new Set(["a/"])]]),
    ),
    ["a/ → b/ → c.ts → a/"],
  );
  assertEquals(cycles(new Map([["a/", new Set(["b/"])], ["b/", new Set(["c.ts"])]])), []);
});
