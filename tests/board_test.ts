// SPDX-License-Identifier: Apache-2.0
/**
 * A board in a box: fleetprov on a whole emulated ARM board, not just an
 * emulated process. Debian bookworm for arm64 (qemu-system-aarch64 -M virt,
 * Cortex-A53) and armhf (qemu-system-arm -M virt, Cortex-A15, the armmp-lpae
 * kernel), built from the Debian mirror and cached (tests/support/board/
 * image.ts), booted with its own kernel and systemd as PID 1. Per
 * architecture:
 *
 * - **Factory**: the release's .deb installed with `apt install
 *   ./fleetprov_*.deb` on the running board, /etc/fleetprov filled as the
 *   README says, the x64 release binary's emulator on the host as the
 *   endpoint (10.0.2.2 on QEMU's user network). `fleetprov status` there,
 *   before any provisioning: not provisioned (3), nothing written.
 * - **First boot** provisions (fleetprov-provisioned.target reached, the
 *   files on the board's disk, `fleetprov status` agreeing with them and the
 *   registry); the rotate timer is enabled and waits, nothing rotated;
 *   `fleetprov rotate --force` at the board's shell against the emulator's
 *   default rotation template. **Second boot**, without RTC (the reboot):
 *   on the new certificate, already provisioned and quiet, status naming the
 *   rotation and, by a clock at systemd's floor, judging no age.
 * - **No RTC**: the board's clock starts at systemd's floor (its build date,
 *   before the claim certificate); fleetprov waits; the clock is set over the
 *   serial line; power is cut right after the create answer is journaled;
 *   the next boot, without RTC again, provisions with exactly one
 *   certificate.
 * - **Power cuts**: QEMU killed (SIGKILL) at points spread over the first
 *   boot's provisioning, then booted again: provisioned, one thing, at most
 *   one certificate left unregistered, no empty or cut-short file, the
 *   runtime config consistent with the files, `fleetprov status` with
 *   nothing pending.
 *
 * Everything is read from the board's side (systemd's unit states and
 * journal, files copied off the board or read from its disk image) and
 * checked against the emulator's registry. Boot times are printed, not
 * asserted. Runs as root with qemu-system-arm, qemu-user-static, qemu-utils,
 * debootstrap and e2fsprogs; without them it is skipped loudly, unless
 * FLEETPROV_REQUIRE_QEMU=1 (CI) makes that a
 * failure. FLEETPROV_BOARD_ARCHS picks the architectures: `arm64` (the
 * default, every CI run), `armhf` (the GitHub workflow's board-armhf job), or
 * `arm64,armhf`.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { build } from "../build/mod.ts";
import type { StatusReport } from "../src/commands/status.ts";
import type { CrashPoint } from "../src/failpoints.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { listFiles, ROOT } from "./support/fs.ts";
import { skipWhenMissing } from "./support/skip.ts";
import {
  Board,
  BOARD_ARCHS,
  type BoardArch,
  BoardEndpoint,
  type BoardImage,
  boardImage,
  clientIdOf,
  CONFIG_FILE,
  copyOff,
  damagedFiles,
  factoryInstall,
  fleetprovLines,
  type Installed,
  isTemporary,
  JOURNAL,
  journal,
  overlay,
  provisionedState,
  readDisk,
  ROTATION_JOURNAL,
  RUNTIME_CONFIG,
  runtimeConfigIn,
  STATE_DIR,
  statusOn,
  thingNameOf,
  unavailableReason,
  unit,
  waitProvisioned,
} from "./support/board/mod.ts";

const ARCHS = (Deno.env.get("FLEETPROV_BOARD_ARCHS") || "arm64").split(",")
  .map((id) => id.trim()).filter((id) => id !== "");
const EXAMPLE_CONFIG = join(
  ROOT,
  "build/yocto/meta-fleetprov/recipes-support/fleetprov/files/fleetprov.conf.example",
);
/** How many boards of an architecture boot at once (FLEETPROV_BOARD_PARALLEL, default 2). */
const PARALLEL = Math.max(1, Number(Deno.env.get("FLEETPROV_BOARD_PARALLEL") ?? 2) || 1);
/** systemd's line when fleetprov is killed at a crash point (journald forwards it to the console). */
const KILLED = /fleetprov\.service: Main process exited, code=killed, status=9\/KILL/;

