// SPDX-License-Identifier: Apache-2.0
/**
 * Power loss at every step boundary: the CLI is killed with SIGKILL at each
 * crash point (FLEETPROV_CRASH_AT) and while a request is in flight (the
 * emulator holds it at a pause point, the test kills the child, then releases
 * it). After each kill: the runtime config is valid JSON or absent, no
 * temporary file is left, every file has its mode. The next run finishes;
 * the registry holds exactly one thing and at most one certificate left
 * PENDING_ACTIVATION.
 *
 * Two templates: SERIAL_TEMPLATE names the thing from a parameter; the Device
 * Client's sample template names it from the certificate id, so a second
 * certificate would make a second thing: one thing proves the journaled
 * certificate and ownership token were reused.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  assertNoTempFiles,
  assertProvisioned,
  boardEmulator,
  certificateStatuses,
  type ChildResult,
  concurrentSteps,
  configDirOf,
  deviceArgs,
  deviceHome,
  listFiles,
  modeOf,
  runFleetprov,
  runtimeConfigIfAny,
  runToCrashPoint,
  SERIAL_TEMPLATE,
  spawnFleetprov,
  TEMPLATE_NAME,
  testEmulator,
} from "./support/mod.ts";
import { type Emulator, startEmulator } from "../src/emulator/mod.ts";
import { CRASH_POINTS, type CrashPoint } from "../src/failpoints.ts";
import { writeFileAtomic } from "../src/secure_files/mod.ts";

type TemplateKind = "serial" | "dc-sample";

/**
 * The emulator of a case. EC keys: the cases run side by side, and RSA key
 * generation on a loaded machine could outlast a step timeout, retry a create
 * and mint a certificate the counts below would take for a crash's.
 */
function emulatorFor(kind: TemplateKind, options: { tokenLifetimeMs?: number } = {}) {
  const all = { ...options, keyType: "ec-p256" as const };
  return kind === "serial" ? boardEmulator(all) : testEmulator(all);
}

/** Retries as FAST_RETRY, with a step timeout a loaded machine does not reach. */
const CRASH_RETRY = [
  "--step-timeout",
  "15",
  "--deadline",
  "60",
  "--retry-base-delay",
  "0.02",
  "--retry-max-delay",
  "0.2",
];

function argsFor(kind: TemplateKind, emulator: Emulator, extra: string[] = []): string[] {
  return deviceArgs(emulator, {
    serial: kind === "serial" ? "SN-CRASH" : undefined,
    extra,
    retry: CRASH_RETRY,
  });
}

/** fleetprov's temporary files (writeFileAtomic's names) under a device's config dir. */
function temporaries(home: string): string[] {
  return listFiles(configDirOf(home)).filter((f) =>
    /(^|\/)\.[^/]+\.\d+-[0-9a-z]+-\d+\.tmp$/.test(f)
  );
}

/**
 * The state a SIGKILL may leave: modes right, runtime config valid or absent,
 * no temp files but the one a kill in the middle of a write leaves.
 */
function assertCleanAfterKill(home: string, what: string, left = 0): void {
  const configDir = configDirOf(home);
  if (left === 0) assertNoTempFiles(home);
  else assertEquals(temporaries(home).length, left, `${what}: the write's temporary file`);
  runtimeConfigIfAny(home);
  for (const file of listFiles(configDir)) {
    if (temporaries(home).includes(file)) {
      assertEquals(modeOf(join(configDir, file)), "600", `${what}: ${file}`);
      continue;
    }
    const mode = modeOf(join(configDir, file));
    if (file.endsWith(".key") || file === "fleetprov-journal.json") {
      assertEquals(mode, "600", `${what}: ${file}`);
    } else if (file.endsWith(".crt")) assertEquals(mode, "644", `${what}: ${file}`);
    else if (file.endsWith("runtime.conf")) assertEquals(mode, "640", `${what}: ${file}`);
    else throw new Error(`${what}: unexpected file ${file}`);
  }
  if (existsSync(join(configDir, "keys"))) assertEquals(modeOf(join(configDir, "keys")), "700");
}

