// SPDX-License-Identifier: Apache-2.0
/**
 * The emulator in tests: one started per test on a free port in a fresh
 * state directory, the templates the suites share, and what its registry
 * says afterwards.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type Emulator, type EmulatorOptions, startEmulator } from "../../src/emulator/mod.ts";
import { assert } from "./assert.ts";
import { fleetprovCommand } from "./cli.ts";
import { tempDir } from "./fs.ts";

/** The template name of the suites' board emulators ({@linkcode boardEmulator}). */
export const TEMPLATE_NAME = "BoardTemplate";

/** A template with a required parameter, a defaulted one, attributes and device configuration. */
export const SERIAL_TEMPLATE = {
  Parameters: {
    SerialNumber: { Type: "String" },
    Location: { Type: "String", Default: "factory-1" },
    "AWS::IoT::Certificate::Id": { Type: "String" },
  },
  Resources: {
    certificate: {
      Type: "AWS::IoT::Certificate",
      Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "Active" },
    },
    policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "FPCertPolicy" } },
    thing: {
      Type: "AWS::IoT::Thing",
      OverrideSettings: {
        AttributePayload: "MERGE",
        ThingGroups: "DO_NOTHING",
        ThingTypeName: "REPLACE",
      },
      Properties: {
        ThingName: { "Fn::Join": ["", ["board-", { Ref: "SerialNumber" }]] },
        AttributePayload: { serial: { Ref: "SerialNumber" }, location: { Ref: "Location" } },
        ThingGroups: [],
      },
    },
  },
  DeviceConfiguration: { Foo: "Bar", Site: { Ref: "Location" }, Tricky: 'quote " backslash \\ é' },
};

/**
 * A provisioning template of the usual three resources: the certificate
 * (with `status` when given), the FPCertPolicy, and a thing named by the
 * `thingName` expression; `parameters` declared, `deviceConfiguration` if any.
 */
export function provisioningTemplate(options: {
  parameters: Record<string, unknown>;
  thingName: unknown;
  status?: string;
  deviceConfiguration?: Record<string, unknown>;
}): Record<string, unknown> {
  const { status, deviceConfiguration } = options;
  return {
    Parameters: options.parameters,
    Resources: {
      certificate: {
        Type: "AWS::IoT::Certificate",
        Properties: {
          CertificateId: { Ref: "AWS::IoT::Certificate::Id" },
          ...(status === undefined ? {} : { Status: status }),
        },
      },
      policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "FPCertPolicy" } },
      thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: options.thingName } },
    },
    ...(deviceConfiguration === undefined ? {} : { DeviceConfiguration: deviceConfiguration }),
  };
}

/** A running test emulator and the log lines it wrote. */
export type TestEmulator = Emulator & { lines: string[] };

/** Starts an emulator in a fresh state dir on a free port; its log lines are kept in `lines`. */
export async function testEmulator(options: Partial<EmulatorOptions> = {}): Promise<TestEmulator> {
  const lines: string[] = [];
  const emulator = await startEmulator({
    stateDir: join(tempDir("fleetprov-emu-"), "state"),
    port: 0,
    ...options,
    log: (line) => {
      lines.push(line);
      options.log?.(line);
    },
  });
  return Object.assign(emulator, { lines });
}

/** The options of a board emulator: {@linkcode SERIAL_TEMPLATE} served as {@linkcode TEMPLATE_NAME}. */
export const BOARD: Partial<EmulatorOptions> = {
  templateName: TEMPLATE_NAME,
  template: SERIAL_TEMPLATE,
};

/** An emulator serving {@linkcode SERIAL_TEMPLATE} as {@linkcode TEMPLATE_NAME}. */
export function boardEmulator(options: Partial<EmulatorOptions> = {}): Promise<TestEmulator> {
  return testEmulator({ ...BOARD, ...options });
}

/** Runs `fn` with a test emulator, and closes the emulator however `fn` ends. */
export async function withEmulator<T>(
  options: Partial<EmulatorOptions>,
  fn: (emulator: TestEmulator) => T | Promise<T>,
): Promise<T> {
  const emulator = await testEmulator(options);
  try {
    return await fn(emulator);
  } finally {
    await emulator.close();
  }
}

/** Device certificates in the registry (the claim certificate left out), by status. */
export function certificateStatuses(emulator: Emulator): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const cert of emulator.registry.certificates()) {
    if (cert.claim) continue;
    counts[cert.status] = (counts[cert.status] ?? 0) + 1;
  }
  return counts;
}

/**
 * Every word of `text` whose SHA-256 matches an ownership token the emulator
 * issued (read from registry.json: close the emulator first).
 */
export function leakedTokens(text: string, emulator: Emulator): string[] {
  const registry = JSON.parse(
    readFileSync(join(dirname(emulator.configPath), "registry.json"), "utf8"),
  );
  const hashes = new Set(
    Object.values(registry.tokens ?? {}).map((t) => (t as { tokenSha256: string }).tokenSha256),
  );
  assert(hashes.size > 0, "the emulator recorded the tokens it issued");
  return text.split(/[^A-Za-z0-9+/=_.-]+/).filter((word) =>
    word.length > 8 && hashes.has(createHash("sha256").update(word).digest("hex"))
  );
}

/** `fleetprov emulator` in its own process: where it listens, and how to stop or kill it. */
export interface EmulatorProcess {
  stateDir: string;
  configPath: string;
  port: number;
  /** The control plane's address, when `--control-port` was given. */
  control?: { host: string; port: number; url: string };
  child: Deno.ChildProcess;
  /** SIGTERM, then resolves with the exit code and everything it printed. */
  stop(): Promise<{ code: number; stdout: string; stderr: string }>;
}

/**
 * Starts `fleetprov emulator --state-dir DIR --port 0 <args>` (the binary in
 * FLEETPROV_BIN or `bin`, else Deno on main.ts); resolves once it printed
 * `listening:` (and `control:` when `--control-port` is among `args`).
 */
export async function spawnEmulator(
  args: string[],
  options: { stateDir?: string; bin?: string } = {},
): Promise<EmulatorProcess> {
  const stateDir = options.stateDir ?? join(tempDir("fleetprov-emu-"), "state");
  const { command, args: fullArgs } = fleetprovCommand(
    ["emulator", "--state-dir", stateDir, "--port", "0", ...args],
    options,
  );
  const child = new Deno.Command(command, {
    args: fullArgs,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  const wantControl = args.includes("--control-port");
  while (!/^listening: \S+:\d+$/m.test(stdout) || (wantControl && !/^control: /m.test(stdout))) {
    const { value, done } = await reader.read();
    if (done) {
      throw new Error(
        `the emulator exited (${(await child.status).code}): ${stdout}${await stderr}`,
      );
    }
    stdout += value;
  }
  const port = Number(/^listening: \S+:(\d+)$/m.exec(stdout)![1]);
  const control = /^control: (\S+):(\d+)$/m.exec(stdout);
  return {
    stateDir,
    configPath: join(stateDir, "device-client.conf"),
    port,
    control: control
      ? { host: control[1], port: Number(control[2]), url: `http://${control[1]}:${control[2]}` }
      : undefined,
    child,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        stdout += value;
      }
      const status = await child.status;
      return { code: status.code, stdout, stderr: await stderr };
    },
  };
}