/** One board of a run: its identity and the names of its files. */
interface Identity {
  label: string;
  mac: string;
  machineId: string;
  clientId: string;
  thingName: string;
}

/** What the scenarios of one architecture share. */
interface Run {
  arch: BoardArch;
  image: BoardImage;
  endpoint: BoardEndpoint;
  installed: Installed;
  work: string;
  boards: number;
  figures: string[];
}

function log(line: string): void {
  console.error(`board: ${line}`);
}

/** A new board of the run: its own MAC address (hence thing) and machine id (hence client id). */
function identity(run: Run, label: string): Identity {
  const n = ++run.boards + 1;
  const mac = `52:54:00:12:34:${n.toString(16).padStart(2, "0")}`;
  const machineId = crypto.randomUUID().replaceAll("-", "");
  return { label, mac, machineId, clientId: clientIdOf(machineId), thingName: thingNameOf(mac) };
}

/**
 * Boots a board of the run from `disk`. Every boot forwards the journal to
 * the console (the console log then holds the whole boot); `crashAt` makes
 * fleetprov kill itself at that point (systemd.setenv on the kernel command
 * line, so the next boot runs without it).
 */
function boot(
  run: Run,
  id: Identity,
  disk: string,
  options: { name: string; noRtc?: boolean; crashAt?: CrashPoint },
): Board {
  return Board.boot(run.image, {
    disk,
    mac: id.mac,
    noRtc: options.noRtc,
    consoleLog: join(run.work, `${id.label}-${options.name}.log`),
    cmdline: [
      `systemd.machine_id=${id.machineId}`,
      "systemd.journald.forward_to_console=1",
      ...(options.crashAt ? [`systemd.setenv=FLEETPROV_CRASH_AT=${options.crashAt}`] : []),
    ],
  });
}

/** Guest monotonic seconds at which a unit became active (0 if it never did). */
function activeAt(properties: Record<string, string>): number {
  return Number(properties.ActiveEnterTimestampMonotonic) / 1e6;
}

/** A day in milliseconds. */
const DAY_MS = 86_400_000;

/**
 * Waits until the board is provisioned and checks it from its own side:
 * fleetprov.service succeeded, the target is active, the files on its disk
 * are complete and agree with the runtime config, the journal is gone,
 * `fleetprov status` agrees with them (see {@linkcode assertStatus}); and
 * against the registry: one thing, its certificate ACTIVE on it, every other
 * certificate issued to this board unregistered. After a rotation
 * (`rotatedFrom`, the replaced certificate) the thing holds both, ACTIVE
 * (the emulator retires nothing), and status names the rotation. Returns the
 * certificate id and fleetprov's lines of this boot.
 */
async function assertProvisioned(
  run: Run,
  board: Board,
  id: Identity,
  options: { name: string; staleTemporaries?: string[]; rotatedFrom?: string },
): Promise<
  {
    certificateId: string;
    lines: string[];
    provisionedAt: number;
    runTime: string;
    root: string;
    status: StatusReport;
  }