/** After the rerun: one thing, the device's certificate ACTIVE on it, pending certificates as expected. */
function assertOneThing(
  emulator: Emulator,
  home: string,
  kind: TemplateKind,
  what: string,
  pending: number,
): void {
  const { thingName, certificatePem } = assertProvisioned(home);
  const things = emulator.registry.things();
  assertEquals(things.map((t) => t.thingName), [thingName], `${what}: exactly one thing`);
  if (kind === "serial") assertEquals(thingName, "board-SN-CRASH");
  else assertMatch(thingName, /^FPTemplateName-[0-9a-f]{64}$/);
  const principals = things[0].principals;
  assertEquals(principals.length, 1, `${what}: one certificate on the thing`);
  const cert = emulator.registry.certificate(principals[0])!;
  assertEquals(cert.status, "ACTIVE");
  assertEquals(cert.certificatePem.trim(), certificatePem.trim(), `${what}: the device's cert`);
  const statuses = certificateStatuses(emulator);
  assertEquals(statuses.ACTIVE, 1, `${what}: one ACTIVE certificate`);
  assertEquals(statuses.PENDING_ACTIVATION ?? 0, pending, `${what}: PENDING_ACTIVATION`);
}

/** Certificates minted but never journaled stay PENDING_ACTIVATION (AWS deletes them after an hour). */
const PENDING_AFTER: Record<string, number> = { "after-create-answer": 1, "mid-write": 1 };

/** Temporary files a kill leaves: one in the middle of the journal's write; the next run sweeps it. */
const TEMPORARIES_AFTER: Record<string, number> = { "mid-write": 1 };

/** A kill while a request is held by the emulator. */
interface InFlight {
  name: string;
  operation: "CreateKeysAndCertificate" | "RegisterThing" | "connect";
  point: "before" | "after";
  /** Certificates left PENDING_ACTIVATION after the rerun. */
  pending: number;
}

const IN_FLIGHT: InFlight[] = [
  // Released after the kill, the create still mints a certificate nobody receives.
  {
    name: "create request held on arrival",
    operation: "CreateKeysAndCertificate",
    point: "before",
    pending: 1,
  },
  { name: "create answer held", operation: "CreateKeysAndCertificate", point: "after", pending: 1 },
  // The thing exists but the answer is lost: the rerun registers again with the journaled token.
  {
    name: "register request held on arrival",
    operation: "RegisterThing",
    point: "before",
    pending: 0,
  },
  { name: "register answer held", operation: "RegisterThing", point: "after", pending: 0 },
  // Files committed, the CONNECT with the new certificate held.
  { name: "new-certificate CONNECT held", operation: "connect", point: "before", pending: 0 },
];

async function crashAt(kind: TemplateKind, point: CrashPoint): Promise<void> {
  const emulator = await emulatorFor(kind);
  try {
    const home = deviceHome();
    const first = await runToCrashPoint(argsFor(kind, emulator), { home, point });
    assertEquals(first.signal, "SIGKILL", `${point}: killed\n${first.stderr}`);
    assertCleanAfterKill(home, point, TEMPORARIES_AFTER[point]);
    assert(existsSync(join(home, "lock", "devicecl.lock")), "the killed run left its lock");
    const second = await runFleetprov(argsFor(kind, emulator), { home });
    assertEquals(second.code, 0, `${point}: rerun\n${second.stdout}${second.stderr}`);
    if (/Provisioned thing/.test(second.stdout)) {
      // The rerun took the dead run's lock over and freed it. (A rerun that finds the
      // runtime config complete has nothing to do, takes no lock and leaves the stale file.)
      assert(
        !existsSync(join(home, "lock", "devicecl.lock")),
        "the stale lock was taken, then freed",
      );
    } else assertMatch(second.stdout, /Already provisioned/);
    if (TEMPORARIES_AFTER[point]) {
      assertMatch(second.stdout, /Removed 1 temporary file\(s\) an interrupted write left in /);
    }
    assertOneThing(emulator, home, kind, point, PENDING_AFTER[point] ?? 0);
  } finally {
    await emulator.close();
  }
}

