// SPDX-License-Identifier: Apache-2.0
/**
 * `deno task demo`: starts the emulator on a free loopback port (its control
 * plane too), writes a device config the way a user would, provisions a
 * device with the real CLI, shows what it wrote, runs again to show it is
 * already provisioned, then rotates its certificate with `fleetprov rotate
 * --force` (the emulator's default rotation template; `fleetprov status`
 * before and after) and retires the old certificate as a backend would,
 * through the control plane.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_ROTATION_TEMPLATE_NAME, sampleTemplate } from "../src/emulator/defaults.ts";
import { type Emulator, startEmulator } from "../src/emulator/mod.ts";
import { deviceHome, runFleetprov, tempDir } from "../tests/support/mod.ts";

const TEMPLATE_NAME = "DemoTemplate";
const template = sampleTemplate() as {
  Parameters: Record<string, unknown>;
  Resources: { thing: { Properties: { AttributePayload: Record<string, unknown> } } };
};
template.Parameters.SerialNumber = { Type: "String" };
template.Resources.thing.Properties.AttributePayload = { serialNumber: { Ref: "SerialNumber" } };

function mode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8).padStart(4, "0");
}

function show(title: string): void {
  console.log(`\n== ${title}`);
}

/** Runs the CLI, prints what it printed, fails the demo on a non-zero exit; returns the wall time. */
async function fleetprov(args: string[], home: string): Promise<number> {
  const started = performance.now();
  const result = await runFleetprov(args, { home });
  const elapsed = performance.now() - started;
  Deno.stdout.writeSync(new TextEncoder().encode(result.stdout + result.stderr));
  if (result.code !== 0) throw new Error(`fleetprov ${args[0]} exited with ${result.code}`);
  return elapsed;
}

/** The thing's certificates and their status, from the registry. */
function certificates(emulator: Emulator, thingName: string): void {
  for (const id of emulator.registry.thing(thingName)?.principals ?? []) {
    console.log(`certificate ${id}: ${emulator.registry.certificate(id)?.status}`);
  }
}

const emulator = await startEmulator({
  stateDir: join(tempDir("fleetprov-demo-emulator-"), "state"),
  port: 0,
  templateName: TEMPLATE_NAME,
  template,
  controlPort: 0,
});
let exitCode = 0;
try {
  show(`Emulator listening on ${emulator.host}:${emulator.port} (template ${TEMPLATE_NAME})`);

  const home = deviceHome();
  const configDir = join(home, ".aws-iot-device-client");
  mkdirSync(configDir, { mode: 0o745 });
  const configPath = join(configDir, "aws-iot-device-client.conf");
  const config = {
    endpoint: "localhost",
    port: emulator.port,
    cert: emulator.claim.certPath,
    key: emulator.claim.keyPath,
    "root-ca": emulator.caPath,
    logging: { level: "INFO", type: "STDOUT" },
    "fleet-provisioning": {
      enabled: true,
      "template-name": TEMPLATE_NAME,
      "template-parameters": JSON.stringify({ SerialNumber: "DEMO-0001" }),
      // The rotation template the emulator serves by default (its device-client.conf names it).
      "rotation-template-name": DEFAULT_ROTATION_TEMPLATE_NAME,
    },
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o640 });
  show(`Device config ${configPath}`);
  console.log(readFileSync(configPath, "utf8"));

  show("First boot: fleetprov --config-file " + configPath);
  const elapsed = await fleetprov(["--config-file", configPath], home);
  console.log(`(process wall time ${Math.round(elapsed)} ms)`);

  const runtime = JSON.parse(
    readFileSync(join(configDir, "aws-iot-device-client-runtime.conf"), "utf8"),
  )["runtime-config"];
  const thing = emulator.registry.thing(runtime["thing-name"]);
  show("Registry");
  console.log(`thing ${runtime["thing-name"]}: attributes ${JSON.stringify(thing?.attributes)}`);
  console.log(
    `certificate ${thing?.principals[0]}: ${
      emulator.registry.certificate(thing!.principals[0])?.status
    }`,
  );

  show("Files written");
  for (const name of readdirSync(configDir).sort()) {
    const path = join(configDir, name);
    console.log(`${mode(path)} ${path}`);
    if (statSync(path).isDirectory()) {
      for (const inner of readdirSync(path).sort()) {
        console.log(`${mode(join(path, inner))} ${join(path, inner)}`);
      }
    }
  }
  show("Runtime config");
  console.log(readFileSync(join(configDir, "aws-iot-device-client-runtime.conf"), "utf8"));

  show("Second boot");
  await fleetprov(["--config-file", configPath], home);

  const thingName = runtime["thing-name"];
  const oldId = thing!.principals[0];
  show("fleetprov status --config-file " + configPath);
  await fleetprov(["status", "--config-file", configPath], home);

  show(`Rotation: fleetprov rotate --config-file ${configPath} --force`);
  const rotation = await fleetprov(["rotate", "--config-file", configPath, "--force"], home);
  console.log(`(process wall time ${Math.round(rotation)} ms)`);
  show("Registry after the rotation: both certificates ACTIVE, the new one has connected");
  certificates(emulator, thingName);

  show("Backend: retire the old certificate (aws iot update-certificate --new-status INACTIVE)");
  const url = `${emulator.control!.url}/certificates/${oldId}?newStatus=INACTIVE`;
  const response = await fetch(url, { method: "PUT" });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`UpdateCertificate answered ${response.status}`);
  console.log(`PUT ${url}: ${response.status}`);
  certificates(emulator, thingName);

  show("fleetprov status after the rotation");
  await fleetprov(["status", "--config-file", configPath], home);
} catch (error) {
  console.error(`demo failed: ${(error as Error).message}`);
  exitCode = 1;
} finally {
  await emulator.close();
}
Deno.exit(exitCode);
