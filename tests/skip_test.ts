// SPDX-License-Identifier: Apache-2.0
/**
 * Nothing is skipped in CI: a skip for a missing prerequisite goes through
 * tests/support/skip.ts (or findTool / canMount, built on it), which fails
 * under the switch `.ci/run` sets; and `.ci/run` fails a run that reports any
 * ignored test, counting them on its last line.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { ROOT, sourceFilesUnder, tempDir } from "./support/mod.ts";

/** Runs skipWhenMissing(missing) in a fresh process with `env`; its output and exit code. */
async function probe(missing: string | undefined, env: Record<string, string>) {
  const script = `import { skipWhenMissing } from ${
    JSON.stringify(join(ROOT, "tests", "support", "skip.ts"))
  };
console.log(skipWhenMissing(${
    JSON.stringify(missing)
  }, { require: "FLEETPROV_REQUIRE_TOOLS", what: "the probe" }));`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    env: { NO_COLOR: "1", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test("skipWhenMissing: present runs, missing skips loudly, missing under the CI switch fails", async () => {
  const home = { HOME: tempDir(), DENO_DIR: Deno.env.get("DENO_DIR") ?? "/root/.cache/deno" };
  const present = await probe(undefined, home);
  assertEquals([present.code, present.stdout.trim()], [0, "false"], present.stderr);
  const skipped = await probe("the frobnicator is missing", home);
  assertEquals([skipped.code, skipped.stdout.trim()], [0, "true"], skipped.stderr);
  assertMatch(skipped.stderr, /\*\*\* SKIPPING the probe: the frobnicator is missing \*\*\*/);
  const ci = await probe("the frobnicator is missing", {
    ...home,
    FLEETPROV_REQUIRE_TOOLS: "1",
  });
  assert(ci.code !== 0, `under FLEETPROV_REQUIRE_TOOLS=1 the skip fails:\n${ci.stdout}`);
  assertMatch(
    ci.stderr,
    /FLEETPROV_REQUIRE_TOOLS=1, but the probe cannot run: the frobnicator is missing/,
  );
});

/** `.ci/run --summary LOG STATUS`: its last line and exit code. */
async function summary(log: string, status: number): Promise<{ line: string; code: number }> {
  const file = join(tempDir(), "log");
  Deno.writeTextFileSync(file, log);
  const output = await new Deno.Command("bash", {
    args: [join(ROOT, ".ci", "run"), "--summary", file, String(status)],
    stdout: "piped",
  }).output();
  const lines = new TextDecoder().decode(output.stdout).trim().split("\n");
  return { line: lines.at(-1)!, code: output.code };
}

Deno.test(".ci/run ends with 'N passed, N failed, N ignored' and fails a run with an ignored test", async () => {
  assertEquals(await summary("ok | 412 passed (90 steps) | 0 failed (9m)\n", 0), {
    line: "412 passed, 0 failed, 0 ignored",
    code: 0,
  });
  assertEquals(await summary("ok | 410 passed | 0 failed | 2 ignored (9m)\n", 0), {
    line: "410 passed, 1 failed, 2 ignored",
    code: 1,
  });
  assertEquals(await summary("FAILED | 400 passed | 12 failed (9m)\n", 1), {
    line: "400 passed, 12 failed, 0 ignored",
    code: 1,
  });
  assertEquals(await summary("error: the module failed to load\n", 1), {
    line: "0 passed, 1 failed, 0 ignored",
    code: 1,
  });
  // CI sets every switch.
  const run = readFileSync(join(ROOT, ".ci", "run"), "utf8");
  for (const name of ["QEMU", "TOOLS", "YOCTO"]) {
    assertMatch(run, new RegExp(`^export .*FLEETPROV_REQUIRE_${name}=1`, "m"));
  }
});

/** What a skip condition must come from: the helpers that fail under CI's switches. */
const HELPERS = /skipWhenMissing\(|findTool\(|canMount\(|REQUIRE_/;

/** The definition of `name` in `text` (a const, let or function), up to its end, or "". */
function definitionOf(text: string, name: string): string {
  const at = new RegExp(`^\\s*(?:export )?(?:const|let|function) ${name}\\b`, "m").exec(text);
  if (!at) return "";
  const rest = text.slice(at.index);
  const end = rest.search(/;\n(?=\S|\n)|\n}\n/);
  return end < 0 ? rest : rest.slice(0, end + 2);
}

/**
 * True when `expression` (or a name it uses, followed through its definitions
 * in `text`, else in the shared helpers of tests/support/) calls a helper.
 */
function throughHelpers(text: string, expression: string, depth = 0): boolean {
  if (HELPERS.test(expression)) return true;
  if (depth > 3) return false;
  const names = new Set(expression.match(/\b[A-Za-z_]\w*\b/g) ?? []);
  return [...names].some((name) => {
    const definition = definitionOf(text, name) || definitionOf(SUPPORT, name);
    return definition !== "" && throughHelpers(text, definition.slice(name.length), depth + 1);
  });
}

/** The shared test helpers' source, where an imported skip condition is defined. */
const SUPPORT = sourceFilesUnder(join(ROOT, "tests", "support"))
  .map((file) => readFileSync(join(ROOT, "tests", "support", file), "utf8")).join("\n");

Deno.test("every ignore: of the test suite goes through a skip CI turns into a failure", () => {
  const offenders: string[] = [];
  let seen = 0;
  for (const file of sourceFilesUnder(join(ROOT, "tests"))) {
    if (file.endsWith("skip_test.ts") || file.endsWith("support/skip.ts")) continue;
    const text = readFileSync(join(ROOT, "tests", file), "utf8");
    for (const match of text.matchAll(/\bignore: ([^\n]*)/g)) {
      seen++;
      if (!throughHelpers(text, match[1])) offenders.push(`${file}: ignore: ${match[1]}`);
    }
  }
  assert(seen >= 15, `the scan sees the suite's skips (${seen})`);
  assertEquals(offenders, []);
  // The scan itself: a silent skip is caught.
  assert(!throughHelpers("const isRoot = Deno.uid() === 0;\n", "!isRoot"));
  assert(throughHelpers('const t = findTool(["/x"], "x");\n', "t === undefined"));
  // A condition imported from tests/support/ is followed there.
  assert(throughHelpers("", "libfaketime === undefined"));
  assert(!throughHelpers("", "notDefinedAnywhere === undefined"));
});

/** How many tests `tests/bitbake_test.ts` registers under `env` (all filtered out, none run). */
async function bitbakeTests(env: Record<string, string>): Promise<number> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--filter", "/^no test has this name$/", "tests/bitbake_test.ts"],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  const filtered = /\| (\d+) filtered out/.exec(text);
  assert(filtered, `deno test printed no count:\n${text}`);
  return Number(filtered[1]);
}

Deno.test("FLEETPROV_SKIP_BITBAKE takes the BitBake tests away only on GitHub Actions", async () => {
  // Without CI's switches: where the archives are missing (GitHub's ci job) the tests load, ignored.
  const off = {
    FLEETPROV_SKIP_BITBAKE: "",
    GITHUB_ACTIONS: "",
    FLEETPROV_REQUIRE_YOCTO: "",
    FLEETPROV_REQUIRE_TOOLS: "",
  };
  const all = await bitbakeTests(off);
  const here = await bitbakeTests({ ...off, FLEETPROV_SKIP_BITBAKE: "1" });
  const github = await bitbakeTests({
    ...off,
    FLEETPROV_SKIP_BITBAKE: "1",
    GITHUB_ACTIONS: "true",
  });
  assert(all >= 3, `the BitBake tests are registered (${all})`);
  assertEquals(here, all, "outside GitHub Actions the switch takes nothing away");
  assert(github < all, `on GitHub Actions the delegated tests are not registered (${github})`);
});
