// SPDX-License-Identifier: Apache-2.0
/**
 * Test helpers: temporary homes, the emulator, and running the real CLI
 * (`deno run main.ts`, or the binary named by FLEETPROV_BIN) as a child process.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { chmodSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Emulator, type EmulatorOptions, startEmulator } from "../../src/emulator/mod.ts";

/** Repository root. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Deno's cache, kept when a test changes HOME (it defaults to $HOME/.cache/deno). */
const DENO_DIR = Deno.env.get("DENO_DIR") ??
  join(Deno.env.get("HOME") ?? "/root", ".cache", "deno");

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

/** Creates a temporary directory (mode 0700) and returns its path. */
export function tempDir(prefix = "fleetprov-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o700);
  return dir;
}

/** Starts an emulator in a fresh state dir on a free port. */
export function testEmulator(options: Partial<EmulatorOptions> = {}): Promise<Emulator> {
  return startEmulator({ stateDir: join(tempDir("fleetprov-emu-"), "state"), port: 0, ...options });
}

/** A device's home directory; `LOCK_FILE_PATH` points inside it so devices run side by side. */
export function deviceHome(): string {
  const home = tempDir("fleetprov-home-");
  mkdirSync(join(home, "lock"), { mode: 0o700 });
  return home;
}

/** What a finished CLI run printed. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The command that runs fleetprov: the binary in FLEETPROV_BIN, else Deno on main.ts. */
export function fleetprovCommand(
  args: string[],
  options: { bin?: string } = {},
): { command: string; args: string[] } {
  const bin = options.bin ?? Deno.env.get("FLEETPROV_BIN");
  if (bin) return { command: bin, args };
  return {
    command: Deno.execPath(),
    args: ["run", "-A", "--quiet", join(ROOT, "main.ts"), ...args],
  };
}

/** Runs the CLI with HOME set to `home` and returns its exit code and output. */
export async function runFleetprov(
  args: string[],
  options: { home: string; env?: Record<string, string>; bin?: string },
): Promise<RunResult> {
  const { command, args: fullArgs } = fleetprovCommand(args, options);
  const output = await new Deno.Command(command, {
    args: fullArgs,
    env: {
      HOME: options.home,
      LOCK_FILE_PATH: join(options.home, "lock"),
      NO_COLOR: "1",
      DENO_DIR,
      DENO_NO_UPDATE_CHECK: "1",
      ...options.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

/** The permission bits of a path, as an octal string like "600". */
export function modeOf(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

/** Writes a file with an exact mode. */
export function writeWithMode(path: string, text: string, mode: number): void {
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
}

/**
 * Finds a tool installed from a Debian package. Missing, the test is skipped
 * with a loud reason, unless FLEETPROV_REQUIRE_TOOLS=1 (set by .ci/run, which
 * installs the packages) makes that a failure.
 */
export function findTool(candidates: string[], debianPackage: string): string | undefined {
  for (const path of candidates) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // try the next one
    }
  }
  const message = `${candidates[0]} is missing: install the Debian package ${debianPackage}.`;
  if (Deno.env.get("FLEETPROV_REQUIRE_TOOLS") === "1") throw new Error(message);
  console.error(`\n*** SKIPPING tests that need ${candidates[0]}: ${message} ***\n`);
  return undefined;
}