> {
  await waitProvisioned(board);
  const service = await unit(board, "fleetprov.service");
  const target = await unit(board, "fleetprov-provisioned.target");
  const lines = fleetprovLines(await journal(board));
  assertEquals([service.Result, service.ExecMainStatus], ["success", "0"], lines.join("\n"));
  assertEquals(target.ActiveState, "active");
  const root = await copyOff(board, join(run.work, `${id.label}-${options.name}.files`));
  assertEquals(damagedFiles(root), [], `${id.label}: damaged files on the board`);
  const state = provisionedState(root);
  assertEquals(state.thingName, id.thingName);
  assert(!existsSync(join(root, JOURNAL)), `${id.label}: the journal is still there`);
  const temporaries = listFiles(join(root, STATE_DIR)).filter(isTemporary);
  assertEquals(temporaries, options.staleTemporaries ?? [], `${id.label}: temporary files`);
  const status = await assertStatus(board, root, {
    label: id.label,
    lastRotation: options.rotatedFrom,
  });

  const registry = await run.endpoint.registry();
  const things = Object.values(registry.things).filter((t) => t.thingName === id.thingName);
  assertEquals(things.length, 1, `${id.label}: one thing`);
  const certificates = [state.certificateId, ...options.rotatedFrom ? [options.rotatedFrom] : []];
  assertEquals(
    [...things[0].principals].sort(),
    [...certificates].sort(),
    `${id.label}: the thing's certificates`,
  );
  for (const certificate of certificates) {
    assertEquals(registry.certificates[certificate]?.status, "ACTIVE");
  }
  // Provisioning asks with the client id, a rotation as the thing.
  const issued = [
    ...run.endpoint.certificatesIssuedTo(id.clientId),
    ...run.endpoint.certificatesIssuedTo(id.thingName),
  ];
  assert(issued.includes(state.certificateId), `${id.label}: issued ${issued}`);
  for (const other of issued.filter((c) => !certificates.includes(c))) {
    const record = registry.certificates[other];
    assert(
      record === undefined || (record.status !== "ACTIVE" && record.thingNames.length === 0),
      `${id.label}: certificate ${other} is ${record?.status} on ${record?.thingNames}`,
    );
  }
  const runSeconds = (Number(service.ExecMainExitTimestampMonotonic) -
    Number(service.ExecMainStartTimestampMonotonic)) / 1e6;
  const cpuSeconds = Number(service.CPUUsageNSec) / 1e9;
  return {
    certificateId: state.certificateId,
    lines,
    provisionedAt: activeAt(target),
    runTime: `fleetprov's run ${runSeconds.toFixed(1)} s, ${cpuSeconds.toFixed(1)} s of CPU`,
    root,
    status,
  };
}

/**
 * `fleetprov status --output json` on a provisioned board, checked against
 * the files on its disk (`root`, copied off it): exit 0, the thing, the
 * certificate (id, path, validity as in its file) and the key file the
 * runtime config names, the claim certificate's expiry as in its file,
 * nothing pending, the last rotation when there was one (`lastRotation`:
 * the replaced certificate), provisioned after the certificate's notBefore.
 * Age, expiry and due-ness are judged only by a clock that is right (within
 * an hour of the host's); a board whose clock is still at systemd's floor
 * (no RTC, not set yet) must say that its clock is not set and judge none.
 */
