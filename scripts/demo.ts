// SPDX-License-Identifier: Apache-2.0
/**
 * `deno task demo`: starts the emulator on a free loopback port, writes a
 * device config the way a user would, provisions a device with the real CLI,
 * shows what it wrote, then runs again to show it is already provisioned.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sampleTemplate } from "../src/emulator/defaults.ts";
import { startEmulator } from "../src/emulator/mod.ts";
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

const emulator = await startEmulator({
  stateDir: join(tempDir("fleetprov-demo-emulator-"), "state"),
  port: 0,
  templateName: TEMPLATE_NAME,
  template,
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
    },
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o640 });
  show(`Device config ${configPath}`);
  console.log(readFileSync(configPath, "utf8"));

  show("First boot: fleetprov --config-file " + configPath);
  const started = performance.now();
  const first = await runFleetprov(["--config-file", configPath], { home });
  const elapsed = performance.now() - started;
  Deno.stdout.writeSync(new TextEncoder().encode(first.stdout + first.stderr));
  if (first.code !== 0) throw new Error(`fleetprov exited with ${first.code}`);
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
  const second = await runFleetprov(["--config-file", configPath], { home });
  Deno.stdout.writeSync(new TextEncoder().encode(second.stdout + second.stderr));
  if (second.code !== 0) throw new Error(`fleetprov exited with ${second.code}`);
} catch (error) {
  console.error(`demo failed: ${(error as Error).message}`);
  exitCode = 1;
} finally {
  await emulator.close();
}
Deno.exit(exitCode);
