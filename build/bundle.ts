// SPDX-License-Identifier: Apache-2.0
/**
 * Bundles the CLI entry point into one CommonJS file for a Node.js single
 * executable application: every npm package inlined, only `node:` built-ins
 * left to `require`.
 *
 * @module
 */
import * as esbuild from "esbuild";
import { builtinModules } from "node:module";
import { relative, resolve } from "node:path";

/**
 * A module a bundle leaves out and loads, when first called, from the binary
 * it runs in (src/embedded.ts): the build appends it there.
 */
export interface EmbeddedModule {
  /** The module's absolute path, as importers resolve it. */
  path: string;
  /** The name it is appended under. */
  resource: string;
  /** The functions its importers call. */
  exports: readonly string[];
}

/** The V8 magic comment asking to compile every function with the script (and so into its code cache). */
const EAGER_COMPILE_HINT = "//# allFunctionsCalledOnLoad\n";

/** A finished bundle. */
export interface BundleResult {
  /** The bundle's JavaScript source. */
  code: Uint8Array;
  /** Source files that went into it, relative to the project root. */
  inputs: string[];
}

/**
 * The global the bundle reads its third-party notices from (src/notices.ts),
 * defined as a string constant when the bundle is minified.
 */
const NOTICES_GLOBAL = "FLEETPROV_THIRD_PARTY_NOTICES";

const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/**
 * Optional packages our dependencies `require` inside try/catch and work
 * without (debug: supports-color; ws: bufferutil, utf-8-validate).
 */
const OPTIONAL = new Set(["supports-color", "bufferutil", "utf-8-validate"]);

/**
 * Rewrites `import.meta.main` to a constant: true in the entry point, false
 * elsewhere. A CommonJS bundle has no `import.meta`, and a Deno-style
 * `if (import.meta.main)` guard would otherwise silently never run.
 */
function importMetaMainPlugin(entry: string): esbuild.Plugin {
  return {
    name: "import-meta-main",
    setup(build) {
      build.onLoad({ filter: /\.[cm]?tsx?$/ }, async (args) => {
        if (args.path.includes("/node_modules/")) return undefined;
        const source = await Deno.readTextFile(args.path);
        if (!source.includes("import.meta.main")) return undefined;
        const value = args.path === entry ? "true" : "false";
        return { contents: source.replaceAll("import.meta.main", value), loader: "ts" };
      });
    },
  };
}

/**
 * Replaces imports of embedded modules with loaders: each export becomes a
 * function that loads the module from the binary on first call.
 */
function embeddedModulesPlugin(root: string, modules: readonly EmbeddedModule[]): esbuild.Plugin {
  return {
    name: "embedded-modules",
    setup(build) {
      build.onResolve({ filter: /\.ts$/ }, (args) => {
        const path = resolve(args.resolveDir, args.path);
        const module = modules.find((m) => m.path === path);
        return module ? { path: module.resource, namespace: "embedded" } : undefined;
      });
      build.onLoad({ filter: /.*/, namespace: "embedded" }, (args) => {
        const module = modules.find((m) => m.resource === args.path)!;
        const loader = JSON.stringify(resolve(root, "src", "embedded.ts"));
        const lines = [
          `import { loadEmbedded } from ${loader};`,
          "let loaded: Record<string, (...args: unknown[]) => unknown> | undefined;",
          `const load = () => (loaded ??= loadEmbedded(${JSON.stringify(module.resource)}));`,
          ...module.exports.map((name) =>
            `export function ${name}(...args: unknown[]) { return load().${name}(...args); }`
          ),
        ];
        return { contents: lines.join("\n"), loader: "ts", resolveDir: root };
      });
    },
  };
}

/**
 * `await import("node:crypto")` (a built-in loaded only where needed) becomes
 * a lazy `require`: esbuild keeps dynamic imports of external modules as
 * `import()`, which in a single executable goes through Node's ES module
 * loader, costing a board milliseconds before the module itself.
 */
