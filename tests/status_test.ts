// SPDX-License-Identifier: Apache-2.0
/**
 * `fleetprov status` through the real CLI: who the board is before and
 * after provisioning and a rotation, what is pending, the claim
 * certificate's expiry, the exit codes (0 provisioned, 3 not, 78 for a
 * runtime config naming a missing file), in text and JSON, and that it
 * writes nothing: not on a writable home (every file's bytes and times
 * unchanged, no lock) and not on a read-only one (it still answers).
 */
import { X509Certificate } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { STATUS_NOT_PROVISIONED, type StatusReport } from "../src/commands/status.ts";
import { ExitCode } from "../src/errors.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  activeCertificateId,
  canMount,
  configDirOf,
  cutRotation,
  deviceArgs,
  deviceHome,
  fakeTimeEnv,
  libfaketime,
  mountTmpfs,
  rotateArgs,
  rotationEmulator,
  runFleetprov,
  runtimeConfigPathOf,
  tempDir,
  type TestEmulator,
} from "./support/mod.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };

/** `fleetprov status --output json` of a board: its report and exit code. */
async function statusOf(
  emulator: TestEmulator,
  home: string,
  env?: Record<string, string>,
): Promise<{ code: number; report: StatusReport; stderr: string }> {
  const result = await runFleetprov(
    ["status", "--config-file", emulator.configPath, "--output", "json"],
    { home, env },
  );
  const lines = result.stdout.trim().split("\n");
  assertEquals(lines.length, 1, `one JSON object on stdout:\n${result.stdout}`);
  return { code: result.code, report: JSON.parse(lines[0]), stderr: result.stderr };
}

/** Every file under `dir` with its bytes, mode and modification time. */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    const stats = statSync(path);
    out[name] = `${stats.mode} ${stats.mtimeMs} ${
      stats.isFile() ? readFileSync(path, "base64") : "dir"
    }`;
  }
  return out;
}