async function assertStatus(
  board: Board,
  root: string,
  expected: { label: string; lastRotation?: string },
): Promise<StatusReport> {
  const { code, report, stderr, clock } = await statusOn(board);
  const what = `${expected.label}: fleetprov status`;
  assertEquals([code, report.exitCode, report.problems, stderr], [0, 0, [], ""], what);
  const config = runtimeConfigIn(root)!;
  const state = provisionedState(root);
  const cert = new X509Certificate(Deno.readTextFileSync(join(root, String(config.cert))));
  const notBefore = new Date(cert.validFrom).getTime();
  const notAfter = new Date(cert.validTo).getTime();
  const claim = new X509Certificate(
    Deno.readTextFileSync(join(root, String(report.claimCertificate?.path))),
  );
  assertEquals(
    {
      provisioned: report.provisioned,
      reason: report.reason,
      thingName: report.thingName,
      id: report.certificate?.id,
      path: report.certificate?.path,
      notBefore: report.certificate?.notBefore,
      notAfter: report.certificate?.notAfter,
      privateKey: report.privateKey,
      pending: report.pending,
      replaced: report.lastRotation?.oldCertificateId ?? null,
      claim: [report.claimCertificate?.path, report.claimCertificate?.notAfter],
      runtimeConfig: report.runtimeConfig,
    },
    {
      provisioned: true,
      reason: null,
      thingName: state.thingName,
      id: state.certificateId,
      path: config.cert,
      notBefore: new Date(notBefore).toISOString(),
      notAfter: new Date(notAfter).toISOString(),
      privateKey: { location: "file", path: config.key },
      pending: null,
      replaced: expected.lastRotation ?? null,
      claim: ["/etc/fleetprov/claim-certificate.pem.crt", new Date(claim.validTo).toISOString()],
      runtimeConfig: RUNTIME_CONFIG,
    },
    what,
  );
  if (expected.lastRotation) {
    assertEquals(report.lastRotation?.newCertificateId, state.certificateId, what);
  }
  const provisionedAt = new Date(report.provisionedAt!).getTime();
  assert(provisionedAt >= notBefore, `${what}: provisioned at ${report.provisionedAt}`);
  const [before, after] = clock.map((seconds) => seconds * 1000);
  if (Math.abs(before - Date.now()) < 3_600_000) {
    assert(notBefore <= before && after <= notAfter, `${what}: the board's clock in the validity`);
    const age = (at: number) => Math.floor((at - notBefore) / DAY_MS);
    assert(
      [age(before), age(after)].includes(report.certificate!.ageDays!),
      `${what}: age ${report.certificate?.ageDays} days`,
    );
    assertEquals(report.certificate?.rotationDue, false, what);
    assert(provisionedAt <= after + 1000, `${what}: provisioned at ${report.provisionedAt}`);
    assertEquals(report.clock?.problem, null, what);
  } else {
    // The clock at systemd's floor is before the certificate: no age, expiry or due-ness from it.
    assert(before < notBefore, `${what}: the board's clock ${new Date(before).toISOString()}`);
    assertMatch(report.clock?.problem ?? "", /^The system clock reads \S+, before /, what);
    assertEquals(
      [report.certificate?.ageDays, report.certificate?.expiresInDays],
      [null, null],
      what,
    );
    assertEquals(report.certificate?.rotationDue, null, what);
  }
  return report;
}

/**
 * The rotate timer on a fresh board: enabled, waiting, due within a day and
 * its six hours of random delay, by the board's clock; fleetprov-rotate.service
 * not run yet (or, should the day have turned since the factory, having
 * found nothing due); no rotation journal; nothing issued to the thing.
 */
async function assertRotateTimerWaiting(run: Run, board: Board, id: Identity): Promise<void> {
  const timer = await board.check(
    "systemctl is-enabled fleetprov-rotate.timer; systemctl is-active fleetprov-rotate.timer; " +
      // systemd 252's show prints the time as text whatever --timestamp says: date reads it.
      'date -u +%s; date -u +%s -d "$(systemctl show -P NextElapseUSecRealtime fleetprov-rotate.timer)"',
  );
  const [enabled, active, now, next] = timer.trim().split("\n");
  assertEquals([enabled, active], ["enabled", "active"], "fleetprov-rotate.timer");
  const left = Number(next) - Number(now);
  assert(left > 0 && left <= 30 * 3600, `fleetprov-rotate.timer elapses in ${left} s`);
  const service = await unit(board, "fleetprov-rotate.service");
  if (service.ExecMainStartTimestampMonotonic !== "0") {
    const said = await board.check("journalctl -b -o cat -u fleetprov-rotate.service");
    assertMatch(said, /not rotating before/, "fleetprov-rotate.service ran");
  }
  assertEquals((await board.sh(`test -e ${ROTATION_JOURNAL}`)).code, 1, "a rotation journal");
  assertEquals(run.endpoint.certificatesIssuedTo(id.thingName), [], "a rotation");
}

