// SPDX-License-Identifier: Apache-2.0
/**
 * The systemd units under a real systemd: a Debian bookworm rootfs (systemd
 * 252 as PID 1) booted with systemd-nspawn, fleetprov installed as the README
 * says (the x64 release binary, /etc/fleetprov 0700, the config 0640, the
 * unit enabled), the emulator on the host's loopback, which the container
 * shares. A test unit wanted by fleetprov-provisioned.target stands for a
 * service that needs the device certificate.
 *
 * One setting differs from the shipped unit: a drop-in sets RestartSec=1s, so
 * a restart takes a second instead of 30. The rotation test's drop-ins make
 * the rotate timer fire a second after it starts and run the rotate service
 * 400 days ahead (libfaketime, bound in from the host); what it runs is as
 * shipped.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { join } from "node:path";
import { build } from "../build/mod.ts";
import { type Emulator, startEmulator } from "../src/emulator/mod.ts";
import { ExitCode } from "../src/errors.ts";
import { DEFAULT_ROTATION_TEMPLATE_NAME } from "../src/protocol/mod.ts";
import {
  fakeTimeEnv,
  findTool,
  libfaketime,
  ROOT,
  skipWhenMissing,
  tempDir,
} from "./support/mod.ts";
import {
  cachedRootfs,
  Container,
  type JournalEntry,
  message,
  NSPAWN_TOOLS,
  Overlay,
  run,
  type UnitProperties,
  waitFor,
} from "./support/nspawn.ts";
import { parseUnit } from "./support/systemd_unit.ts";

const TEMPLATE = "FleetprovTemplate";
const UNIT_DIR = join(ROOT, "build", "systemd");

const systemctl = findTool(["/usr/bin/systemctl", "/bin/systemctl"], "systemd");
const tools = NSPAWN_TOOLS.map(([path, pkg]) => findTool([path], pkg));
const unavailable = skipWhenMissing(
  Deno.uid() === 0 ? undefined : "booting a container needs root",
  { require: "FLEETPROV_REQUIRE_TOOLS", what: "the systemd-nspawn tests" },
) || systemctl === undefined || tools.includes(undefined);

/** The exit codes the unit does not restart, as its RestartPreventExitStatus= says. */
async function preventedExitCodes(): Promise<number[]> {
  const unit = parseUnit(await Deno.readTextFile(join(UNIT_DIR, "fleetprov.service")));
  return (unit.get("Service.RestartPreventExitStatus") ?? "").split(" ").map(Number);
}

let rootfs: Promise<string> | undefined;
/** The cached Debian rootfs (debootstrap on the first call of a clean checkout). */
function debianRootfs(): Promise<string> {
  rootfs ??= cachedRootfs((line) => console.error(`nspawn: ${line}`));
  return rootfs;
}

let binary: Promise<string> | undefined;
/** The x64 release binary. */
function x64Binary(): Promise<string> {
  binary ??= build({ targets: ["x64"], log: () => {} }).then((report) => report.targets[0].path);
  return binary;
}

/** What differs between the installs of the tests. */
interface InstallOptions {
  port: number;
  /** Config keys replacing the defaults (claim files in /etc/fleetprov). */
  config?: Record<string, unknown>;
  /** fleet-provisioning keys added to the config. */
  provisioning?: Record<string, unknown>;
  /** More units to write into /etc/systemd/system, by name. */
  units?: Record<string, string>;
}

/**
 * Installs fleetprov into the container's tree as the README says, with the
 * emulator's claim files, and a unit that needs the certificate.
 */
