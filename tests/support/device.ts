// SPDX-License-Identifier: Apache-2.0
/**
 * A device in tests: its home directory, its Device Client config dir, and
 * checks of what a run left there.
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { listFiles, modeOf, tempDir } from "./fs.ts";

/** A device's home directory; `LOCK_FILE_PATH` points inside it so devices run side by side. */
export function deviceHome(): string {
  const home = tempDir("fleetprov-home-");
  mkdirSync(join(home, "lock"), { mode: 0o700 });
  return home;
}

/** The Device Client config dir of a device home. */
export function configDirOf(home: string): string {
  return join(home, ".aws-iot-device-client");
}

/** The runtime config path of a device home. */
export function runtimeConfigPathOf(home: string): string {
  return join(configDirOf(home), "aws-iot-device-client-runtime.conf");
}

/** The `runtime-config` section of a device's runtime config (which must exist). */
export function runtimeConfigOf(home: string): Record<string, unknown> {
  return JSON.parse(readFileSync(runtimeConfigPathOf(home), "utf8"))["runtime-config"];
}

/**
 * Asserts the runtime config is absent or valid JSON with `completed-fp` true
 * and the files it names present; returns the parsed section when present.
 */
export function runtimeConfigIfAny(home: string): Record<string, unknown> | undefined {
  if (!existsSync(runtimeConfigPathOf(home))) return undefined;
  const parsed = runtimeConfigOf(home);
  assertEquals(parsed["completed-fp"], true);
  for (const key of ["cert", "key"]) {
    const path = parsed[key] as string;
    assert(existsSync(path), `the runtime config's ${key} ${path} exists`);
  }
  return parsed;
}

/** Asserts that no temporary file of an atomic write is left in the config dir. */
export function assertNoTempFiles(home: string): void {
  const temps = listFiles(configDirOf(home)).filter((f) => /(^|\/)\.[^/]*\.tmp$/.test(f));
  assertEquals(temps, [], "temporary files left behind");
}

/**
 * Asserts a device is provisioned: runtime config valid (0640), active files
 * with strict modes, no journal, no temp files; returns the thing name and
 * the certificate PEM it uses.
 */
export function assertProvisioned(home: string): { thingName: string; certificatePem: string } {
  const rc = runtimeConfigIfAny(home);
  assert(rc, "runtime config written");
  const configDir = configDirOf(home);
  const keysDir = join(configDir, "keys");
  assertEquals(modeOf(runtimeConfigPathOf(home)), "640");
  assertEquals(modeOf(keysDir), "700");
  assertEquals(modeOf(join(keysDir, "active-certificate.pem.crt")), "644");
  assertEquals(modeOf(join(keysDir, "active-private.pem.key")), "600");
  for (const file of listFiles(keysDir)) {
    assertEquals(modeOf(join(keysDir, file)), file.endsWith(".key") ? "600" : "644", file);
  }
  assert(!existsSync(join(configDir, "fleetprov-journal.json")), "journal removed");
  assertNoTempFiles(home);
  return {
    thingName: String(rc["thing-name"]),
    certificatePem: readFileSync(String(rc.cert), "utf8"),
  };
}
