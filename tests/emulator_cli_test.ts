// SPDX-License-Identifier: Apache-2.0
import { assert, assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { ExitCode } from "../src/errors.ts";
import { existsSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { connect as tlsConnect } from "node:tls";
import { claimCredentials, connect, fleetprovCommand } from "./support/mod.ts";

/** Starts `fleetprov emulator` with `args` (its own HOME: the emulator's files are in --state-dir). */
function fleetprov(args: string[]): Deno.ChildProcess {
  const { command, args: fullArgs } = fleetprovCommand(["emulator", ...args]);
  return new Deno.Command(command, { args: fullArgs, stdout: "piped", stderr: "piped" }).spawn();
}

const BAD_FAULTS = `${Deno.makeTempDirSync()}/bad-faults.json`;
Deno.writeTextFileSync(
  BAD_FAULTS,
  JSON.stringify([{ operation: "RegisterThing", drop: "sometimes" }]),
);

Deno.test("emulator CLI: bad flags exit 78 with one line naming the flag", async () => {
  for (
    const [args, pattern] of [
      [["--bogus"], /Unknown option '--bogus'/],
      [[], /--state-dir DIR is required/],
      [["--state-dir", "/tmp/x", "--port", "80000"], /--port "80000" must be an integer/],
      [
        ["--state-dir", "/tmp/x", "--template-file", "/nonexistent.json"],
        /--template-file \/nonexistent.json cannot be read/,
      ],
      [
        ["--state-dir", "/tmp/x", "--fault", "RegisterThing:often"],
        /--fault RegisterThing:often: unknown key "often"/,
      ],
      [
        ["--state-dir", "/tmp/x", "--server-name", "http://board"],
        /--server-name: The server name "http:\/\/board" is neither an IP address nor a DNS name/,
      ],
      [
        ["--state-dir", "/tmp/x", "--faults-file", BAD_FAULTS],
        /--faults-file .*bad-faults.json: fault 1: "drop" must be/,
      ],
    ] as const
  ) {
    const output = await fleetprov([...args]).output();
    assertEquals(output.code, ExitCode.Config);
    const stderr = new TextDecoder().decode(output.stderr);
    assertEquals(stderr.trim().split("\n").length, 1, stderr);
    assertMatch(stderr, pattern);
  }
});

Deno.test("emulator CLI: prints config and address, serves, stops cleanly on SIGTERM", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "fleetprov-emulator-cli-" });
  const child = fleetprov([
    "--state-dir",
    stateDir,
    "--port",
    "0",
    "--token-lifetime",
    "60",
    "--fault",
    "connect:reject=503:ServerUnavailable,times=1",
  ]);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening: .*\n/.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const config = /config: (.*)\n/.exec(text)![1];
  const [, host, port] = /listening: (.*):(\d+)\n/.exec(text)!;
  assertEquals(config, `${stateDir}/device-client.conf`);
  assertEquals(host, "127.0.0.1");
  assert(existsSync(config));
  const conf = JSON.parse(Deno.readTextFileSync(config));
  assertEquals(conf.port, Number(port));

  // It really serves, with the fault from the flag: the first CONNECT is refused, the next accepted.
  const target = {
    endpoint: "localhost" as const,
    port: Number(port),
    caCertPem: Deno.readTextFileSync(conf["root-ca"]),
  };
  const credentials = claimCredentials({ claim: { certPath: conf.cert, keyPath: conf.key } });
  await assertRejects(connect(target, credentials), /Server unavailable/);
  const client = await connect(target, credentials);
  await client.endAsync();

  child.kill("SIGTERM");
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const status = await child.status;
  await child.stderr.cancel();
  assertEquals(status.code, 0);
  assertMatch(text, /stopped \(SIGTERM\)/);
});

/** Starts the emulator CLI and returns it with its port once it listens. */
async function listening(args: string[]): Promise<{ child: Deno.ChildProcess; port: number }> {
  const child = fleetprov(args);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening: .*\n/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the emulator exited: ${text}`);
    text += value;
  }
  reader.releaseLock();
  return { child, port: Number(/listening: .*:(\d+)\n/.exec(text)![1]) };
}

/** Whether a TLS client that checks the server's name accepts the server as `servername`. */
function acceptsName(port: number, servername: string, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername, ca }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

Deno.test("emulator CLI: --server-name makes the server certificate valid for a board's name for the host", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "fleetprov-emulator-cli-" });
  const names = ["emulator.board.test", "10.0.2.2"];
  for (const [round, extra] of [[1, []], [2, names], [3, names]] as const) {
    const { child, port } = await listening([
      "--state-dir",
      stateDir,
      "--port",
      "0",
      ...extra.flatMap((name) => ["--server-name", name]),
    ]);
    try {
      const ca = Deno.readTextFileSync(`${stateDir}/ca/ca-cert.pem`);
      const san = new X509Certificate(Deno.readTextFileSync(`${stateDir}/ca/server-cert.pem`))
        .subjectAltName!;
      assertEquals(san.includes("DNS:emulator.board.test"), extra.length > 0, `${round}: ${san}`);
      assertEquals(san.includes("IP Address:10.0.2.2"), extra.length > 0, `${round}: ${san}`);
      assert(san.includes("DNS:localhost"), san);
      assertEquals(await acceptsName(port, "emulator.board.test", ca), extra.length > 0);
      assert(await acceptsName(port, "localhost", ca));
      assert(!(await acceptsName(port, "other.board.test", ca)));
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel();
    }
  }
});