Deno.test({
  ...TEST,
  name:
    "status: not provisioned (3), provisioned (0), rotated: thing, certificate, key, validity, age, provisioned at, last rotation, claim expiry",
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const home = deviceHome();
      const before = await statusOf(emulator, home);
      assertEquals(before.code, STATUS_NOT_PROVISIONED);
      assertEquals(STATUS_NOT_PROVISIONED, 3);
      assertEquals(before.report.exitCode, 3);
      assertEquals(before.report.provisioned, false);
      assertMatch(before.report.reason!, /aws-iot-device-client-runtime\.conf does not exist\./);
      assert(!existsSync(configDirOf(home)), "status created nothing");

      const provisioned = await runFleetprov(deviceArgs(emulator, { serial: "SN-ROT" }), { home });
      assertEquals(provisioned.code, 0, provisioned.stderr);
      const first = await statusOf(emulator, home);
      assertEquals(first.code, ExitCode.Ok, first.stderr);
      const r = first.report;
      const keys = join(configDirOf(home), "keys");
      const pem = readFileSync(join(keys, "active-certificate.pem.crt"), "utf8");
      const x509 = new X509Certificate(pem);
      assertEquals(r.provisioned, true);
      assertEquals(r.thingName, "board-SN-ROT");
      assertEquals(r.certificate?.id, activeCertificateId(home));
      assertEquals(r.certificate?.path, join(keys, "active-certificate.pem.crt"));
      assertEquals(r.certificate?.notBefore, new Date(x509.validFrom).toISOString());
      assertEquals(r.certificate?.notAfter, new Date(x509.validTo).toISOString());
      assertEquals(r.certificate?.ageDays, 1); // the emulator backdates notBefore by a day
      assertEquals(r.certificate?.rotationDue, false);
      assertEquals(r.privateKey, { location: "file", path: join(keys, "active-private.pem.key") });
      assertEquals(r.provisionedAt, statSync(runtimeConfigPathOf(home)).mtime.toISOString());
      assertEquals(r.lastRotation, null);
      assertEquals(r.pending, null);
      const claim = new X509Certificate(readFileSync(emulator.claim.certPath));
      assertEquals(r.claimCertificate, {
        path: emulator.claim.certPath,
        notAfter: new Date(claim.validTo).toISOString(),
        expiresInDays: Math.floor((new Date(claim.validTo).getTime() - Date.now()) / 86_400_000),
      });
      assertEquals(r.runtimeConfig, runtimeConfigPathOf(home));
      assertEquals(r.problems, []);

      const rotated = await runFleetprov(rotateArgs(emulator, { extra: ["--force"] }), { home });
      assertEquals(rotated.code, 0, rotated.stderr);
      const after = await statusOf(emulator, home);
      assertEquals(after.code, ExitCode.Ok);
      assertEquals(after.report.certificate?.id, activeCertificateId(home));
      assertEquals(after.report.lastRotation?.oldCertificateId, r.certificate?.id);
      assertEquals(after.report.lastRotation?.newCertificateId, activeCertificateId(home));
      assertEquals(after.report.provisionedAt, r.provisionedAt, "provisioned at is carried on");

      const text = await runFleetprov(["status", "--config-file", emulator.configPath], { home });
      assertEquals(text.code, ExitCode.Ok);
      for (
        const pattern of [
          /^Provisioned: +yes$/m,
          /^Thing name: +board-SN-ROT$/m,
          new RegExp(`^Certificate id: +${activeCertificateId(home)}$`, "m"),
          /^Private key: +\S+active-private\.pem\.key \(file\)$/m,
          /^Age: +1 day \(rotation not due/m,
          new RegExp(`^Last rotation: +\\S+ \\(replaced certificate ${r.certificate?.id}\\)$`, "m"),
          /^Pending: +nothing$/m,
          /^Claim certificate: +\S+claim-certificate\.pem\.crt, expires /m,
        ]
      ) assertMatch(text.stdout, pattern);
      assertEquals(text.stderr, "");
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "status: a pending rotation is named; a runtime config naming a missing certificate needs a person (78, the path named)",
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const home = deviceHome();
      const provisioned = await runFleetprov(deviceArgs(emulator, { serial: "SN-ROT" }), { home });
      assertEquals(provisioned.code, 0, provisioned.stderr);
      const oldId = activeCertificateId(home);
      await cutRotation(emulator, { home, point: "after-journal-registered" });
      const pending = await statusOf(emulator, home);
      assertEquals(pending.code, ExitCode.Ok);
      assertEquals(pending.report.certificate?.id, oldId, "the old identity is still the one");
      assertEquals(pending.report.pending?.kind, "rotation");
      assertEquals(pending.report.pending?.step, "registered");

      rmSync(join(configDirOf(home), "keys", "active-certificate.pem.crt"));
      const broken = await statusOf(emulator, home);
      assertEquals(broken.code, ExitCode.Config);
      assertEquals(broken.report.exitCode, ExitCode.Config);
      assertEquals(broken.report.thingName, "board-SN-ROT");
      assertEquals(broken.report.provisioned, false);
      assertMatch(
        broken.report.problems.join("\n"),
        /active-certificate\.pem\.crt .* does not exist/,
      );
      assertMatch(broken.stderr, /^fleetprov: .*active-certificate\.pem\.crt .* does not exist/m);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "status writes nothing: a writable home is left byte for byte, a read-only one still answers",
  ignore: !canMount(),
  async fn() {
    const emulator = await rotationEmulator();
    const disk = mountTmpfs(4096);
    try {
      const home = join(disk.path, "home");
      mkdirSync(join(home, "lock"), { recursive: true, mode: 0o700 });
      const provisioned = await runFleetprov(deviceArgs(emulator, { serial: "SN-ROT" }), { home });
      assertEquals(provisioned.code, 0, provisioned.stderr);
      // A pending rotation too, so status reads every journal.
      await cutRotation(emulator, { home, point: "after-journal-created" });
      rmSync(join(home, "lock", "devicecl.lock"), { force: true });
      rmSync(join(home, "lock", "fleetprov-rotate.lock"), { force: true });
      const before = fingerprint(home);
      const writable = await statusOf(emulator, home);
      assertEquals(writable.code, ExitCode.Ok, writable.stderr);
      assertEquals(fingerprint(home), before, "status changed a file");

      disk.setReadOnly(true);
      const readOnly = await statusOf(emulator, home);
      assertEquals(readOnly.code, ExitCode.Ok, readOnly.stderr);
      assertEquals(readOnly.report.thingName, "board-SN-ROT");
      assertEquals(readOnly.report.pending?.step, "certificate-created");
      assertEquals(readOnly.stderr, "");
    } finally {
      disk.unmount();
      await emulator.close();
    }
  },
});

Deno.test({
  ...TEST,
  name:
    "status by a clock not set yet (no RTC: before fleetprov was built, or before the device certificate was issued): no age, no expiry, no due-ness, the clock named; exit 0",
  ignore: libfaketime === undefined,
  async fn() {
    const emulator = await rotationEmulator();
    try {
      const home = deviceHome();
      const provisioned = await runFleetprov(deviceArgs(emulator, { serial: "SN-CLK" }), { home });
      assertEquals(provisioned.code, 0, provisioned.stderr);
      const pem = readFileSync(join(configDirOf(home), "keys", "active-certificate.pem.crt"));
      const notBefore = new Date(new X509Certificate(pem).validFrom);
      const clock = (at: string) => {
        const file = join(tempDir("fleetprov-faketime-"), "faketime");
        writeFileSync(file, `@${at}\n`);
        return fakeTimeEnv({ file });
      };
      const cases: [string, RegExp][] = [
        // systemd's floor on a board without RTC (252.39's build date): before fleetprov's.
        [
          "2026-04-27 19:49:40",
          /^The system clock reads 2026-04-27T19:49:40Z, before fleetprov was built /,
        ],
        // After fleetprov's build, an hour before AWS IoT issued the certificate.
        [
          new Date(notBefore.getTime() - 3_600_000).toISOString().replace("T", " ").slice(0, 19),
          /, before the validity of the device certificate and the root CA; it should read after /,
        ],
      ];
      for (const [at, problem] of cases) {
        const { code, report, stderr } = await statusOf(emulator, home, clock(at));
        assertEquals([code, report.provisioned, report.problems, stderr], [0, true, [], ""]);
        assertMatch(report.clock.problem ?? "", problem);
        assertEquals(report.clock.now, `${at.replace(" ", "T")}Z`);
        assertEquals(report.clock.synchronised, false);
        assertEquals(
          [report.certificate?.ageDays, report.certificate?.expiresInDays],
          [null, null],
        );
        assertEquals(report.certificate?.rotationDue, null);
        assertEquals(report.claimCertificate?.expiresInDays, null);
        const text = await runFleetprov(["status", "--config-file", emulator.configPath], {
          home,
          env: clock(at),
        });
        assertEquals(text.code, ExitCode.Ok, text.stderr);
        assertMatch(text.stdout, /^Age: +unknown until the clock is set \(see Clock\)$/m);
        assertMatch(text.stdout, /^Clock: +The system clock reads /m);
        assertMatch(text.stdout, /^Valid: +\S+ to \S+$/m);
      }
      // By a plausible clock the same board has its age, and no Clock line.
      const now = await statusOf(emulator, home);
      assertEquals(now.report.clock.problem, null);
      assertEquals(now.report.certificate?.ageDays, 1);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test("status --help and --version print the usage and the version, as the other commands do, and read nothing", async () => {
  const home = deviceHome();
  const help = await runFleetprov(["status", "--help"], { home });
  assertEquals([help.code, help.stderr], [ExitCode.Ok, ""]);
  assertMatch(help.stdout, /^Usage:\n/m);
  assertMatch(help.stdout, /fleetprov status \[flags\] +who the board is/);
  assertMatch(help.stdout, /74\/77\/78 needs a person/);
  const short = await runFleetprov(["status", "-h"], { home });
  assertEquals([short.code, short.stdout], [ExitCode.Ok, help.stdout]);
  const version = await runFleetprov(["status", "--version"], { home });
  assertEquals(version.code, ExitCode.Ok);
  assertMatch(version.stdout, /^fleetprov \d+\.\d+\.\d+ /);
});
