// SPDX-License-Identifier: Apache-2.0
/**
 * Runs the fleetprov CLI (like main.ts) and prints, on stderr, when each TLS
 * connection starts, completes its handshake and gets its first bytes, in
 * milliseconds since process start: `timeline <event> <ms> [detail]`. Used by
 * bench/provision_bench.ts to show where the time goes; not part of fleetprov.
 *
 * @module
 */
import process from "node:process";
import tls from "node:tls";

const originalConnect = tls.connect;
let connection = 0;
function mark(event: string, detail = ""): void {
  process.stderr.write(`timeline ${event} ${performance.now().toFixed(1)} ${detail}\n`);
}
function tracedConnect(...args: Parameters<typeof tls.connect>): tls.TLSSocket {
  const id = ++connection;
  mark(`connect#${id}`);
  const socket = originalConnect.apply(tls, args);
  socket.once("secureConnect", () => mark(`tls#${id}`, socket.getProtocol() ?? ""));
  socket.once("data", () => mark(`first-data#${id}`));
  socket.once("close", () => mark(`closed#${id}`));
  return socket;
}
(tls as { connect: typeof tls.connect }).connect = tracedConnect as typeof tls.connect;

const { runCli } = await import("../src/cli.ts");
mark("cli-loaded");
process.exitCode = await runCli(process.argv.slice(2));
mark("done");
