// SPDX-License-Identifier: Apache-2.0
/**
 * A config file the user running fleetprov may not read (EACCES) is a
 * permission problem: exit 77 (README "Exit codes"), one line, and `check`
 * says the same. Root reads every file, so the CLI runs as nobody (setpriv).
 * (EIO, 74, and the files that cannot be parsed: hostile_input_test.ts and
 * check_test.ts.)
 *
 * @module
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ExitCode } from "../src/errors.ts";
import { assertEquals, assertMatch } from "./support/assert.ts";
import { fleetprovCommand, ROOT, skipWhenMissing, tempDir } from "./support/mod.ts";

function setprivMissing(): string | undefined {
  if (Deno.uid() !== 0) return "it switches to nobody, which needs root (CI runs as root).";
  try {
    const out = new Deno.Command("setpriv", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return out.success ? undefined : "setpriv --version failed.";
  } catch {
    return "setpriv is missing: install the Debian package util-linux.";
  }
}

/** Runs the CLI as nobody (uid 65534) with a home of its own. */
async function runAsNobody(args: string[], dir: string) {
  const bin = Deno.env.get("FLEETPROV_BIN");
  const { command, args: full } = bin ? fleetprovCommand(args, { bin }) : {
    command: Deno.execPath(),
    args: ["run", "-A", "--quiet", "--cached-only", join(ROOT, "main.ts"), ...args],
  };
  const denoDir = join(dir, "deno");
  mkdirSync(denoDir, { mode: 0o777, recursive: true });
  chmodSync(denoDir, 0o777);
  const output = await new Deno.Command("setpriv", {
    args: ["--reuid=65534", "--regid=65534", "--clear-groups", command, ...full],
    env: { HOME: dir, DENO_DIR: denoDir, NO_COLOR: "1", LOCK_FILE_PATH: dir },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test({
  name: "a config file the user may not read (EACCES): exit 77, one line, in a run and in check",
  ignore: skipWhenMissing(setprivMissing(), {
    require: "FLEETPROV_REQUIRE_TOOLS",
    what: "the EACCES config file test",
  }),
  async fn() {
    const dir = tempDir("fleetprov-eacces-");
    chmodSync(dir, 0o755);
    const conf = join(dir, "fleetprov.conf");
    writeFileSync(conf, "{}\n");
    chmodSync(conf, 0o600); // root's, unreadable to nobody
    const line = new RegExp(
      `^fleetprov: Config file ${conf} cannot be read: permission denied \\(EACCES\\); check the owner and mode of that path and of its directory\\.$`,
    );
    const run = await runAsNobody(["--config-file", conf], dir);
    assertEquals(run.code, ExitCode.NoPermission, run.stderr);
    assertEquals(run.stderr.trim().split("\n").length, 1, run.stderr);
    assertMatch(run.stderr.trim(), line);
    const check = await runAsNobody(["check", "--config-file", conf], dir);
    assertEquals(check.code, ExitCode.NoPermission, check.stderr);
    const lines = check.stderr.trim().split("\n");
    assertEquals(lines.length, 2, check.stderr);
    assertMatch(lines[0], line);
    assertEquals(lines[1], "fleetprov check: 1 problem(s); a run would exit with code 77.");
  },
});
