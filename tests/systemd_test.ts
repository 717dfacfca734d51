// SPDX-License-Identifier: Apache-2.0
/**
 * The systemd units in build/systemd, read statically: `systemd-analyze
 * verify` accepts them in a root holding the real x64 binary at
 * /usr/bin/fleetprov, boot does not wait for provisioning, and the restart
 * policy matches the exit codes in src/errors.ts. tests/nspawn_test.ts boots
 * them under a real systemd.
 *
 * @module
 */
import { assert, assertEquals } from "./support/assert.ts";
import { join } from "node:path";
import { build } from "../build/mod.ts";
import { ExitCode } from "../src/errors.ts";
import { findTool, ROOT, tempDir } from "./support/mod.ts";
import { parseUnit } from "./support/systemd_unit.ts";

const UNIT_PATH = join(ROOT, "build", "systemd", "fleetprov.service");
const TARGET_PATH = join(ROOT, "build", "systemd", "fleetprov-provisioned.target");
const systemdAnalyze = findTool(["/usr/bin/systemd-analyze", "/bin/systemd-analyze"], "systemd");

/**
 * Runs `systemd-analyze verify` on `unitText` installed in a fresh root that
 * has the system's targets, fleetprov-provisioned.target, /bin/sh and the
 * built x64 binary as /usr/bin/fleetprov.
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
  // ExecStopPost= runs /bin/sh.
  await Deno.mkdir(join(root, "bin"));
  await Deno.copyFile(await Deno.realPath("/bin/sh"), join(root, "bin", "sh"));
  await Deno.writeTextFile(join(unitDir, "fleetprov.service"), unitText);
  await Deno.copyFile(TARGET_PATH, join(unitDir, "fleetprov-provisioned.target"));
  const result = await new Deno.Command(systemdAnalyze!, {
    args: [
      "verify",
      `--root=${root}`,
      "/etc/systemd/system/fleetprov.service",
      "/etc/systemd/system/fleetprov-provisioned.target",
    ],
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
  name: "systemd units: systemd-analyze verify reports nothing, and catches a broken copy",
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

Deno.test("systemd unit: boot does not wait for it; services that need the certificate do", async () => {
  const unit = parseUnit(await Deno.readTextFile(UNIT_PATH));
  const list = (key: string) => (unit.get(key) ?? "").split(" ").filter((v) => v !== "");
  // Started as soon as fleetprov runs (the start job does not last the run) ...
  assertEquals(unit.get("Service.Type"), "exec");
  assertEquals(unit.get("Service.RemainAfterExit"), undefined);
  // ... and multi-user.target, which wants it, is not ordered after it.
  assertEquals(unit.get("Install.WantedBy"), "multi-user.target");
  assertEquals(unit.get("Unit.DefaultDependencies"), "no");
  // A service's default dependencies, restated.
  assert(list("Unit.Requires").includes("sysinit.target"), "Requires= lacks sysinit.target");
  for (
    const after of ["sysinit.target", "basic.target", "network-online.target", "time-sync.target"]
  ) {
    assert(list("Unit.After").includes(after), `After= lacks ${after}`);
  }
  assertEquals(list("Unit.Conflicts"), ["shutdown.target"]);
  assertEquals(list("Unit.Before"), ["shutdown.target"]);
  assertEquals(list("Unit.Wants"), ["network-online.target"]);
  // Success, and only success, starts the target the certificate's users hang off.
  assertEquals(
    unit.get("Service.ExecStopPost"),
    `/bin/sh -c 'if [ "$SERVICE_RESULT" = success ]; then exec systemctl start --no-block fleetprov-provisioned.target; fi'`,
  );
  assertEquals(unit.get("Unit.OnSuccess"), undefined);
  const target = parseUnit(await Deno.readTextFile(TARGET_PATH));
  assertEquals(target.get("Unit.After"), "fleetprov.service");
  assert(![...target.keys()].some((key) => key.startsWith("Install.")), "the target is enabled");
});

Deno.test("systemd unit: restarts only what can heal, for as long as it takes", async () => {
  const unit = parseUnit(await Deno.readTextFile(UNIT_PATH));
  assertEquals(unit.get("Service.Restart"), "on-failure");
  assert(Number.parseInt(unit.get("Service.RestartSec") ?? "0") >= 10, "RestartSec too short");
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
