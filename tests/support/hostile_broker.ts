// SPDX-License-Identifier: Apache-2.0
/**
 * The suite's hostile broker: a small raw MQTT-over-TLS server (no aedes)
 * with the emulator's server certificate, so the device trusts it. It
 * accepts CONNECT and SUBSCRIBE and does with each CONNECT and each request
 * whatever the test says: answer any body, close at once, close in the middle
 * of an answer, or announce a huge packet and stream junk after it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import tls from "node:tls";
import mqttPacket from "mqtt-packet";
import type { Emulator } from "../../src/emulator/mod.ts";
import { type Operation, routeOf } from "../../src/protocol/mod.ts";
import { selfSignedCertificate } from "./pki.ts";

/** What the broker does with a request. */
export type HostileAction =
  /** Answer on accepted/rejected with this JSON body (a string or bytes are sent as they are). */
  | { answer: "accepted" | "rejected"; body: unknown }
  /** Close the connection at once, no answer byte. */
  | { close: "now" }
  /** Send the first half of the answer packet, then close. */
  | { close: "mid-answer"; body: unknown }
  /** A PUBLISH header announcing `bytes` bytes, then junk until the client goes (or all is sent). */
  | { oversized: number }
  /** Never answer. */
  | { silent: true };

/** A request as the broker saw it. */
export interface HostileRequest {
  operation: Operation;
  clientId: string;
  /** How many requests of this operation came before this one. */
  index: number;
}

/** Options of {@linkcode hostileBroker}. */
export interface HostileBrokerOptions {
  /** CONNACK return code per CONNECT (default 0), or "close" to close instead. */
  connack?: (clientId: string) => number | "close";
  /** What to do with each request. */
  onRequest: (request: HostileRequest) => HostileAction;
}

/** A running hostile broker. */
export interface HostileBroker {
  port: number;
  /** Requests in arrival order. */
  requests: Operation[];
  /** Client ids of the CONNECTs in arrival order. */
  connects: string[];
  /** Bytes of oversized packets actually written to clients. */
  oversizedBytesSent: number;
  close(): Promise<void>;
}

/** Starts a hostile broker on a free port of 127.0.0.1 with the emulator's server certificate. */
export async function hostileBroker(
  emulator: Emulator,
  options: HostileBrokerOptions,
): Promise<HostileBroker> {
  const counts = new Map<Operation, number>();
  const broker = {
    port: 0,
    requests: [] as Operation[],
    connects: [] as string[],
    oversizedBytesSent: 0,
    close: () => Promise.resolve(),
  };
  const server = await tlsTestServer(emulator, (socket) => {
    let clientId = "";
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const send = (packet: Record<string, unknown>) =>
      socket.write(mqttPacket.generate(packet as unknown as mqttPacket.Packet));
    parser.on("packet", (packet: mqttPacket.Packet) => {
      // Packets behind one that closed the connection were never read.
      if (socket.destroyed || socket.writableEnded) return;
      switch (packet.cmd) {
        case "connect": {
          clientId = packet.clientId;
          broker.connects.push(clientId);
          const code = options.connack?.(clientId) ?? 0;
          if (code === "close") socket.destroy();
          else send({ cmd: "connack", returnCode: code, sessionPresent: false });
          break;
        }
        case "subscribe":
          send({
            cmd: "suback",
            messageId: packet.messageId,
            granted: packet.subscriptions.map(() => 1),
          });
          break;
        case "publish": {
          if (packet.qos > 0) send({ cmd: "puback", messageId: packet.messageId });
          const route = routeOf(packet.topic);
          if (!route || route.answer) break;
          const index = counts.get(route.operation) ?? 0;
          counts.set(route.operation, index + 1);
          broker.requests.push(route.operation);
          const action = options.onRequest({ operation: route.operation, clientId, index });
          perform(socket, packet.topic, action, broker);
          break;
        }
        case "pingreq":
          send({ cmd: "pingresp" });
          break;
        case "disconnect":
          socket.end();
          break;
      }
    });
    socket.on("data", (data: Buffer) => parser.parse(data));
  });
  broker.port = server.port;
  broker.close = server.close;
  return broker;
}