async function killInFlight(kind: TemplateKind, c: InFlight): Promise<void> {
  const emulator = await emulatorFor(kind);
  try {
    const home = deviceHome();
    let pause: ReturnType<Emulator["faults"]["pause"]> | undefined;
    let off = () => {};
    if (c.operation === "connect") {
      // Hold the CONNECT that follows the RegisterThing answer: the new certificate's.
      off = emulator.events.on("answer", (event) => {
        if (event.operation === "RegisterThing" && event.accepted && !pause) {
          pause = emulator.faults.pause("connect", c.point);
        }
      });
    } else {
      pause = emulator.faults.pause(c.operation, c.point);
    }
    // A long step timeout: the held request must not time out and be retried before the kill.
    const { child, result } = spawnFleetprov(
      argsFor(kind, emulator, ["--step-timeout", "15", "--deadline", "30"]),
      { home },
    );
    let outcome: ChildResult;
    try {
      while (!pause) {
        const next = await Promise.race([emulator.events.waitFor("answer"), result]);
        assert(!("code" in next), `${c.name}: the run ended before the RegisterThing answer`);
      }
      const held = await Promise.race([pause.reached, result]);
      assert("clientId" in held, `${c.name}: the run ended before reaching the pause`);
      off();
      child.kill("SIGKILL");
      outcome = await result;
      if (c.operation !== "connect" && c.point === "before") {
        // Released, the request does its work for a dead client: wait until it is done
        // (held again right before its answer) so the rerun meets the registry it left.
        const worked = emulator.faults.pause(c.operation, "after");
        pause.release();
        await worked.reached;
        worked.release();
      }
    } finally {
      off();
      pause?.release();
    }
    assertEquals(outcome.signal, "SIGKILL", c.name);
    assertCleanAfterKill(home, c.name);
    const second = await runFleetprov(argsFor(kind, emulator), { home });
    assertEquals(second.code, 0, `${c.name}: rerun\n${second.stdout}${second.stderr}`);
    assertOneThing(emulator, home, kind, c.name, c.pending);
  } finally {
    await emulator.close();
  }
}

for (const kind of ["serial", "dc-sample"] as const) {
  Deno.test({
    name:
      `kill -9 at every step boundary and mid-request, ${kind} template: the rerun finishes with one thing`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: (t) =>
      concurrentSteps(t, [
        ...CRASH_POINTS.map((point) => ({ name: point, fn: () => crashAt(kind, point) })),
        ...IN_FLIGHT.map((c) => ({ name: c.name, fn: () => killInFlight(kind, c) })),
      ]),
  });
}

Deno.test("a journaled token past its reuse window is not used: the run starts over", async () => {
  const emulator = await emulatorFor("serial");
  try {
    const home = deviceHome();
    const first = await runToCrashPoint(argsFor("serial", emulator), {
      home,
      point: "after-journal-created",
    });
    assertEquals(first.signal, "SIGKILL");
    const journalPath = join(configDirOf(home), "fleetprov-journal.json");
    const journal = JSON.parse(readFileSync(journalPath, "utf8"));
    const oldCertificate = journal.certificateId;
    journal.issuedAt -= 2 * 3600_000; // issued two hours ago
    writeFileAtomic(journalPath, JSON.stringify(journal), { mode: 0o600 });

    const requests: string[] = [];
    emulator.events.on("request", (e) => requests.push(e.operation));
    const second = await runFleetprov(argsFor("serial", emulator), { home });
    assertEquals(second.code, 0, second.stderr);
    assertMatch(second.stderr, /expired ownership token; starting over with a new certificate/);
    assertEquals(requests, ["CreateKeysAndCertificate", "RegisterThing"]);
    // The stale certificate was never registered; AWS (and the emulator) delete it at expiry.
    assertEquals(emulator.registry.certificate(oldCertificate)?.status, "PENDING_ACTIVATION");
    assertOneThing(emulator, home, "serial", "expired journal", 1);
  } finally {
    await emulator.close();
  }
});

for (const kind of ["serial", "dc-sample"] as const) {
  Deno.test(`a token the service expired while the device was down: refused, the run starts over (${kind})`, async () => {
    // Tokens issued by this emulator expire at once; the device dies before RegisterThing.
    const shortLived = await emulatorFor(kind, { tokenLifetimeMs: 0 });
    const stateDir = dirname(shortLived.configPath);
    const home = deviceHome();
    try {
      const first = await runToCrashPoint(argsFor(kind, shortLived), {
        home,
        point: "after-journal-created",
      });
      assertEquals(first.signal, "SIGKILL");
    } finally {
      await shortLived.close();
    }
    // The same service comes back with the normal lifetime; the journaled token is dead.
    const emulator = await startEmulator({
      stateDir,
      port: 0,
      ...(kind === "serial" ? { templateName: TEMPLATE_NAME, template: SERIAL_TEMPLATE } : {}),
    });
    try {
      const second = await runFleetprov(argsFor(kind, emulator), { home });
      assertEquals(second.code, 0, second.stderr);
      assertMatch(second.stderr, /ownership token .* was refused; starting over/);
      assertOneThing(emulator, home, kind, "expired token", 0);
    } finally {
      await emulator.close();
    }
  });
}
