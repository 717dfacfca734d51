// SPDX-License-Identifier: Apache-2.0
/**
 * Provisioning through a real HTTP proxy (Debian's tinyproxy with Basic
 * authentication): the Device Client's http-proxy.conf, a CONNECT tunnel, TLS
 * inside it; a wrong password is a clear configuration error.
 */
import { connect } from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Emulator } from "../src/emulator/mod.ts";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import {
  deviceArgs,
  deviceHome,
  findTool,
  runFleetprov,
  type RunResult,
  tempDir,
  testEmulator,
  writeWithMode,
} from "./support/mod.ts";

const TINYPROXY = findTool(["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"], "tinyproxy");

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function waitForPort(port: number, child: Deno.ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let exited = false;
    child.status.then(() => exited = true);
    const attempt = () => {
      if (exited) return reject(new Error("tinyproxy exited before listening"));
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve();
      });
      socket.once("error", () => setTimeout(attempt, 50));
    };
    attempt();
  });
}

async function startTinyproxy(): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = tempDir("fleetprov-proxy-");
  const port = freePort();
  const conf = join(dir, "tinyproxy.conf");
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      "Listen 127.0.0.1",
      "Timeout 60",
      "MaxClients 20",
      "Allow 127.0.0.1",
      "BasicAuth fleet s3cret-proxy",
      "User nobody",
      "Group nogroup",
      "LogLevel Info",
    ].join("\n") + "\n",
  );
  const child = new Deno.Command(TINYPROXY!, {
    args: ["-d", "-c", conf],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitForPort(port, child);
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

function proxyConfig(home: string, port: number, password: string): string {
  const path = join(home, "http-proxy.conf");
  writeWithMode(
    path,
    JSON.stringify({
      "http-proxy-enabled": true,
      "http-proxy-host": "127.0.0.1",
      "http-proxy-port": String(port),
      "http-proxy-auth-method": "UserNameAndPassword",
      "http-proxy-username": "fleet",
      "http-proxy-password": password,
    }),
    0o600,
  );
  return path;
}

/** Provisions a device (a new one unless `home` is given) through the proxy with `password`. */
function runThroughProxy(
  emulator: Emulator,
  proxy: { port: number; password: string; home?: string },
): Promise<RunResult> {
  const home = proxy.home ?? deviceHome();
  const args = ["--http-proxy-config", proxyConfig(home, proxy.port, proxy.password)];
  return runFleetprov(deviceArgs(emulator, { retry: [], extra: args }), { home });
}

Deno.test({
  name:
    "HTTP proxy: provisions through a CONNECT tunnel with Basic auth; a wrong password is a clear error",
  ignore: TINYPROXY === undefined,
  async fn() {
    const proxy = await startTinyproxy();
    const emulator = await testEmulator();
    let connections = 0;
    const off = emulator.events.on("connect", () => connections++);
    try {
      const refused = await runThroughProxy(emulator, { port: proxy.port, password: "wrong" });
      assertEquals(refused.code, 2, refused.stderr);
      assertMatch(
        refused.stderr,
        /^fleetprov: The HTTP proxy 127\.0\.0\.1:\d+ refused the credentials \(40[17]/m,
      );
      assert(!refused.stderr.includes("wrong"), "the password is not printed");
      assertEquals(connections, 0, "nothing reached the broker");

      const home = deviceHome();
      const result = await runThroughProxy(emulator, {
        port: proxy.port,
        password: "s3cret-proxy",
        home,
      });
      assertEquals(result.code, 0, result.stderr);
      assert(
        !(result.stdout + result.stderr).includes("s3cret-proxy"),
        "the password is not printed",
      );
      const runtime = JSON.parse(
        readFileSync(
          join(home, ".aws-iot-device-client", "aws-iot-device-client-runtime.conf"),
          "utf8",
        ),
      );
      assertEquals(runtime["runtime-config"]["completed-fp"], true);
      assertEquals(connections, 2, "claim connection and the new certificate's connection");
    } finally {
      off();
      await emulator.close();
      await proxy.stop();
    }
  },
});