/** A listening TLS server of the suite's own, and how to stop it. */
export interface TlsTestServer {
  port: number;
  /** Destroys every open connection and stops listening. */
  close(): Promise<void>;
}

/**
 * A TLS server on a free loopback port with the emulator's server certificate
 * (so devices configured for the emulator trust it), asking for the client
 * certificate without judging it; `onSocket` speaks whatever the test needs.
 */
export async function tlsTestServer(
  emulator: Emulator,
  onSocket: (socket: tls.TLSSocket) => void,
): Promise<TlsTestServer> {
  const caDir = join(dirname(emulator.configPath), "ca");
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({
    cert: readFileSync(join(caDir, "server-cert.pem")),
    key: readFileSync(join(caDir, "server-key.pem")),
    requestCert: true,
    rejectUnauthorized: false,
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function answerPacket(topic: string, body: unknown): Buffer {
  return mqttPacket.generate({
    cmd: "publish",
    topic,
    payload: body instanceof Uint8Array
      ? Buffer.from(body)
      : Buffer.from(typeof body === "string" ? body : JSON.stringify(body)),
    qos: 0,
    retain: false,
    dup: false,
  } as mqttPacket.Packet);
}

function perform(
  socket: tls.TLSSocket,
  requestTopic: string,
  action: HostileAction,
  broker: { oversizedBytesSent: number },
): void {
  if ("answer" in action) {
    socket.write(answerPacket(`${requestTopic}/${action.answer}`, action.body));
  } else if ("oversized" in action) {
    void streamOversized(socket, `${requestTopic}/accepted`, action.oversized, broker);
  } else if ("close" in action && action.close === "mid-answer") {
    const packet = answerPacket(`${requestTopic}/accepted`, action.body);
    socket.write(packet.subarray(0, Math.floor(packet.length / 2)), () => socket.destroy());
  } else if ("close" in action) {
    // What was already sent (CONNACK, SUBACK, PUBACK) still goes out first, as
    // from a broker that closes after reading the request; destroy() alone
    // could drop it and look like a hang-up before CONNACK.
    socket.end(() => socket.destroy());
  }
}

/** A PUBLISH header announcing `bytes`, the topic, then junk in 64 KiB chunks, with backpressure. */
async function streamOversized(
  socket: tls.TLSSocket,
  topic: string,
  bytes: number,
  broker: { oversizedBytesSent: number },
): Promise<void> {
  const topicBytes = Buffer.from(topic);
  const header = [0x30];
  for (let rest = bytes;;) {
    const digit = rest % 128;
    rest = Math.floor(rest / 128);
    header.push(rest > 0 ? digit | 0x80 : digit);
    if (rest === 0) break;
  }
  const length = Buffer.alloc(2);
  length.writeUInt16BE(topicBytes.length);
  socket.write(Buffer.concat([Buffer.from(header), length, topicBytes]));
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  let left = bytes - 2 - topicBytes.length;
  while (left > 0 && !socket.destroyed) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= piece.length;
    broker.oversizedBytesSent += piece.length;
    if (!socket.write(piece)) {
      await Promise.race([new Promise((resolve) => socket.once("drain", resolve)), closed]);
    }
  }
}

/** A certificate and its key, as CreateKeysAndCertificate would return them. */
export async function hostileCertificate(): Promise<Record<string, string>> {
  const { certificate: cert, privateKeyPem } = await selfSignedCertificate("hostile");
  return {
    certificateId: createHash("sha256").update(new Uint8Array(cert.rawData)).digest("hex"),
    certificatePem: cert.toString("pem"),
    privateKey: privateKeyPem!,
    certificateOwnershipToken: "hostile-token",
  };
}

/** The body of a good answer: `certificate` for the create operations, a thing for RegisterThing. */
export function goodBody(
  operation: Operation,
  certificate: Record<string, string>,
  thingName = "board-hostile",
): unknown {
  return operation === "RegisterThing" ? { thingName, deviceConfiguration: {} } : certificate;
}

/** A good answer (accepted, {@linkcode goodBody}). */
export function goodAnswer(
  operation: Operation,
  certificate: Record<string, string>,
  thingName = "board-hostile",
): HostileAction {
  return { answer: "accepted", body: goodBody(operation, certificate, thingName) };
}
