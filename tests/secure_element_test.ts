// SPDX-License-Identifier: Apache-2.0
/**
 * Secure element end to end: a SoftHSM2 token holds an EC key; the claim
 * connection, the CSR and the permanent connection all use it through
 * OpenSSL's pkcs11 engine. Runs the x64 release binary (Node.js), because
 * Deno's TLS has no engine support.
 */
import { ExitCode } from "../src/errors.ts";
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { X509Certificate } from "node:crypto";
import {
  certificateIdOfPem,
  deviceHome,
  findTool,
  modeOf,
  ROOT,
  rotationEmulator,
  runFleetprov,
  tempDir,
  TEMPLATE_NAME,
  testEmulator,
  writeWithMode,
} from "./support/mod.ts";

const SOFTHSM_UTIL = findTool(["/usr/bin/softhsm2-util"], "softhsm2");
const SOFTHSM_LIB = findTool(["/usr/lib/softhsm/libsofthsm2.so"], "softhsm2");
const PKCS11_TOOL = findTool(["/usr/bin/pkcs11-tool"], "opensc");
const ENGINE = findTool(
  [
    "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so",
  ],
  "libengine-pkcs11-openssl",
);
const BINARY = Deno.env.get("FLEETPROV_BIN") ?? join(ROOT, "dist", "fleetprov-linux-x64");
const ready = SOFTHSM_UTIL && SOFTHSM_LIB && PKCS11_TOOL && ENGINE;
if (ready && !existsSync(BINARY)) {
  throw new Error(`${BINARY} is missing: run \`deno task build\` first (\`deno task test\` does).`);
}

const PIN = "461902";