async function install(root: string, emulator: Emulator, options: InstallOptions): Promise<void> {
  const etc = join(root, "etc", "fleetprov");
  await run("install", ["-d", "-m", "0700", etc]);
  await run("install", ["-m", "0644", emulator.claim.certPath, `${etc}/claim-certificate.pem.crt`]);
  await run("install", ["-m", "0600", emulator.claim.keyPath, `${etc}/claim-private.pem.key`]);
  await run("install", ["-m", "0644", emulator.caPath, `${etc}/root-ca.pem`]);
  const config = {
    endpoint: emulator.endpoint,
    port: options.port,
    cert: "/etc/fleetprov/claim-certificate.pem.crt",
    key: "/etc/fleetprov/claim-private.pem.key",
    "root-ca": "/etc/fleetprov/root-ca.pem",
    ...options.config,
    "fleet-provisioning": { enabled: true, "template-name": TEMPLATE, ...options.provisioning },
  };
  const configFile = join(root, "tmp", "fleetprov.conf");
  await Deno.writeTextFile(configFile, JSON.stringify(config, null, 2) + "\n");
  await run("install", ["-m", "0640", configFile, `${etc}/fleetprov.conf`]);
  await Deno.remove(configFile);

  const systemDir = join(root, "etc", "systemd", "system");
  for (
    const unit of [
      "fleetprov.service",
      "fleetprov-provisioned.target",
      "fleetprov-rotate.service",
      "fleetprov-rotate.timer",
    ]
  ) {
    await run("install", ["-m", "0644", join(UNIT_DIR, unit), `${systemDir}/${unit}`]);
  }
  await Deno.mkdir(join(systemDir, "fleetprov.service.d"), { recursive: true });
  await Deno.writeTextFile(
    join(systemDir, "fleetprov.service.d", "restart-sec.conf"),
    "# The test's only change: restart after 1 s, not 30 s.\n[Service]\nRestartSec=1s\n",
  );
  // Fails if started before fleetprov wrote the certificate.
  await Deno.writeTextFile(
    join(systemDir, "needs-certificate.service"),
    [
      "[Unit]",
      "Description=A service that needs the device certificate",
      "After=fleetprov-provisioned.target",
      "[Service]",
      "Type=oneshot",
      "RemainAfterExit=yes",
      "ExecStart=/usr/bin/test -s /root/.aws-iot-device-client/keys/active-certificate.pem.crt",
    ].join("\n") + "\n",
  );
  for (const [name, text] of Object.entries(options.units ?? {})) {
    await Deno.mkdir(join(systemDir, name, ".."), { recursive: true });
    await Deno.writeTextFile(join(systemDir, name), text);
  }
  await run(systemctl!, [`--root=${root}`, "enable", "fleetprov.service"]);
  // As the README says for a unit you do not own, such as the Device Client's.
  await run(systemctl!, [
    `--root=${root}`,
    "add-wants",
    "fleetprov-provisioned.target",
    "needs-certificate.service",
  ]);
}

/** Boots the tree with the x64 binary as /usr/bin/fleetprov (and `binds`, host path to inside). */
async function boot(root: string, binds: Record<string, string> = {}): Promise<Container> {
  return await Container.boot(root, { [await x64Binary()]: "/usr/bin/fleetprov", ...binds });
}

/**
 * Waits for the unit that needs the certificate to have run, and checks it
 * succeeded (the certificate was there) with fleetprov-provisioned.target up.
 */
async function certificateUser(container: Container): Promise<UnitProperties> {
  const user = await container.waitForUnit(
    "needs-certificate.service",
    "started",
    (p) => ["active", "failed"].includes(p.ActiveState),
  );
  assertEquals([user.ActiveState, user.Result], ["active", "success"]);
  assertEquals((await container.show("fleetprov-provisioned.target")).ActiveState, "active");
  return user;
}

/** fleetprov's own lines in a journal. */
function fleetprovLines(journal: JournalEntry[]): string[] {
  return journal.filter((entry) => entry.SYSLOG_IDENTIFIER === "fleetprov").map(message);
}

/** The exit statuses of fleetprov's runs that failed, from systemd's journal entries. */
function failedExits(journal: JournalEntry[]): { status: number; monotonicUs: number }[] {
  return journal
    .filter((entry) => entry.EXIT_STATUS !== undefined && entry._PID === "1")
    .map((entry) => ({
      status: Number(entry.EXIT_STATUS),
      monotonicUs: Number(entry.__MONOTONIC_TIMESTAMP),
    }));
}

/** An emulator whose state (CA, claim, registry) lives in `stateDir`. */
function emulatorAt(stateDir: string, port = 0): Promise<Emulator> {
  return startEmulator({ stateDir, port, templateName: TEMPLATE });
}

const TEST = { ignore: unavailable, sanitizeResources: false, sanitizeOps: false };

