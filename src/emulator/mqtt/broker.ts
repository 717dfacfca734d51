// SPDX-License-Identifier: Apache-2.0
/**
 * The emulator's MQTT side: a node:tls server asking for client certificates,
 * an aedes broker (MQTT 3.1.1 and 5 on the same port), and the AWS IoT rules
 * on top, one file per packet the rules act on: CONNECT (`handle_connect.ts`),
 * SUBSCRIBE / PUBLISH / delivery (`authorize.ts`) and provisioning requests
 * (`handle_request.ts`).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { constants as cryptoConstants } from "node:crypto";
import type { AddressInfo, Socket } from "node:net";
import tls from "node:tls";
import { Aedes } from "aedes";
import { AWS_MQTT_ALPN, routeOf } from "../../protocol/mod.ts";
import {
  authorizeForward,
  authorizePublish,
  authorizeSubscribe,
  unsubscribed,
} from "./authorize.ts";
import {
  type BrokerContext,
  brokerContext,
  type BrokerOptions,
  type OperationCounters,
} from "./context.ts";
import type { FaultOperation } from "./faults.ts";
import { ConnackGate } from "./connack_gate.ts";
import { decideConnect, identify } from "./handle_connect.ts";
import { handleRequest } from "./handle_request.ts";

export type { BrokerOptions, OperationCounters } from "./context.ts";

/** A running broker. */
export interface RunningBroker {
  host: string;
  port: number;
  /** Per operation; "connect" counts CONNECTs (requests, accepted, rejected = refused, dropped). */
  counters: Record<FaultOperation, OperationCounters>;
  /**
   * Closes every connection that authenticated with a certificate (AWS IoT
   * does so after the certificate leaves ACTIVE); returns how many.
   */
  disconnectCertificate(certificateId: string): number;
  close(): Promise<void>;
}

/** Starts the TLS listener and the broker. */
export async function startBroker(options: BrokerOptions): Promise<RunningBroker> {
  const context = brokerContext(options);
  const broker = await createAedes(context);
  const sockets = new Set<tls.TLSSocket>();
  const server = tlsServer(context, { sockets, broker });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    // Nothing may stay open after a failed start (a busy port): aedes keeps the process alive.
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw error;
  }
  const address = server.address() as AddressInfo;
  return {
    host: options.host,
    port: address.port,
    counters: context.counters,
    disconnectCertificate(certificateId) {
      const clients = context.clientsByCertificate.get(certificateId) ?? new Set();
      for (const client of clients) client.conn.destroy();
      return clients.size;
    },
    async close() {
      options.faults.releaseAll();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await closed;
    },
  };
}

/**
 * What AWS IoT Core advertises in an MQTT 5 CONNACK (seen on the wire:
 * Receive Maximum 100, Topic Alias Maximum 8, Maximum Packet Size 149504).
 */
const AWS_CONNACK_LIMITS = {
  receiveMaximum: 100,
  topicAliasMaximum: 8,
  maximumPacketSize: 149_504,
};

/** The aedes broker with the AWS IoT rules as its hooks (a dispatch to the handlers). */
async function createAedes(context: BrokerContext): Promise<Aedes> {
  const { log, states, events } = context;
  const broker = await Aedes.createBroker({
    ...AWS_CONNACK_LIMITS,
    // Decided before aedes writes any CONNACK: over MQTT 3.1.1 AWS IoT refuses
    // by hanging up, which aedes' authenticate hook cannot do.
    preConnect(client, packet, done) {
      decideConnect(context, { client, packet }).then(
        (admitted) => done(admitted ? null : new Error("CONNECT refused"), admitted),
        (error) => {
          log(`internal error at CONNECT: ${(error as Error).stack}`);
          done(error as Error, false);
        },
      );
    },
    authorizeSubscribe(client, subscription, done) {
      const { error, granted } = authorizeSubscribe(context, { client, subscription });
      return error ? done(error) : done(null, granted);
    },
    authorizePublish(client, packet, done) {
      if (!client) return done(null);
      done(authorizePublish(context, { client, packet }));
    },
    authorizeForward(client, packet) {
      return authorizeForward(context, { client, packet });
    },
    published(packet, client, done) {
      done(null);
      if (!client) return;
      const route = routeOf(packet.topic);
      const state = states.get(client);
      if (!route || route.answer || !state) return;
      const payload = Buffer.from(packet.payload as Uint8Array);
      handleRequest(context, { client, state, route, payload }).catch((error) => {
        log(
          `internal error answering ${route.operation} for ${client.id}: ${(error as Error).stack}`,
        );
      });
    },
  });
  broker.on("unsubscribe", (filters, client) => unsubscribed(context, client, filters));
  broker.on("connackSent", (_packet, client) => {
    if (!(client.conn instanceof ConnackGate)) return;
    const reason = client.conn.connackSent();
    if (reason === undefined) return;
    const mqttVersion = client.conn.level;
    log(
      `protocol error: ${client.id}: ${reason}; ${
        mqttVersion === 5 ? "DISCONNECT 0x82 Protocol Error" : "disconnecting"
      }`,
    );
    events.emit("protocol", { clientId: client.id, reason, mqttVersion });
  });
  broker.on("clientDisconnect", (client) => {
    if (!states.has(client)) return;
    states.delete(client);
    events.emit("disconnect", { clientId: client.id });
  });
  return broker;
}

/** The TLS listener: asks for the client certificate, enforces ALPN when required. */
function tlsServer(
  context: BrokerContext,
  to: { sockets: Set<tls.TLSSocket>; broker: Aedes },
): tls.Server {
  const server = tls.createServer({
    cert: context.serverCertPem,
    key: context.serverKeyPem,
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: [AWS_MQTT_ALPN],
    // No session tickets: devices connect once per certificate, and building
    // a ticket (which embeds the client certificate) costs a tenth of a handshake.
    secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
  });
  server.on("connection", (tcp: Socket) => {
    if (!context.faults.dropsHandshake()) return;
    const { counters } = context;
    counters.connect.requests++;
    counters.connect.rejected++;
    counters.connect.dropped++;
    const reason = "connection dropped before the TLS handshake (injected fault)";
    context.log(`refused: ${reason}`);
    context.events.emit("fault", {
      operation: "connect",
      clientId: "",
      faults: ["drop handshake"],
    });
    context.events.emit("connect", { clientId: "", accepted: false, reason });
    tcp.destroy();
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    socket.setNoDelay(true); // no Nagle + delayed-ACK stall on multi-packet answers
    to.sockets.add(socket);
    socket.on("close", () => to.sockets.delete(socket));
    socket.on("error", () => {});
    if (context.alpn === "require" && socket.alpnProtocol !== AWS_MQTT_ALPN) {
      const reason =
        `TLS connection from ${socket.remoteAddress} did not negotiate ALPN ${AWS_MQTT_ALPN}`;
      context.log(`refused: ${reason}`);
      context.events.emit("connect", { clientId: "", accepted: false, reason });
      // On 443 without ALPN, AWS IoT speaks HTTPS: an MQTT CONNECT gets an HTTP error.
      socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    // aedes sees the client through the gate: nothing sent before CONNACK reaches it.
    const gate = new ConnackGate(socket);
    context.identities.set(gate, identify(context, socket));
    to.broker.handle(gate);
  });
  server.on("tlsClientError", (error) => context.log(`TLS handshake failed: ${error.message}`));
  return server;
}
