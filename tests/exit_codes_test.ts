// SPDX-License-Identifier: Apache-2.0
/**
 * One exit-code story, told in four places that must agree: src/errors.ts
 * (ExitCode, NO_RESTART_EXIT_CODES), the systemd units that run fleetprov
 * (fleetprov.service, fleetprov-rotate.service: RestartPreventExitStatus and
 * their comments), the README (the "Exit codes" table, every
 * `RestartPreventExitStatus=` it quotes, the field conditions' exit and systemd
 * columns) and `--help`. systemd_test.ts walks each code with a real run.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT_CODES } from "../src/commands/help.ts";
import { ExitCode, NO_RESTART_EXIT_CODES } from "../src/errors.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { ROOT } from "./support/mod.ts";
import { parseUnit } from "./support/systemd_unit.ts";

const README = readFileSync(join(ROOT, "README.md"), "utf8");
/** The units that run fleetprov and restart it by its exit code. */
const UNITS = ["fleetprov.service", "fleetprov-rotate.service"].map((name) => ({
  name,
  text: readFileSync(join(ROOT, "build", "systemd", name), "utf8"),
}));
const CODES = Object.values(ExitCode).sort((a, b) => a - b);
const NO_RESTART = [...NO_RESTART_EXIT_CODES].sort((a, b) => a - b);

/** The rows of the markdown table that follows `heading`'s first `| header`, as cells. */
function tableAfter(heading: string): string[][] {
  const at = README.indexOf(heading);
  assert(at >= 0, `README has ${heading}`);
  const start = README.indexOf("\n|", at) + 1;
  const lines = README.slice(start).split("\n");
  const rows = lines.slice(2, lines.findIndex((l) => !l.startsWith("|")));
  return rows.map((row) => row.split("|").slice(1, -1).map((cell) => cell.trim()));
}

Deno.test("exit codes: the README's table lists every code, and says 'no restart' exactly for NO_RESTART_EXIT_CODES", () => {
  const rows = tableAfter("## Exit codes");
  assertEquals(rows.map((r) => Number(r[0])), CODES);
  for (const [code, , , restarts] of rows) {
    const expected = Number(code) === ExitCode.Ok
      ? "—"
      : NO_RESTART.includes(Number(code) as typeof NO_RESTART[number])
      ? "no"
      : "yes";
    assertEquals(restarts, expected, `README: exit ${code}`);
  }
});

for (const { name, text } of UNITS) {
  Deno.test(`exit codes: ${name} prevents restarts of NO_RESTART_EXIT_CODES, its comment and the README's quotes say the same`, () => {
    const unit = parseUnit(text);
    assertEquals(unit.get("Service.Restart"), "on-failure");
    const prevented = unit.get("Service.RestartPreventExitStatus")!;
    assertEquals(prevented.split(" ").map(Number), NO_RESTART);
    const quoted = [...README.matchAll(/RestartPreventExitStatus=([\d ]+)`/g)].map((m) => m[1]);
    assert(quoted.length >= 3, "the README quotes the unit");
    for (const q of quoted) assertEquals(q.trim(), prevented);
    // The unit's comment: one "#   NN ... -> ..." line per code, "no restart" for the prevented ones.
    const commented = [...text.matchAll(/^#\s+(\d+)\s+.*?->\s*(.*)$/gm)].map((m) => ({
      code: Number(m[1]),
      restarts: !/no restart/.test(m[2]),
    }));
    assertEquals(commented.map((c) => c.code), CODES);
    for (const c of commented) {
      if (c.code === 0) continue;
      assertEquals(
        c.restarts,
        !NO_RESTART.includes(c.code as typeof NO_RESTART[number]),
        `${name} comment: ${c.code}`,
      );
    }
  });
}

Deno.test("exit codes: the README's field conditions use real codes, and 'none' exactly where systemd does not restart", () => {
  const rows = tableAfter("**Field conditions.**");
  assert(rows.length >= 10, "the field conditions table");
  for (const [condition, , exit, systemd] of rows) {
    if (exit === "—") continue;
    const code = Number(exit) as typeof CODES[number];
    assert(CODES.includes(code), `${condition}: exit ${exit}`);
    const restarts = !NO_RESTART.includes(code as typeof NO_RESTART[number]);
    // SIGTERM is systemd stopping the unit: it restarts nothing while stopping.
    if (restarts) assert(/^restart|^none while stopping/.test(systemd), `${condition}: ${systemd}`);
    else assert(/^none/.test(systemd), `${condition}: ${systemd}`);
  }
});

Deno.test("exit codes: --help lists every code", () => {
  assertEquals(EXIT_CODES.map(([code]) => code), CODES);
});