function lazyBuiltinsPlugin(): esbuild.Plugin {
  return {
    name: "lazy-builtins",
    setup(build) {
      build.onResolve(
        { filter: /^node:/ },
        (args) =>
          args.kind === "dynamic-import"
            ? { path: args.path, namespace: "lazy-builtin" }
            : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(args.path)});`,
        loader: "js",
      }));
    },
  };
}

/** Explains esbuild failures that have a known cause in this project. */
function explain(error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  if (message.includes("Top-level await")) {
    return new Error(
      `${message}\nA Node.js single executable runs one CommonJS script, which cannot use ` +
        `top-level await: move that code into an async function called from main.ts.`,
    );
  }
  return new Error(message);
}

/**
 * Bundles `entry` (an absolute path) for Node.js `nodeMajor`. Throws when the
 * bundle would need a module from disk at run time or uses `import.meta`,
 * which a single executable cannot provide. `embedNotices`, given the
 * bundle's inputs, returns the notices to embed (already packed);
 * `embedded` lists modules left out and loaded from the binary;
 * `eagerCompile` asks V8 to compile every function with the script, so a
 * code cache made from it holds them all; `keepNames` (default true) keeps
 * function and class names through minification, for code that reads them
 * (@peculiar/asn1-schema compares `constructor.name`); `defines` sets globals
 * such as `FLEETPROV_BUILD_TIME` (src/clock/mod.ts) as constants.
 */
export async function bundle(
  entry: string,
  root: string,
  options: {
    nodeMajor: number;
    embedNotices?: (inputs: string[]) => Promise<string>;
    embedded?: readonly EmbeddedModule[];
    eagerCompile?: boolean;
    keepNames?: boolean;
    /** Globals defined as constants (name → JavaScript expression), e.g. the build time. */
    defines?: Record<string, string>;
  },
): Promise<BundleResult> {
  let result: esbuild.BuildResult<{ write: false; metafile: true }>;
  let minified: esbuild.TransformResult;
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      absWorkingDir: root,
      bundle: true,
      platform: "node",
      format: "cjs",
      target: `node${options.nodeMajor}`,
      // Minified below, after scanning the readable output.
      minify: false,
      legalComments: "none",
      write: false,
      metafile: true,
      logLevel: "silent",
      plugins: [
        importMetaMainPlugin(entry),
        lazyBuiltinsPlugin(),
        ...(options.embedded?.length ? [embeddedModulesPlugin(root, options.embedded)] : []),
      ],
      // jsonc-parser's "main" is a UMD build whose factory gets `require` as a
      // parameter, hiding its relative requires from esbuild; use its ESM
      // parser and scanner, the only parts fleetprov calls (its formatter, in
      // main.js, builds tables at load time: a cost on every boot for nothing).
      alias: { "jsonc-parser": resolve(root, "build", "shims", "jsonc_parser.js") },
    });
    const notices = await options.embedNotices?.(Object.keys(result.metafile.inputs).sort());
    minified = await esbuild.transform(result.outputFiles[0].text, {
      define: {
        ...options.defines,
        ...(notices === undefined ? {} : { [NOTICES_GLOBAL]: JSON.stringify(notices) }),
      },
      minify: true,
      keepNames: options.keepNames ?? true,
      legalComments: "none",
      format: "cjs",
      platform: "node",
      target: `node${options.nodeMajor}`,
    });
  } catch (error) {
    throw explain(error);
  } finally {
    await esbuild.stop();
  }
  const problems = result.warnings
    .filter((w) => w.text.includes("import.meta"))
    .map((w) => `${w.location?.file}:${w.location?.line}: ${w.text}`);
  const [output] = Object.values(result.metafile.outputs);
  for (const imported of output.imports) {
    if (imported.external && !BUILTINS.has(imported.path) && !OPTIONAL.has(imported.path)) {
      problems.push(`the bundle would require "${imported.path}" from disk at run time`);
    }
  }
  // Requires esbuild could not see (e.g. inside UMD wrappers) survive as text;
  // a single executable can only require built-ins.
  for (
    const match of result.outputFiles[0].text.matchAll(/\brequire\d*\(\s*["'`]([^"'`]+)["'`]\s*\)/g)
  ) {
    const name = match[1];
    if (!BUILTINS.has(name) && !OPTIONAL.has(name)) {
      problems.push(`the bundle still calls require("${name}"), which fails at run time`);
    }
  }
  if (problems.length > 0) {
    throw new Error(
      `Cannot bundle ${relative(root, entry)} for a single executable:\n  ${problems.join("\n  ")}`,
    );
  }
  return {
    code: new TextEncoder().encode(
      (options.eagerCompile ? EAGER_COMPILE_HINT : "") + minified.code,
    ),
    inputs: Object.keys(result.metafile.inputs).sort(),
  };
}