/**
 * `fleetprov rotate --force --output json` at the board's shell, with the
 * config as the factory wrote it (it names the emulator's rotation
 * template): exit 0, the result line's rotation from `old` to the one new
 * certificate the emulator issued to the thing. Returns that certificate's
 * id and the run's time.
 */
async function rotateNow(
  run: Run,
  board: Board,
  options: { id: Identity; old: string },
): Promise<{ certificateId: string; seconds: number }> {
  const result = await board.sh(
    `fleetprov rotate --config-file ${CONFIG_FILE} --force --output json`,
    { timeoutMs: 420_000 },
  );
  const line = JSON.parse(result.text.trim().split("\n").at(-1) ?? "{}");
  assertEquals([result.code, line.error], [0, null], result.text + result.stderr);
  assertEquals(line.rotation?.oldCertificateId, options.old);
  const issued = run.endpoint.certificatesIssuedTo(options.id.thingName);
  assertEquals(issued, [line.rotation?.newCertificateId], "one certificate for the rotation");
  return { certificateId: issued[0], seconds: line.timings.totalMs / 1000 };
}

/**
 * The clock of a board without RTC: waits until fleetprov has said the
 * clock is wrong (it then polls), reads the board's clock, and sets it over
 * the serial line to the host's time. Returns the board's clock before.
 */
async function setClockWhenAsked(board: Board): Promise<Date> {
  await board.check(
    "until journalctl -b -u fleetprov.service -o cat | grep -q 'The system clock reads'; " +
      "do sleep 0.5; done",
    { timeoutMs: 420_000 },
  );
  const before = new Date(Number(await board.check("date -u +%s")) * 1000);
  await board.check(`date -u -s @${Math.floor(Date.now() / 1000)}`);
  return before;
}

/** The journal step on a disk read after a cut, or undefined without a journal. */
function journalStep(root: string): string | undefined {
  const path = join(root, JOURNAL);
  if (!existsSync(path)) return undefined;
  return JSON.parse(Deno.readTextFileSync(path)).step;
}

/**
 * First boot with the RTC right: provisions; status says so; the rotate
 * timer waits; `fleetprov rotate --force` replaces the certificate. Second
 * boot without RTC (the reboot after the rotation): on the new certificate,
 * already provisioned and quiet, status naming the rotation.
 */