async function run(command: string, args: string[], env: Record<string, string>): Promise<string> {
  const output = await new Deno.Command(command, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  if (!output.success) throw new Error(`${command} ${args.join(" ")} failed: ${text}`);
  return text;
}

/** A SoftHSM2 token "fleet" with an EC P-256 key "devkey"; returns its public key and a CSR signed in the token. */
async function makeToken(): Promise<
  { env: Record<string, string>; publicKeyPem: string; csrPem: string }
> {
  const dir = tempDir("fleetprov-hsm-");
  Deno.mkdirSync(join(dir, "tokens"));
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(
    conf,
    `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  const env = { SOFTHSM2_CONF: conf };
  await run(SOFTHSM_UTIL!, [
    "--init-token",
    "--free",
    "--label",
    "fleet",
    "--pin",
    PIN,
    "--so-pin",
    "99887766",
  ], env);
  const module = ["--module", SOFTHSM_LIB!, "--token-label", "fleet"];
  await run(PKCS11_TOOL!, [
    ...module,
    "--login",
    "--pin",
    PIN,
    "--keypairgen",
    "--key-type",
    "EC:prime256v1",
    "--label",
    "devkey",
    "--id",
    "01",
  ], env);
  const der = join(dir, "pub.der");
  await run(PKCS11_TOOL!, [
    ...module,
    "--read-object",
    "--type",
    "pubkey",
    "--label",
    "devkey",
    "-o",
    der,
  ], env);
  const pem = join(dir, "pub.pem");
  await run("openssl", ["pkey", "-pubin", "-inform", "DER", "-in", der, "-out", pem], env);
  const csr = join(dir, "device.csr");
  await run("openssl", [
    "req",
    "-new",
    "-engine",
    "pkcs11",
    "-keyform",
    "engine",
    "-key",
    `pkcs11:token=fleet;object=devkey;type=private;pin-value=${PIN}`,
    "-subj",
    "/CN=se-board",
    "-out",
    csr,
  ], { ...env, PKCS11_MODULE_PATH: SOFTHSM_LIB! });
  return { env, publicKeyPem: readFileSync(pem, "utf8"), csrPem: readFileSync(csr, "utf8") };
}

Deno.test({
  name:
    "secure element: claim connection, CSR and new connection all use the token key; bad PIN, label or library are clear errors",
  ignore: !ready,
  async fn() {
    const token = await makeToken();
    const emulator = await testEmulator();
    try {
      // The board's files: claim certificate for the token key, CSR, PKCS#11 library (640 in a 700 dir).
      const secrets = join(tempDir("fleetprov-se-"), "secrets");
      Deno.mkdirSync(secrets, { mode: 0o700 });
      const claim = emulator.issueClaimCertificate(token.publicKeyPem);
      const claimPath = join(secrets, "claim.pem.crt");
      writeWithMode(claimPath, claim.certificatePem, 0o644);
      const csrPath = join(secrets, "device.csr");
      writeWithMode(csrPath, token.csrPem, 0o600);
      const libPath = join(secrets, "libsofthsm2.so");
      copyFileSync(SOFTHSM_LIB!, libPath);
      Deno.chmodSync(libPath, 0o640);

      const base = JSON.parse(readFileSync(emulator.configPath, "utf8"));
      delete base.key;
      const config = {
        ...base,
        cert: claimPath,
        "fleet-provisioning": { ...base["fleet-provisioning"], "csr-file": csrPath },
        "secure-element": {
          enabled: true,
          "pkcs11-lib": libPath,
          "secure-element-pin": PIN,
          "secure-element-key-label": "devkey",
          "secure-element-token-label": "fleet",
        },
      };
      const run = async (home: string, extra: string[] = []) => {
        const path = join(home, "fleetprov.conf");
        writeWithMode(path, JSON.stringify(config), 0o640);
        return await runFleetprov(["--config-file", path, ...extra], {
          home,
          env: token.env,
          bin: BINARY,
        });
      };

      const wrongPin = await run(deviceHome(), ["--secure-element-pin", "000000"]);
      assertEquals(wrongPin.code, ExitCode.Config, wrongPin.stderr);
      assertMatch(
        wrongPin.stderr,
        /^fleetprov: The secure element did not give the private key labelled "devkey"/m,
      );
      assert(
        !(wrongPin.stdout + wrongPin.stderr).includes("000000"),
        `the PIN is never printed: ${wrongPin.stdout}${wrongPin.stderr}`,
      );

      const noLabel = await run(deviceHome(), ["--secure-element-key-label", "nokey"]);
      assertEquals(noLabel.code, ExitCode.Config, noLabel.stderr);
      assertMatch(noLabel.stderr, /labelled "nokey"/);

      const noLibrary = await run(deviceHome(), ["--pkcs11-lib", join(secrets, "missing.so")]);
      assertEquals(noLibrary.code, ExitCode.Config, noLibrary.stderr);
      assertMatch(noLibrary.stderr, /missing\.so/);
      assertEquals(
        emulator.counters.connect.requests,
        0,
        "no bad configuration reached the broker",
      );

      const home = deviceHome();
      const result = await run(home);
      assertEquals(result.code, 0, result.stderr);
      assert(!(result.stdout + result.stderr).includes(PIN), "the PIN is never printed");
      const runtimePath = join(
        home,
        ".aws-iot-device-client",
        "aws-iot-device-client-runtime.conf",
      );
      const runtime = JSON.parse(readFileSync(runtimePath, "utf8"))["runtime-config"];
      assertEquals(runtime.key, "", "the key lives in the token: DC records an empty path");
      assertEquals(modeOf(runtime.cert), "644");
      const thing = emulator.registry.thing(runtime["thing-name"]);
      assert(thing, "thing registered");
      const issued = emulator.registry.certificate(thing.principals[0])!;
      assertEquals(issued.status, "ACTIVE");
      assertEquals(readFileSync(runtime.cert, "utf8").trim(), issued.certificatePem.trim());
      assertMatch(result.stdout, /Connected with the new certificate/);

      const again = await run(home);
      assertEquals(again.code, 0, again.stderr);
      assertMatch(again.stdout, /Already provisioned as thing/);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  name:
    "secure element: rotate sends the token's CSR as the thing, proves the new certificate with the token key, switches; status names the token, never the PIN",
  ignore: !ready,
  async fn() {
    const token = await makeToken();
    const emulator = await rotationEmulator();
    try {
      const secrets = join(tempDir("fleetprov-se-"), "secrets");
      Deno.mkdirSync(secrets, { mode: 0o700 });
      const claimPath = join(secrets, "claim.pem.crt");
      writeWithMode(
        claimPath,
        emulator.issueClaimCertificate(token.publicKeyPem).certificatePem,
        0o644,
      );
      const csrPath = join(secrets, "device.csr");
      writeWithMode(csrPath, token.csrPem, 0o600);
      const libPath = join(secrets, "libsofthsm2.so");
      copyFileSync(SOFTHSM_LIB!, libPath);
      Deno.chmodSync(libPath, 0o640);
      const base = JSON.parse(readFileSync(emulator.configPath, "utf8"));
      delete base.key;
      const home = deviceHome();
      const path = join(home, "fleetprov.conf");
      writeWithMode(
        path,
        JSON.stringify({
          ...base,
          cert: claimPath,
          "fleet-provisioning": {
            ...base["fleet-provisioning"],
            "csr-file": csrPath,
            "template-parameters": { SerialNumber: "SN-SE" },
            "rotation-template-name": TEMPLATE_NAME,
          },
          "secure-element": {
            enabled: true,
            "pkcs11-lib": libPath,
            "secure-element-pin": PIN,
            "secure-element-key-label": "devkey",
            "secure-element-token-label": "fleet",
          },
        }),
        0o640,
      );
      const run = (args: string[]) =>
        runFleetprov([...args, "--config-file", path], { home, env: token.env, bin: BINARY });
      const provisioned = await run([]);
      assertEquals(provisioned.code, 0, provisioned.stderr);
      const runtimePath = join(
        home,
        ".aws-iot-device-client",
        "aws-iot-device-client-runtime.conf",
      );
      const oldPem = readFileSync(
        join(home, ".aws-iot-device-client", "keys", "active-certificate.pem.crt"),
        "utf8",
      );

      const requests: string[] = [];
      emulator.events.on("request", (e) => requests.push(`${e.operation} as ${e.clientId}`));
      const rotated = await run(["rotate", "--force"]);
      assertEquals(rotated.code, 0, rotated.stderr);
      assertEquals(requests, [
        "CreateCertificateFromCsr as board-SN-SE",
        "RegisterThing as board-SN-SE",
      ]);
      assertMatch(rotated.stdout, /Connected with the new certificate as board-SN-SE/);
      const runtime = JSON.parse(readFileSync(runtimePath, "utf8"))["runtime-config"];
      assertEquals(runtime.key, "", "the key still lives in the token");
      const newPem = readFileSync(runtime.cert, "utf8");
      assert(newPem !== oldPem, "a new certificate");
      const newId = certificateIdOfPem(newPem);
      assertEquals(emulator.registry.certificate(newId)?.status, "ACTIVE");
      // The same key (the token's), a new certificate for it.
      assertEquals(
        new X509Certificate(newPem).publicKey.export({ type: "spki", format: "pem" }),
        new X509Certificate(oldPem).publicKey.export({ type: "spki", format: "pem" }),
      );

      const status = await run(["status", "--output", "json"]);
      assertEquals(status.code, 0, status.stderr);
      const report = JSON.parse(status.stdout);
      assertEquals(report.privateKey, {
        location: "pkcs11",
        token: "fleet",
        slot: null,
        label: "devkey",
      });
      assertEquals(report.certificate.id, newId);
      assertEquals(report.lastRotation.oldCertificateId, certificateIdOfPem(oldPem));
      for (const output of [provisioned, rotated, status]) {
        assert(!(output.stdout + output.stderr).includes(PIN), "the PIN is never printed");
      }
    } finally {
      await emulator.close();
    }
  },
});
