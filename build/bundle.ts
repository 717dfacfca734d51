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
import { relative } from "node:path";

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
 * bundle's inputs, returns the notices to embed (already packed).
 */
export async function bundle(
  entry: string,
  root: string,
  options: { nodeMajor: number; embedNotices?: (inputs: string[]) => Promise<string> },
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
      plugins: [importMetaMainPlugin(entry)],
      // jsonc-parser's "main" is a UMD build whose factory gets `require` as a
      // parameter, hiding its relative requires from esbuild; use its ESM build.
      alias: { "jsonc-parser": "jsonc-parser/lib/esm/main.js" },
    });
    const notices = await options.embedNotices?.(Object.keys(result.metafile.inputs).sort());
    minified = await esbuild.transform(result.outputFiles[0].text, {
      define: notices === undefined ? {} : { [NOTICES_GLOBAL]: JSON.stringify(notices) },
      minify: true,
      keepNames: true,
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
    code: new TextEncoder().encode(minified.code),
    inputs: Object.keys(result.metafile.inputs).sort(),
  };
}