async function firstAndSecondBoot(run: Run): Promise<void> {
  const id = identity(run, "first-boot");
  const disk = await overlay(run.installed.disk, join(run.work, `${id.label}.qcow2`));
  const first = boot(run, id, disk, { name: "1" });
  let provisioned;
  let rotated;
  try {
    await first.login();
    provisioned = await assertProvisioned(run, first, id, { name: "1" });
    const wall = first.elapsed();
    const multiUser = activeAt(await unit(first, "multi-user.target"));
    const service = await unit(first, "fleetprov.service");
    assertEquals(service.NRestarts, "0");
    assert(
      provisioned.lines.some((l) => l.includes(`[INFO] Provisioned thing ${id.thingName}`)),
      provisioned.lines.join("\n"),
    );
    // The README's install (0700 directory, 0640 config) draws no warning.
    assertEquals(provisioned.lines.filter((l) => /\[WARN\]|\[ERROR\]/.test(l)), []);
    assertEquals(provisioned.status.lastRotation, null);
    run.figures.push(
      `first boot: multi-user.target at ${multiUser.toFixed(1)} s, fleetprov-provisioned.target ` +
        `at ${provisioned.provisionedAt.toFixed(1)} s (guest clock since the kernel started; ` +
        `${provisioned.runTime}), ` +
        `${wall.toFixed(1)} s from QEMU's start until the test saw it`,
    );
    await assertRotateTimerWaiting(run, first, id);
    rotated = await rotateNow(run, first, { id, old: provisioned.certificateId });
    run.figures.push(
      `fleetprov rotate --force on the board: ${rotated.seconds.toFixed(1)} s (its result line)`,
    );
    await first.poweroff();
  } catch (error) {
    await first.kill();
    throw error;
  }
  const connectsBefore = run.endpoint.lines.length;
  const second = boot(run, id, disk, { name: "2", noRtc: true });
  try {
    await second.login();
    const again = await assertProvisioned(run, second, id, {
      name: "2",
      rotatedFrom: provisioned.certificateId,
    });
    assertEquals(again.certificateId, rotated.certificateId, "on the rotated certificate");
    assertEquals(
      again.lines.filter((l) => !l.includes(`Already provisioned as thing ${id.thingName}`)),
      [],
    );
    assertEquals(again.lines.length, 1, "one line: already provisioned");
    // The Device Client's view: the same thing and paths; the old certificate's own files gone.
    const [before, after] = [provisioned.root, again.root].map((root) => runtimeConfigIn(root)!);
    for (const key of ["thing-name", "cert", "key", "completed-fp"]) {
      assertEquals(after[key], before[key], `runtime config ${key}`);
    }
    const files = listFiles(join(again.root, STATE_DIR));
    assertEquals(files.filter((f) => f.includes(provisioned.certificateId)), []);
    // Quiet: nothing reached the endpoint from this board.
    const seen = run.endpoint.lines.slice(connectsBefore)
      .filter((l) => l.includes(id.clientId) || l.includes(id.thingName));
    assertEquals(seen, []);
    const clock = (await second.check("date -u +%FT%TZ")).trim();
    run.figures.push(
      `second boot (no RTC, clock ${clock}), on the rotated certificate: ` +
        `fleetprov-provisioned.target at ${again.provisionedAt.toFixed(1)} s (${again.runTime})`,
    );
  } finally {
    await second.kill();
  }
}

/**
 * No RTC, and a power cut right after the create answer was journaled: the
 * next boot (no RTC either) must resume with the journaled certificate and
 * ownership token once the clock is set, minting no second certificate.
 */
async function noRtcPowerCut(run: Run): Promise<void> {
  const id = identity(run, "no-rtc-cut");
  const disk = await overlay(run.installed.disk, join(run.work, `${id.label}.qcow2`));
  const first = boot(run, id, disk, { name: "1", noRtc: true, crashAt: "after-journal-created" });
  let clock: Date;
  try {
    await first.login();
    clock = await setClockWhenAsked(first);
    await first.waitForConsole(KILLED, "fleetprov killed after the create answer was journaled", {
      timeoutMs: 420_000,
    });
  } finally {
    await first.kill();
  }
  // The floor systemd gives a clock without RTC is before the claim certificate: TLS cannot work.
  const claim = new X509Certificate(Deno.readTextFileSync(run.endpoint.claimFiles().cert));
  assert(clock < new Date(claim.validFrom), `${clock.toISOString()} vs ${claim.validFrom}`);
  const cut = await readDisk(disk, join(run.work, `${id.label}-cut.disk`));
  assertEquals(damagedFiles(cut), [], "after the cut");
  assertEquals(journalStep(cut), "certificate-created", "the journal is on the disk");
  const issued = run.endpoint.certificatesIssuedTo(id.clientId);
  assertEquals(issued.length, 1);

  const second = boot(run, id, disk, { name: "2", noRtc: true });
  try {
    await second.login();
    const clockAgain = await setClockWhenAsked(second);
    const state = await assertProvisioned(run, second, id, { name: "2" });
    assertEquals(
      run.endpoint.certificatesIssuedTo(id.clientId),
      [state.certificateId],
      "exactly one certificate: the journaled one",
    );
    run.figures.push(
      `no RTC: the board's clock read ${clock.toISOString()} and ${clockAgain.toISOString()} ` +
        `at fleetprov's clock line; one certificate after the cut`,
    );
  } finally {
    await second.kill();
  }
}

