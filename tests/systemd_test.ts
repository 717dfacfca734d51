// SPDX-License-Identifier: Apache-2.0
/**
 * The systemd unit in build/systemd: `systemd-analyze verify` accepts it in a
 * root holding the real x64 binary at /usr/bin/fleetprov, and its restart
 * policy matches the exit codes in src/errors.ts.
 *
 * @module
 */
import { assert, assertEquals } from "./support/assert.ts";
import { join } from "node:path";
import { build } from "../build/mod.ts";
import { ExitCode } from "../src/errors.ts";
import { findTool, ROOT, tempDir } from "./support/mod.ts";

const UNIT_PATH = join(ROOT, "build", "systemd", "fleetprov.service");
const systemdAnalyze = findTool(["/usr/bin/systemd-analyze", "/bin/systemd-analyze"], "systemd");

/** `[Section] Key=Value` lines of a unit file, keyed "Section.Key" (repeats joined by " "). */
function parseUnit(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const at = line.indexOf("=");
    const key = `${section}.${line.slice(0, at)}`;
    const value = line.slice(at + 1);
    entries.set(key, entries.has(key) ? `${entries.get(key)} ${value}` : value);
  }
  return entries;
}

/**
 * Runs `systemd-analyze verify` on `unitText` installed in a fresh root that
 * has the system's targets and the built x64 binary as /usr/bin/fleetprov.
 */
async function verify(unitText: string): Promise<{ code: number; output: string }> {
  const root = tempDir("fleetprov-systemd-root-");
  const unitDir = join(root, "etc", "systemd", "system");
  const libDir = join(root, "usr", "lib", "systemd", "system");
  await Deno.mkdir(unitDir, { recursive: true });
  await Deno.mkdir(libDir, { recursive: true });
  await Deno.mkdir(join(root, "usr", "bin"), { recursive: true });
  for await (const entry of Deno.readDir("/usr/lib/systemd/system")) {
    if (entry.name.endsWith(".target")) {
      await Deno.copyFile(join("/usr/lib/systemd/system", entry.name), join(libDir, entry.name));
    }
  }
  const report = await build({ targets: ["x64"], log: () => {} });
  // A link or copy, not a symlink: systemd resolves symlinks inside the root.
  const installed = join(root, "usr", "bin", "fleetprov");
  await Deno.link(report.targets[0].path, installed)
    .catch(() => Deno.copyFile(report.targets[0].path, installed));
  await Deno.writeTextFile(join(unitDir, "fleetprov.service"), unitText);
  const result = await new Deno.Command(systemdAnalyze!, {
    args: ["verify", `--root=${root}`, "/etc/systemd/system/fleetprov.service"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(root, { recursive: true });
  const decoder = new TextDecoder();
  return {
    code: result.code,
    output: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

Deno.test({
  name: "systemd unit: systemd-analyze verify reports nothing, and catches a broken copy",
  ignore: systemdAnalyze === undefined,
  async fn() {
    const unit = await Deno.readTextFile(UNIT_PATH);
    assertEquals(await verify(unit), { code: 0, output: "" });

    // The same check on a broken copy says so: the clean result above means something.
    const broken = await verify(unit.replace("RestartSec=30s", "RestartSec=soon"));
    assert(broken.output.includes("RestartSec") || broken.output.includes("soon"), broken.output);
    const missing = await verify(unit.replace("/usr/bin/fleetprov", "/usr/bin/fleetprov-missing"));
    assert(missing.code !== 0, `a missing ExecStart binary passed: ${missing.output}`);
  },
});

Deno.test("systemd unit: oneshot after network and time sync, restarts only what can heal", async () => {
  const unit = parseUnit(await Deno.readTextFile(UNIT_PATH));
  assertEquals(unit.get("Service.Type"), "oneshot");
  assertEquals(unit.get("Service.RemainAfterExit"), "yes");
  assertEquals(unit.get("Service.Restart"), "on-failure");
  assert(Number.parseInt(unit.get("Service.RestartSec") ?? "0") >= 10, "RestartSec too short");
  for (const after of ["network-online.target", "time-sync.target"]) {
    assert(unit.get("Unit.After")?.split(" ").includes(after), `After= lacks ${after}`);
  }
  assert(unit.get("Unit.Wants")?.split(" ").includes("network-online.target"));
  assert(unit.get("Unit.Before")?.split(" ").includes("aws-iot-device-client.service"));
  assertEquals(unit.get("Install.WantedBy"), "multi-user.target");
  assertEquals(unit.get("Unit.StartLimitIntervalSec"), "0");

  // Retrying cannot fix a rejection, a bad config or a bad file mode; it can
  // fix the network, a held lock or a transient internal failure.
  const prevented = (unit.get("Service.RestartPreventExitStatus") ?? "").split(" ")
    .map(Number).sort((a, b) => a - b);
  assertEquals<number[]>(prevented, [ExitCode.Rejected, ExitCode.Config, ExitCode.Permission]);
  for (const retried of [ExitCode.Network, ExitCode.Locked, ExitCode.Internal]) {
    assert(!prevented.includes(retried), `exit ${retried} must be retried`);
  }

  const [binary, ...args] = (unit.get("Service.ExecStart") ?? "").split(" ");
  assertEquals(binary, "/usr/bin/fleetprov");
  assertEquals(args, ["--config-file", "/etc/fleetprov/fleetprov.conf"]);
  assertEquals(unit.get("Unit.ConditionPathExists"), "/etc/fleetprov/fleetprov.conf");
});
