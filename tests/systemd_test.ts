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
import { mkdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { ROTATED_MARKER } from "../src/commands/rotate.ts";
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
  rotateArgs,
  rotationEmulator,
  runFleetprov,
  runtimeConfigPathOf,
  tempDir,
  writeWithMode,
} from "./support/mod.ts";
import { parseUnit } from "./support/systemd_unit.ts";

const UNIT_PATH = join(ROOT, "build", "systemd", "fleetprov.service");
const TARGET_PATH = join(ROOT, "build", "systemd", "fleetprov-provisioned.target");
const ROTATE_PATH = join(ROOT, "build", "systemd", "fleetprov-rotate.service");
const TIMER_PATH = join(ROOT, "build", "systemd", "fleetprov-rotate.timer");
const systemdAnalyze = findTool(["/usr/bin/systemd-analyze", "/bin/systemd-analyze"], "systemd");

/**
 * Runs `systemd-analyze verify` on `unitText` (fleetprov.service) and
 * `rotateText` (fleetprov-rotate.service) installed in a fresh root that has
 * the system's targets, fleetprov-provisioned.target, fleetprov-rotate.timer,
 * /bin/sh and the built x64 binary as /usr/bin/fleetprov.
 */
async function verify(
  unitText: string,
  rotateText = Deno.readTextFileSync(ROTATE_PATH),
): Promise<{ code: number; output: string }> {
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
  await Deno.writeTextFile(join(unitDir, "fleetprov-rotate.service"), rotateText);
  await Deno.copyFile(TIMER_PATH, join(unitDir, "fleetprov-rotate.timer"));
  const result = await new Deno.Command(systemdAnalyze!, {
    args: [
      "verify",
      `--root=${root}`,
      "/etc/systemd/system/fleetprov.service",
      "/etc/systemd/system/fleetprov-provisioned.target",
      "/etc/systemd/system/fleetprov-rotate.service",
      "/etc/systemd/system/fleetprov-rotate.timer",
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
  name:
    "systemd units (fleetprov, its target, rotate and its timer): systemd-analyze verify reports nothing, and catches a broken copy",
  ignore: systemdAnalyze === undefined,
  async fn() {
    const unit = await Deno.readTextFile(UNIT_PATH);
    assertEquals(await verify(unit), { code: 0, output: "" });

    // The same check on a broken copy says so: the clean result above means something.
    const broken = await verify(unit.replace("RestartSec=30s", "RestartSec=soon"));
    assert(broken.output.includes("RestartSec") || broken.output.includes("soon"), broken.output);
    const missing = await verify(unit.replace("/usr/bin/fleetprov", "/usr/bin/fleetprov-missing"));
    assert(missing.code !== 0, `a missing ExecStart binary passed: ${missing.output}`);
    const rotate = await Deno.readTextFile(ROTATE_PATH);
    const brokenRotate = await verify(unit, rotate.replace("RestartSec=15min", "RestartSec=later"));
    assert(brokenRotate.output.includes("later"), brokenRotate.output);
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

Deno.test("rotate units: daily at a time of each board's own, persistent; a oneshot restarted as fleetprov.service is; the target restarted only after a switch", async () => {
  const timer = parseUnit(await Deno.readTextFile(TIMER_PATH));
  assertEquals(timer.get("Timer.OnCalendar"), "daily");
  // A fleet spread over hours, each board at its own time every day; a missed day runs at boot.
  assertEquals(timer.get("Timer.RandomizedDelaySec"), "6h");
  assertEquals(timer.get("Timer.FixedRandomDelay"), "true");
  assertEquals(timer.get("Timer.Persistent"), "true");
  assertEquals(timer.get("Timer.Unit"), undefined, "the timer starts fleetprov-rotate.service");
  assertEquals(timer.get("Install.WantedBy"), "timers.target");

  const rotate = parseUnit(await Deno.readTextFile(ROTATE_PATH));
  const unit = parseUnit(await Deno.readTextFile(UNIT_PATH));
  assertEquals(rotate.get("Service.Type"), "oneshot");
  assertEquals(
    rotate.get("Service.ExecStart"),
    "/usr/bin/fleetprov rotate --config-file /etc/fleetprov/fleetprov.conf",
  );
  // The same state as the provisioning unit, the same condition, the same restart rule.
  for (const key of ["Service.Environment", "Unit.ConditionPathExists"]) {
    assertEquals(rotate.get(key), unit.get(key), key);
  }
  assertEquals(rotate.get("Service.Restart"), "on-failure");
  assertEquals(
    rotate.get("Service.RestartPreventExitStatus"),
    unit.get("Service.RestartPreventExitStatus"),
  );
  assertEquals(rotate.get("Unit.StartLimitIntervalSec"), "0");
  assert(rotate.get("Unit.After")!.split(" ").includes("fleetprov.service"));
  assertEquals(rotate.get("Install.WantedBy"), undefined, "started by its timer only");
  // fleetprov leaves "rotated" in the runtime directory after a switch; only then the
  // units bound to fleetprov-provisioned.target (PartOf=) restart.
  assertEquals(rotate.get("Service.RuntimeDirectory"), "fleetprov-rotate");
  assertEquals(
    rotate.get("Service.ExecStopPost"),
    `/bin/sh -c 'if [ "$SERVICE_RESULT" = success ] && [ -e "$RUNTIME_DIRECTORY/${ROTATED_MARKER}" ]; then exec systemctl restart --no-block fleetprov-provisioned.target; fi'`,
  );
});

Deno.test({
  name:
    "rotate exit codes: each one reached by a real rotate run, and its unit restarts exactly those time can heal",
  ignore: !canMount(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const unit = parseUnit(await Deno.readTextFile(ROTATE_PATH));
    const emulator = await rotationEmulator();
    const disk = mountTmpfs(4096);
    /** A board provisioned by `emulator` in `home` (a fresh one by default). */
    const board = async (home = deviceHome()) => {
      const serial = `SN-${crypto.randomUUID()}`;
      const result = await runFleetprov(deviceArgs(emulator, { serial }), { home });
      assertEquals(result.code, ExitCode.Ok, result.stderr);
      return { home, serial };
    };
    const keyOf = (home: string) => join(configDirOf(home), "keys", "active-private.pem.key");
    try {
      const cases: {
        code: number;
        why: string;
        prepare: () => Promise<{ home: string; serial: string; env?: Record<string, string> }>;
        extra: string[];
        template?: string;
      }[] = [
        { code: ExitCode.Ok, why: "not due", prepare: () => board(), extra: [] },
        {
          code: ExitCode.Rejected,
          why: "the device policy forbids the template's topics",
          prepare: () => board(),
          extra: ["--force"],
          template: "OtherTemplate",
        },
        {
          code: ExitCode.Software,
          why: "a bug (simulated after the create answer)",
          prepare: async () => ({
            ...await board(),
            env: { FLEETPROV_BUG_AT: "after-create-answer" },
          }),
          extra: ["--force"],
        },
        {
          code: ExitCode.CantCreate,
          why: "a read-only home",
          prepare: async () => {
            const home = join(disk.path, "home");
            mkdirSync(join(home, "lock"), { recursive: true, mode: 0o700 });
            const provisioned = await board(home);
            disk.setReadOnly(true);
            return { ...provisioned, env: { LOCK_FILE_PATH: tempDir("fleetprov-lock-") } };
          },
          extra: ["--force"],
        },
        {
          code: ExitCode.IoError,
          why: "EIO reading the runtime config",
          prepare: async () => {
            const provisioned = await board();
            rmSync(runtimeConfigPathOf(provisioned.home));
            symlinkSync("/proc/self/mem", runtimeConfigPathOf(provisioned.home));
            return provisioned;
          },
          extra: ["--force"],
        },
        {
          code: ExitCode.TempFail,
          why: "no broker on the port until the deadline",
          prepare: () => board(),
          extra: ["--force", "--port", "1", ...GIVE_UP_FAST],
        },
        {
          code: ExitCode.NoPermission,
          why: "the device key readable by all",
          prepare: async () => {
            const provisioned = await board();
            Deno.chmodSync(keyOf(provisioned.home), 0o644);
            return provisioned;
          },
          extra: ["--force"],
        },
        {
          code: ExitCode.Config,
          why: "--if-older-than soon",
          prepare: () => board(),
          extra: ["--if-older-than", "soon"],
        },
      ];
      assertEquals(
        cases.map((c) => c.code).sort((a, b) => a - b),
        Object.values(ExitCode).sort((a, b) => a - b),
        "every exit code is walked",
      );
      for (const c of cases) {
        await t.step(`${c.code}: ${c.why}`, async () => {
          const { home, serial, env } = await c.prepare();
          const args = rotateArgs(emulator, { serial, extra: c.extra, template: c.template });
          const result = await runFleetprov(args, { home, env });
          assertEquals(result.code, c.code, `${c.why}\n${result.stdout}${result.stderr}`);
          assertEquals(
            restartsOn(unit, c.code),
            HEALS_WITH_TIME[c.code],
            `exit ${c.code} (${c.why}): the rotate unit's restart policy disagrees with the rule`,
          );
        });
      }
    } finally {
      await emulator.close();
      disk.unmount();
    }
  },
});