/**
 * What a power cut at each crash point leaves on the disk, fleetprov having
 * fsynced each file before going on: the journal's step, the files under
 * the state directory (`{id}` is the journaled certificate's id), and
 * whether the runtime config is there.
 */
const AFTER_CUT: Partial<
  Record<CrashPoint, { step: string; files: string[]; runtimeConfig: boolean }>
> = {
  "after-key-file": {
    step: "registered",
    files: ["keys/{id}-certificate.pem.crt", "keys/{id}-private.pem.key"],
    runtimeConfig: false,
  },
  "after-runtime-config": {
    step: "registered",
    files: ["keys/active-certificate.pem.crt", "keys/active-private.pem.key"],
    runtimeConfig: true,
  },
  "after-journal-committed": {
    step: "committed",
    files: ["keys/active-certificate.pem.crt", "keys/active-private.pem.key"],
    runtimeConfig: true,
  },
};

/** Checks the disk after a cut at `point` against {@linkcode AFTER_CUT}. */
function assertDurable(root: string, point: CrashPoint): void {
  const expected = AFTER_CUT[point];
  if (!expected) return;
  assertEquals(journalStep(root), expected.step, `the journal after the cut at ${point}`);
  const id = JSON.parse(Deno.readTextFileSync(join(root, JOURNAL))).certificateId;
  const present = listFiles(join(root, STATE_DIR));
  for (const file of expected.files.map((f) => f.replace("{id}", id))) {
    assert(present.includes(file), `${file} is not on the disk after the cut at ${point}`);
  }
  const config = runtimeConfigIn(root);
  assertEquals(config !== undefined, expected.runtimeConfig, `runtime config at ${point}`);
  if (config) provisionedState(root);
}

/**
 * A power cut during the first boot's provisioning, at a crash point or, with
 * no point, as soon as the emulator has sent the create answer; then the disk
 * as the next mount sees it, and the next boot.
 */
async function powerCut(run: Run, point: CrashPoint | "create-answer"): Promise<void> {
  const id = identity(run, `cut-${point}`);
  const disk = await overlay(run.installed.disk, join(run.work, `${id.label}.qcow2`));
  const from = run.endpoint.lines.length;
  const first = boot(run, id, disk, {
    name: "1",
    crashAt: point === "create-answer" ? undefined : point,
  });
  try {
    if (point === "create-answer") {
      await run.endpoint.waitForLine(
        new RegExp(`CreateKeysAndCertificate accepted for ${id.clientId}`),
        { from, timeoutMs: 420_000 },
      );
    } else {
      await first.waitForConsole(KILLED, `fleetprov killed at ${point}`, { timeoutMs: 420_000 });
    }
  } finally {
    await first.kill();
  }
  const cut = await readDisk(disk, join(run.work, `${id.label}-cut.disk`));
  assertEquals(damagedFiles(cut), [], `after the cut at ${point}`);
  if (point !== "create-answer") assertDurable(cut, point);
  const stale = listFiles(join(cut, STATE_DIR)).filter(isTemporary);

  const second = boot(run, id, disk, { name: "2" });
  try {
    await second.login();
    await assertProvisioned(run, second, id, { name: "2", staleTemporaries: stale });
    const issued = run.endpoint.certificatesIssuedTo(id.clientId);
    // README: the worst case is one unregistered certificate left PENDING_ACTIVATION.
    assert(issued.length <= 2, `${point}: ${issued.length} certificates`);
    if (point !== "create-answer") {
      assertEquals(issued.length, 1, `${point}: the journaled certificate is reused`);
    }
    run.figures.push(`power cut at ${point}: ${issued.length} certificate(s) in the end`);
  } finally {
    await second.kill();
  }
}

/** Runs `tasks`, at most `limit` at a time; returns their results in order. */
async function pool<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