Deno.test({
  ...TEST,
  name:
    "nspawn: first boot provisions without a warning and starts the certificate's users; the second exits 0 without connecting; completed-fp false provisions again at the third",
  async fn() {
    const emulator = await emulatorAt(join(tempDir("fleetprov-emu-"), "state"));
    const overlay = await Overlay.mount(await debianRootfs());
    try {
      await install(overlay.root, emulator, { port: emulator.port });

      const first = await boot(overlay.root);
      try {
        await first.booted();
        const user = await certificateUser(first);
        const service = await first.show("fleetprov.service");
        assertEquals(
          [service.Result, Number(service.ExecMainStatus), service.NRestarts],
          ["success", ExitCode.Ok, "0"],
        );
        assert(
          Number(user.ExecMainStartTimestampMonotonic) >
            Number(service.ExecMainExitTimestampMonotonic),
          "the certificate's user started before fleetprov finished",
        );
        const lines = fleetprovLines(await first.journal("fleetprov.service"));
        assert(lines.some((line) => line.includes("[INFO] Provisioned thing ")), lines.join("\n"));
        // The README's install (/etc/fleetprov 0700, config 0640) draws no warning.
        assertEquals(lines.filter((line) => /\[WARN\]|\[ERROR\]|has mode/.test(line)), []);
      } finally {
        await first.poweroff();
      }
      const runtime = JSON.parse(
        await Deno.readTextFile(
          join(
            overlay.root,
            "root",
            ".aws-iot-device-client",
            "aws-iot-device-client-runtime.conf",
          ),
        ),
      )["runtime-config"];
      assertEquals(runtime["completed-fp"], true);
      assertEquals(emulator.registry.things().map((t) => t.thingName), [runtime["thing-name"]]);
      assertEquals(emulator.counters.connect.requests, 2); // claim, then the new certificate

      const second = await boot(overlay.root);
      try {
        await second.booted();
        await certificateUser(second);
        const service = await second.show("fleetprov.service");
        assertEquals(
          [service.Result, Number(service.ExecMainStatus), service.NRestarts],
          ["success", ExitCode.Ok, "0"],
        );
        const lines = fleetprovLines(await second.journal("fleetprov.service"));
        assert(
          lines.some((line) =>
            line.includes(`Already provisioned as thing ${runtime["thing-name"]}`)
          ),
          lines.join("\n"),
        );
      } finally {
        await second.poweroff();
      }
      assertEquals(emulator.counters.connect.requests, 2);

      // The Device Client's way to provision again: completed-fp false. The unit has no
      // condition on the runtime config (README: why), so the next boot runs fleetprov, which
      // provisions again and starts the certificate's users.
      const runtimePath = join(
        overlay.root,
        "root",
        ".aws-iot-device-client",
        "aws-iot-device-client-runtime.conf",
      );
      const reset = JSON.parse(await Deno.readTextFile(runtimePath));
      reset["runtime-config"]["completed-fp"] = false;
      await Deno.writeTextFile(runtimePath, JSON.stringify(reset, null, 2) + "\n");
      const third = await boot(overlay.root);
      try {
        await third.booted();
        await certificateUser(third);
        const lines = fleetprovLines(await third.journal("fleetprov.service"));
        assert(lines.some((line) => line.includes("[INFO] Provisioned thing ")), lines.join("\n"));
      } finally {
        await third.poweroff();
      }
      assertEquals(emulator.counters.connect.requests, 4);
      const again = JSON.parse(await Deno.readTextFile(runtimePath))["runtime-config"];
      assertEquals(again["completed-fp"], true);
    } finally {
      await overlay.remove();
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "nspawn: endpoint down: multi-user.target is reached at once, fleetprov restarts until the endpoint is back, then provisions",
  async fn() {
    assert(!(await preventedExitCodes()).includes(ExitCode.TempFail));
    const stateDir = join(tempDir("fleetprov-emu-"), "state");
    let emulator = await emulatorAt(stateDir);
    const port = emulator.port;
    await emulator.close(); // the endpoint is down; its claim files stay in stateDir
    const overlay = await Overlay.mount(await debianRootfs());
    try {
      await install(overlay.root, emulator, {
        port,
        provisioning: { deadline: 6, "step-timeout": 2, "retry-max-delay": 1 },
      });
      const container = await boot(overlay.root);
      try {
        await container.booted();
        // The boot is over while fleetprov's first run is still trying (it
        // gives up after its 6 s deadline).
        const atBoot = await container.show("fleetprov.service");
        assertEquals([atBoot.SubState, atBoot.NRestarts], ["running", "0"]);
        const manager = await container.show();
        const multiUser = await container.show("multi-user.target");
        assertEquals(multiUser.ActiveState, "active");
        const reachedUs = Number(multiUser.ActiveEnterTimestampMonotonic);
        const bootUs = Number(manager.UserspaceTimestampMonotonic);

        // Two failed runs, each restarted: the endpoint is still down.
        const restarted = await container.waitForUnit(
          "fleetprov.service",
          "two restarts",
          (p) => Number(p.NRestarts) >= 2 || p.ActiveState === "failed",
        );
        assert(
          restarted.ActiveState !== "failed",
          fleetprovLines(await container.journal("fleetprov.service")).join("\n"),
        );
        const exits = failedExits(await container.journal("fleetprov.service"));
        assert(exits.length >= 2, JSON.stringify(exits));
        assertEquals(exits.map((e) => e.status), exits.map(() => ExitCode.TempFail));
        // The journal names the code as it means it (issue 15: not 4/NOPERMISSION).
        const said = (await container.journal("fleetprov.service")).map(message);
        assert(
          said.some((m) => m.includes(`status=${ExitCode.TempFail}/TEMPFAIL`)),
          said.join("\n"),
        );
        assertEquals(
          (await container.show("fleetprov-provisioned.target")).ActiveState,
          "inactive",
        );
        assertEquals((await container.show("needs-certificate.service")).ActiveState, "inactive");
        console.error(
          `nspawn: endpoint down: multi-user.target reached ${
            ((reachedUs - bootUs) / 1e6).toFixed(2)
          } s after systemd started; fleetprov's first run gave up after ${
            ((exits[0].monotonicUs - bootUs) / 1e6).toFixed(1)
          } s`,
        );

        emulator = await emulatorAt(stateDir, port);
        const user = await certificateUser(container);
        const service = await container.show("fleetprov.service");
        assertEquals([service.Result, Number(service.ExecMainStatus)], ["success", ExitCode.Ok]);
        assert(Number(service.NRestarts) >= 2, service.NRestarts);
        assert(
          Number(user.ExecMainStartTimestampMonotonic) >
            Number(service.ExecMainExitTimestampMonotonic),
          "the certificate's user started before fleetprov finished",
        );
        assertEquals(emulator.registry.things().length, 1);
      } finally {
        await container.poweroff();
      }
    } finally {
      await overlay.remove();
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "nspawn: a missing certificate and a 0644 key fail once, not restarted; no config skips the unit",
  async fn() {
    const prevented = await preventedExitCodes();
    const emulator = await emulatorAt(join(tempDir("fleetprov-emu-"), "state"));
    const overlay = await Overlay.mount(await debianRootfs());
    try {
      const cases = [
        {
          name: "missing certificate",
          setup: () =>
            install(overlay.root, emulator, {
              port: emulator.port,
              config: { cert: "/etc/fleetprov/missing.pem.crt" },
            }),
          exitCode: ExitCode.Config,
          line: /Certificate \/etc\/fleetprov\/missing\.pem\.crt .* does not exist/,
        },
        {
          name: "key 0644",
          setup: async () => {
            await install(overlay.root, emulator, { port: emulator.port });
            await Deno.chmod(
              join(overlay.root, "etc", "fleetprov", "claim-private.pem.key"),
              0o644,
            );
          },
          exitCode: ExitCode.NoPermission,
          line:
            /Private key \/etc\/fleetprov\/claim-private\.pem\.key has mode 644; it must be 600/,
        },
      ];
      for (const { name, setup, exitCode, line } of cases) {
        await setup();
        assert(prevented.includes(exitCode), `${name}: exit ${exitCode} is restarted`);
        const container = await boot(overlay.root);
        try {
          await container.booted();
          const service = await container.waitForUnit(
            "fleetprov.service",
            "failed",
            (p) => p.ActiveState === "failed",
          );
          // Failed for good: a restart would show as "activating (auto-restart)".
          assertEquals(
            [service.Result, Number(service.ExecMainStatus), service.NRestarts, service.SubState],
            ["exit-code", exitCode, "0", "failed"],
            name,
          );
          const lines = fleetprovLines(await container.journal("fleetprov.service"));
          assert(lines.some((l) => line.test(l)), `${name}: ${lines.join("\n")}`);
          assertEquals(
            (await container.show("fleetprov-provisioned.target")).ActiveState,
            "inactive",
          );
        } finally {
          await container.poweroff();
        }
      }

      await Deno.remove(join(overlay.root, "etc", "fleetprov", "fleetprov.conf"));
      const container = await boot(overlay.root);
      try {
        await container.booted();
        const service = await container.show("fleetprov.service");
        assertEquals(
          [service.ConditionResult, service.ActiveState, service.ExecMainStartTimestampMonotonic],
          ["no", "inactive", "0"],
        );
        assertEquals(
          (await container.show("fleetprov-provisioned.target")).ActiveState,
          "inactive",
        );
      } finally {
        await container.poweroff();
      }
      assertEquals(emulator.counters.connect.requests, 0);
    } finally {
      await overlay.remove();
      await emulator.close();
    }
  },
});

/** A service that holds the device certificate and restarts with the target (PartOf=). */
const HOLDER_UNIT = [
  "[Unit]",
  "Description=A service that holds the device certificate",
  "After=fleetprov-provisioned.target",
  "PartOf=fleetprov-provisioned.target",
  "[Service]",
  "Type=exec",
  // Each start records the certificate it starts with.
  "ExecStartPre=/bin/sh -c 'sha256sum /root/.aws-iot-device-client/keys/active-certificate.pem.crt >> /var/lib/holder.log'",
  "ExecStart=/bin/sleep infinity",
].join("\n") + "\n";

/** libfaketime on the host; the container (Debian bookworm, as the host here) gets it bound in. */

/**
 * The test's changes to the rotate units, none to what they run: the timer
 * fires a second after it is (re)started instead of daily within six hours,
 * and the service's clock runs 400 days ahead (libfaketime), so the
 * certificate the emulator issued today is due.
 */
const TIMER_NOW = "[Timer]\nOnCalendar=\nOnActiveSec=1s\nRandomizedDelaySec=0\n";
const aged = (): string =>
  "[Service]\nEnvironment=" +
  Object.entries(fakeTimeEnv({ offset: "+400d" })).map(([k, v]) => `${k}=${v}`).join(" ") + "\n";

Deno.test({
  ...TEST,
  ignore: unavailable || libfaketime === undefined,
  name:
    "nspawn: the timer fires fleetprov-rotate.service (its ExecStart as shipped) on a board 400 days on (libfaketime), against the emulator's default setup; the services bound to fleetprov-provisioned.target (PartOf=) restart with the new certificate; a run that rotates nothing restarts nothing",
  async fn() {
    const stateDir = join(tempDir("fleetprov-emu-"), "state");
    // The emulator out of the box: its rotation template and device policy.
    const emulator = await startEmulator({ stateDir, port: 0 });
    const overlay = await Overlay.mount(await debianRootfs());
    const holderLog = join(overlay.root, "var", "lib", "holder.log");
    const activeCertificate = join(
      overlay.root,
      "root",
      ".aws-iot-device-client",
      "keys",
      "active-certificate.pem.crt",
    );
    const systemDir = join(overlay.root, "etc", "systemd", "system");
    const logged = async () => (await Deno.readTextFile(holderLog)).trim().split("\n");
    const sha256 = async (path: string) => (await run("sha256sum", [path])).stdout.split(" ")[0];
    try {
      await install(overlay.root, emulator, {
        port: emulator.port,
        // As the emulator's device-client.conf names it.
        provisioning: { "rotation-template-name": DEFAULT_ROTATION_TEMPLATE_NAME },
        units: { "holds-certificate.service": HOLDER_UNIT },
      });
      await run(systemctl!, [
        `--root=${overlay.root}`,
        "add-wants",
        "fleetprov-provisioned.target",
        "holds-certificate.service",
      ]);
      // As the .deb and the Yocto layer do.
      await run(systemctl!, [`--root=${overlay.root}`, "enable", "fleetprov-rotate.timer"]);
      const container = await boot(overlay.root, { [libfaketime!]: libfaketime! });
      try {
        await container.booted();
        const first = await container.waitForUnit(
          "holds-certificate.service",
          "started",
          (p) => ["active", "failed"].includes(p.ActiveState),
        );
        assertEquals(first.ActiveState, "active");
        const oldHash = await sha256(activeCertificate);
        assertEquals((await logged()).map((l) => l.split(" ")[0]), [oldHash]);

        // 400 days on, the timer fires: the service rotates, the holder restarts with the new one.
        for (
          const [dir, text] of [["fleetprov-rotate.timer.d", TIMER_NOW], [
            "fleetprov-rotate.service.d",
            aged(),
          ]]
        ) {
          await Deno.mkdir(join(systemDir, dir), { recursive: true });
          await Deno.writeTextFile(join(systemDir, dir, "test.conf"), text);
        }
        await container.exec(["systemctl", "daemon-reload"]);
        await container.exec(["systemctl", "restart", "fleetprov-rotate.timer"]);
        const rotate = await container.waitForUnit(
          "fleetprov-rotate.service",
          "run by the timer",
          (p) =>
            Number(p.ExecMainExitTimestampMonotonic) > 0 &&
            (p.ActiveState === "inactive" || p.ActiveState === "failed"),
        );
        assertEquals([rotate.Result, rotate.ExecMainStatus], ["success", "0"]);
        const shipped = parseUnit(
          await Deno.readTextFile(join(UNIT_DIR, "fleetprov-rotate.service")),
        ).get("Service.ExecStart")!;
        assertMatch(rotate.ExecStart, new RegExp(`argv\\[\\]=${shipped.replaceAll(".", "\\.")} ;`));
        const timer = await container.show("fleetprov-rotate.timer");
        assertEquals([timer.ActiveState, timer.Triggers], ["active", "fleetprov-rotate.service"]);
        assert(
          !["", "n/a", "0"].includes(timer.LastTriggerUSec ?? ""),
          `the timer triggered the run: LastTriggerUSec=${timer.LastTriggerUSec}`,
        );
        const lines = fleetprovLines(await container.journal("fleetprov-rotate.service"));
        assert(
          lines.some((l) => /is 40\d days old .*: older than 365 days/.test(l)),
          lines.join("\n"),
        );
        assert(
          lines.some((l) => l.includes("[INFO] Rotated thing FPTemplateName-")),
          lines.join("\n"),
        );
        await waitFor(
          "the holder's restart",
          async () => (await logged()).length === 2 || undefined,
        );
        const newHash = await sha256(activeCertificate);
        assert(newHash !== oldHash, "the certificate changed");
        assertEquals((await logged()).map((l) => l.split(" ")[0]), [oldHash, newHash]);
        const restarted = await container.waitForUnit(
          "holds-certificate.service",
          "running again",
          (p) => p.ActiveState === "active",
        );
        assert(
          Number(restarted.ExecMainStartTimestampMonotonic) >
            Number(rotate.ExecMainExitTimestampMonotonic),
          "the holder restarted after the rotation",
        );

        // Today's clock again: the new certificate is young; a run is a no-op, restarts nothing.
        for (const dir of ["fleetprov-rotate.timer.d", "fleetprov-rotate.service.d"]) {
          await Deno.remove(join(systemDir, dir), { recursive: true });
        }
        await container.exec(["systemctl", "daemon-reload"]);
        await container.exec(["systemctl", "start", "fleetprov-rotate.service"]);
        const young = await container.waitForUnit(
          "fleetprov-rotate.service",
          "done again",
          (p) =>
            (p.ActiveState === "inactive" || p.ActiveState === "failed") &&
            Number(p.ExecMainStartTimestampMonotonic) >
              Number(rotate.ExecMainStartTimestampMonotonic),
        );
        assertEquals([young.Result, young.ExecMainStatus], ["success", "0"]);
        const jobs = (await container.exec(["systemctl", "list-jobs", "--no-legend"])).stdout;
        assertEquals(jobs.trim(), "", "a job was queued after a run that rotated nothing");
        const holder = await container.show("holds-certificate.service");
        assertEquals(
          holder.ExecMainStartTimestampMonotonic,
          restarted.ExecMainStartTimestampMonotonic,
          "the holder was restarted by a run that rotated nothing",
        );
        assertEquals((await logged()).length, 2);
      } finally {
        await container.poweroff();
      }
    } finally {
      await overlay.remove();
      await emulator.close();
    }
  },
});
