// SPDX-License-Identifier: Apache-2.0
/**
 * The systemd units in build/systemd, read statically: `systemd-analyze
 * verify` accepts them in a root holding the real x64 binary at
 * /usr/bin/fleetprov, boot does not wait for provisioning, and the restart
 * policy matches the exit codes in src/errors.ts, and every exit code, reached
 * by a real run, gets a restart exactly when time can heal it.
 * tests/nspawn_test.ts boots them under a real systemd.
 *
 * @module
 */
import { assert, assertEquals } from "./support/assert.ts";
import { join } from "node:path";
import { build } from "../build/mod.ts";
import { ExitCode, NO_RESTART_EXIT_CODES } from "../src/errors.ts";
import { mkdirSync, readFileSync, symlinkSync } from "node:fs";
import {
  boardEmulator,
  canMount,
  configDirOf,
  deviceArgs,
  deviceHome,
  findTool,
  GIVE_UP_FAST,
  mountTmpfs,
  ROOT,
  runFleetprov,
  runtimeConfigPathOf,
  tempDir,
  writeWithMode,
} from "./support/mod.ts";
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
  assertEquals<number[]>(prevented, [...NO_RESTART_EXIT_CODES].sort((a, b) => a - b));
  assertEquals<number[]>(prevented, [
    ExitCode.Rejected,
    ExitCode.CantCreate,
    ExitCode.IoError,
    ExitCode.NoPermission,
    ExitCode.Config,
  ]);
  for (const retried of [ExitCode.TempFail, ExitCode.Software]) {
    assert(!prevented.includes(retried), `exit ${retried} must be retried`);
  }

  const [binary, ...args] = (unit.get("Service.ExecStart") ?? "").split(" ");
  assertEquals(binary, "/usr/bin/fleetprov");
  assertEquals(args, ["--config-file", "/etc/fleetprov/fleetprov.conf"]);
  assertEquals(unit.get("Unit.ConditionPathExists"), "/etc/fleetprov/fleetprov.conf");
});

/** What systemd does with an exit code under the unit: Restart=on-failure minus RestartPreventExitStatus. */
function restartsOn(unit: Map<string, string>, code: number): boolean {
  assertEquals(unit.get("Service.Restart"), "on-failure");
  const prevented = (unit.get("Service.RestartPreventExitStatus") ?? "").split(" ").map(Number);
  return code !== 0 && !prevented.includes(code);
}

/** The rule: systemd restarts what time (or a fix in the cloud) can heal, and our own bugs. */
const HEALS_WITH_TIME: Record<number, boolean> = {
  [ExitCode.Ok]: false,
  [ExitCode.Rejected]: false,
  [ExitCode.Software]: true,
  [ExitCode.CantCreate]: false,
  [ExitCode.IoError]: false,
  [ExitCode.TempFail]: true,
  [ExitCode.NoPermission]: false,
  [ExitCode.Config]: false,
};

Deno.test({
  name:
    "exit codes: each one reached by a real run, and the unit restarts exactly those time can heal",
  ignore: !canMount(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const unit = parseUnit(await Deno.readTextFile(UNIT_PATH));
    const emulator = await boardEmulator();
    const disk = mountTmpfs(512);
    const scratch = tempDir("fleetprov-codes-");
    const looseKey = join(scratch, "claim-0644.key");
    writeWithMode(looseKey, readFileSync(emulator.claim.keyPath, "utf8"), 0o644);
    const eioHome = deviceHome();
    mkdirSync(configDirOf(eioHome), { mode: 0o745 });
    // A read the kernel fails with EIO, as a failing flash would.
    symlinkSync("/proc/self/mem", runtimeConfigPathOf(eioHome));
    const roHome = join(disk.path, "home");
    mkdirSync(roHome, { mode: 0o700 });
    disk.setReadOnly(true);
    const cases: {
      code: number;
      why: string;
      args: string[];
      home?: string;
      env?: Record<string, string>;
    }[] = [
      { code: ExitCode.Ok, why: "provisioned", args: deviceArgs(emulator, { serial: "SN-0" }) },
      {
        code: ExitCode.Rejected,
        why: "a required template parameter missing",
        args: deviceArgs(emulator),
      },
      {
        // The only real path to 70 is a bug: FLEETPROV_BUG_AT throws a plain Error at a
        // crash point, as one would.
        code: ExitCode.Software,
        why: "a bug (simulated after the create answer)",
        args: deviceArgs(emulator, { serial: "SN-70" }),
        env: { FLEETPROV_BUG_AT: "after-create-answer" },
      },
      {
        code: ExitCode.CantCreate,
        why: "a read-only home",
        args: deviceArgs(emulator, { serial: "SN-73" }),
        home: roHome,
        env: { LOCK_FILE_PATH: tempDir("fleetprov-lock-") },
      },
      {
        code: ExitCode.IoError,
        why: "EIO reading the runtime config",
        args: deviceArgs(emulator, { serial: "SN-74" }),
        home: eioHome,
      },
      {
        code: ExitCode.TempFail,
        why: "no broker on the port until the deadline",
        args: deviceArgs(emulator, {
          serial: "SN-75",
          retry: GIVE_UP_FAST,
          extra: ["--port", "1"],
        }),
      },
      {
        code: ExitCode.NoPermission,
        why: "a claim key readable by all",
        args: deviceArgs(emulator, { serial: "SN-77", extra: ["--key", looseKey] }),
      },
      {
        code: ExitCode.Config,
        why: "a missing claim certificate",
        args: deviceArgs(emulator, {
          serial: "SN-78",
          extra: ["--cert", join(scratch, "none.crt")],
        }),
      },
    ];
    try {
      assertEquals(
        cases.map((c) => c.code).sort((a, b) => a - b),
        Object.values(ExitCode).sort((a, b) => a - b),
        "every exit code is walked",
      );
      for (const c of cases) {
        await t.step(`${c.code}: ${c.why}`, async () => {
          const result = await runFleetprov(c.args, { home: c.home ?? deviceHome(), env: c.env });
          assertEquals(result.code, c.code, `${c.why}\n${result.stdout}${result.stderr}`);
          assertEquals(
            restartsOn(unit, c.code),
            HEALS_WITH_TIME[c.code],
            `exit ${c.code} (${c.why}): the unit's restart policy disagrees with the rule`,
          );
        });
      }
    } finally {
      await emulator.close();
      disk.unmount();
    }
  },
});