for (const archId of ARCHS) {
  const arch = BOARD_ARCHS[archId as BoardArch["id"]];
  if (!arch) throw new Error(`FLEETPROV_BOARD_ARCHS: unknown architecture ${archId}.`);
  // Skipped loudly without QEMU, debootstrap or e2fsprogs; under FLEETPROV_REQUIRE_QEMU=1 (CI) a failure.
  const skipped = skipWhenMissing(unavailableReason(arch), {
    require: "FLEETPROV_REQUIRE_QEMU",
    what: `the ${archId} board tests`,
  });
  Deno.test({
    name:
      `board ${archId}: the .deb on an emulated board: first boot provisions, status, rotation, second is quiet; no RTC; power cuts`,
    ignore: skipped,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      const started = performance.now();
      const work = await Deno.makeTempDir({ prefix: `fleetprov-board-${archId}-` });
      const report = await build({ targets: ["x64", arch.target], log: () => {} });
      const x64 = report.targets.find((target) => target.id === "x64")!.path;
      const deb = report.debs[arch.target];
      assert(deb, `the build made no ${arch.id} package`);
      const image = await boardImage(arch, log);
      const endpoint = await BoardEndpoint.start(x64, join(work, "emulator", "state"));
      let passed = false;
      try {
        const installed = await factoryInstall(image, {
          deb,
          example: Deno.readTextFileSync(EXAMPLE_CONFIG),
          endpoint,
          work,
        });
        assert(installed.version.startsWith("fleetprov "), installed.version);
        // Before any provisioning, fleetprov status on the board: not provisioned (3), nothing written.
        const before = installed.statusBefore;
        assertEquals(
          [before.code, before.report.exitCode, before.report.provisioned, before.report.problems],
          [3, 3, false, []],
          before.stderr,
        );
        assertMatch(
          before.report.reason ?? "",
          /aws-iot-device-client-runtime\.conf does not exist/,
        );
        assert(!installed.stateDirAfterStatus, "fleetprov status created the state directory");
        const run: Run = { arch, image, endpoint, installed, work, boards: 0, figures: [] };
        const steps: [string, () => Promise<void>][] = [
          [
            "first boot provisions, status, rotate --force; second boot (no RTC) on the new certificate, quiet",
            () => firstAndSecondBoot(run),
          ],
          [
            "no RTC: clock set late, power cut after the create answer: one certificate",
            () => noRtcPowerCut(run),
          ],
          ...([
            "create-answer",
            "after-key-file",
            "after-runtime-config",
            "after-journal-committed",
          ] as const)
            .map((point): [string, () => Promise<void>] => [
              `power cut at ${point}, then boot again: provisioned, one thing`,
              () => powerCut(run, point),
            ]),
        ];
        // Up to PARALLEL boards at once: each boot is mostly one busy CPU under TCG.
        const results = await pool(
          steps.map(([name, fn]) => () =>
            t.step({ name, fn, sanitizeOps: false, sanitizeResources: false, sanitizeExit: false })
          ),
          PARALLEL,
        );
        const failed = results.filter((ok) => !ok).length;
        const seconds = (performance.now() - started) / 1000;
        log(
          [
            `${archId}: Debian ${installed.kernel}, ${installed.systemd}, ${installed.version}`,
            `${archId}: image ${
              image.builtNow ? "built now" : "from the cache"
            } (a cold build took ${image.buildSeconds} s); factory install boot ${
              installed.seconds.toFixed(0)
            } s`,
            ...run.figures.map((figure) => `${archId}: ${figure}`),
            `${archId}: whole board test ${seconds.toFixed(0)} s`,
          ].join("\n       "),
        );
        passed = failed === 0;
      } finally {
        await endpoint.stop();
        if (passed) await Deno.remove(work, { recursive: true });
        else log(`${archId}: consoles, disks and files kept in ${work}`);
      }
    },
  });
}
