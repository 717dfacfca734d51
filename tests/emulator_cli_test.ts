// SPDX-License-Identifier: Apache-2.0
import { assert, assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { ExitCode } from "../src/errors.ts";
import { existsSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { connect as tlsConnect } from "node:tls";
import { claimCredentials, connect, fleetprovCommand, spawnEmulator } from "./support/mod.ts";

/** Starts `fleetprov emulator` with `args` (its own HOME: the emulator's files are in --state-dir). */
function fleetprov(args: string[]): Deno.ChildProcess {
  const { command, args: fullArgs } = fleetprovCommand(["emulator", ...args]);
  return new Deno.Command(command, { args: fullArgs, stdout: "piped", stderr: "piped" }).spawn();
}

const BAD_FAULTS = `${Deno.makeTempDirSync()}/bad-faults.json`;
const BAD_TEMPLATE = `${Deno.makeTempDirSync()}/bad-template.json`;
Deno.writeTextFileSync(
  BAD_TEMPLATE,
  JSON.stringify({
    Resources: {
      certificate: {
        Type: "AWS::IoT::Certificate",
        Properties: { CertificateSigningRequest: "x" },
      },
      thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: { "Fn::If": [] } } },
    },
  }),
);
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
      // Every problem AWS would refuse the template for, on one line.
      [
        ["--state-dir", "/tmp/x", "--template-file", BAD_TEMPLATE],
        /--template-file .*bad-template.json: The provisioning template FleetprovTemplate is not one AWS accepts: \$\.Resources\.certificate\.Properties\.CertificateSigningRequest: .*; \$\.Resources\.certificate\.Properties\.CertificateId: .*; \$\.Resources\.thing\.Properties\.ThingName\["Fn::If"\]: Fn::If is not an intrinsic function/,
      ],
      [
        [
          "--state-dir",
          "/tmp/x",
          "--pre-provisioning-hook",
          "arn:aws:lambda:us-east-1:1:function:f",
        ],
        /--pre-provisioning-hook: .*cannot invoke a Lambda function; give it file:\/absolute\/path\/to\/command or http\(s\):\/\/host:port\/path/,
      ],
      [
        ["--state-dir", "/tmp/x", "--hook-timeout", "0"],
        /--hook-timeout "0" must be an integer from 1/,
      ],
      [
        ["--state-dir", "/tmp/x", "--hook-concurrency", "0"],
        /--hook-concurrency "0" must be an integer from 1 to 10000/,
      ],
      [
        ["--state-dir", "/tmp/x", "--control-port", "70000"],
        /--control-port "70000" must be an integer/,
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

for (
  const busyFlag of [
    { flag: "--port", others: ["--key-pool", "2"], fix: "--port or --host" },
    { flag: "--control-port", others: ["--port", "0"], fix: "--control-port or --control-host" },
  ]
) {
  Deno.test(`emulator CLI: a busy ${busyFlag.flag} exits 78 with one line naming it, without hanging (aedes and the key pool closed)`, async () => {
    const stateDir = await Deno.makeTempDir({ prefix: "fleetprov-emulator-busy-" });
    const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (busy.addr as Deno.NetAddr).port;
    try {
      // RSA keys in the pool: their generation is what kept a failed start alive, among others.
      const child = fleetprov([
        "--state-dir",
        stateDir,
        busyFlag.flag,
        String(port),
        ...busyFlag.others,
      ]);
      // A bound, not a synchronisation: the process must end on its own, long before this.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<"hung">((resolve) => {
        timer = setTimeout(() => resolve("hung"), 60_000);
      });
      const output = await Promise.race([child.output(), hung]);
      clearTimeout(timer);
      if (output === "hung") {
        child.kill("SIGKILL");
        await child.status;
        throw new Error("fleetprov emulator on a busy port did not exit within 60 s");
      }
      assertEquals(output.code, ExitCode.Config);
      const stderr = new TextDecoder().decode(output.stderr);
      assertEquals(stderr.trim().split("\n").length, 1, stderr);
      assertEquals(
        stderr,
        `fleetprov: emulator: cannot listen on 127.0.0.1:${port} (EADDRINUSE); choose another ${busyFlag.fix}.\n`,
      );
      assertEquals(new TextDecoder().decode(output.stdout), "", "no listening: line");
    } finally {
      busy.close();
    }
  });
}

Deno.test("emulator CLI: --control-port prints control: HOST:PORT and serves AWS IoT's REST API; --pre-provisioning-hook sets the default template's hook", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fleetprov-emulator-cli-" });
  const emulator = await spawnEmulator([
    "--control-port",
    "0",
    "--pre-provisioning-hook",
    "http://127.0.0.1:9/hook",
    "--hook-timeout",
    "250",
  ], { stateDir: `${dir}/state` });
  try {
    assertEquals(emulator.control?.host, "127.0.0.1");
    const template = await fetch(
      `${emulator.control!.url}/provisioning-templates/FleetprovTemplate`,
    )
      .then((r) => r.json());
    assertEquals(template.preProvisioningHook, { targetArn: "http://127.0.0.1:9/hook" });
    assertEquals(template.enabled, true);
  } finally {
    const stopped = await emulator.stop();
    assertEquals(stopped.code, 0);
    assertMatch(
      stopped.stdout,
      /^config: .*\nlistening: 127\.0\.0\.1:\d+\ncontrol: 127\.0\.0\.1:\d+\n/,
    );
  }
  // Without the flag there is no control plane, and no control: line.
  const plain = await spawnEmulator([], { stateDir: `${dir}/state` });
  const stopped = await plain.stop();
  assert(!stopped.stdout.includes("control:"), stopped.stdout);
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
