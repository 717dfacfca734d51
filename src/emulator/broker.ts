// SPDX-License-Identifier: Apache-2.0
/**
 * The emulator's MQTT side: a node:tls server asking for client certificates,
 * an aedes broker, and the AWS IoT rules on top: certificate checks at
 * CONNECT, policies on publish/subscribe, provisioning requests routed to the
 * service, answers delivered only to the asking connection and only if it
 * subscribed to the answer topic first.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { constants as cryptoConstants, createHash, X509Certificate } from "node:crypto";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { Aedes, type AuthenticateError, type Client } from "aedes";
import { type Operation, operationTopics, type PayloadFormat } from "../provisioning/topics.ts";
import { decodePayload, encodePayload } from "../provisioning/payload.ts";
import type { CertificateAuthority } from "./ca.ts";
import type { EmulatorEvents } from "./events.ts";
import { type IotAction, isAllowed } from "./policy.ts";
import type { Registry } from "./registry.ts";
import { FAULT_OPERATIONS, type FaultController, type FaultOperation } from "./faults.ts";
import { type Answer, type ProvisioningService, reject } from "./service.ts";

/** Encodes answers and decodes requests of one payload format. */
interface PayloadCodec {
  /** Decodes a request; undefined for an empty payload; throws a sentence on bad input. */
  decode(payload: Uint8Array, format: PayloadFormat): unknown;
  /** Encodes an answer. */
  encode(body: unknown, format: PayloadFormat): Buffer;
}

/** Requests and answers counted per operation. */
export interface OperationCounters {
  requests: number;
  accepted: number;
  rejected: number;
  dropped: number;
}

/** Settings of {@linkcode startBroker}. */
export interface BrokerOptions {
  host: string;
  port: number;
  serverCertPem: string;
  serverKeyPem: string;
  ca: CertificateAuthority;
  registry: Registry;
  service: ProvisioningService;
  templateName: string;
  events: EmulatorEvents;
  faults: FaultController;
  /** "require": refuse TLS connections that do not negotiate ALPN x-amzn-mqtt-ca. */
  alpn: "require" | "optional";
  log: (line: string) => void;
}

/** A running broker. */
export interface RunningBroker {
  host: string;
  port: number;
  /** Per operation; "connect" counts CONNECTs (requests, accepted, rejected = refused, dropped). */
  counters: Record<FaultOperation, OperationCounters>;
  close(): Promise<void>;
}

interface PeerIdentity {
  certificateId?: string;
  /** Why the certificate cannot be used, if it cannot. */
  problem?: string;
}

interface Subscription {
  filter: string;
  qos: number;
}

interface ClientState {
  certificateId: string;
  clientId: string;
  thingName?: string;
  subscriptions: Subscription[];
}

interface Route {
  operation: Operation;
  format: PayloadFormat;
  /** Template name in the topic (RegisterThing). */
  templateName?: string;
  /** "accepted"/"rejected" when the topic is an answer topic. */
  answer?: string;
}

/** The ALPN protocol AWS IoT expects for MQTT on port 443. */
export const AWS_ALPN = "x-amzn-mqtt-ca";

const ROUTE =
  /^\$aws\/(?:certificates\/(create|create-from-csr)|provisioning-templates\/([^/]+)\/provision)\/(json|cbor)(?:\/(accepted|rejected))?$/;

/** Recognizes provisioning request and answer topics. */
export function routeOf(topic: string): Route | undefined {
  const m = ROUTE.exec(topic);
  if (!m) return undefined;
  const operation: Operation = m[1] === "create"
    ? "CreateKeysAndCertificate"
    : m[1] === "create-from-csr"
    ? "CreateCertificateFromCsr"
    : "RegisterThing";
  return { operation, format: m[3] as PayloadFormat, templateName: m[2], answer: m[4] };
}

/** MQTT topic filter matching, including the `$` rule for leading wildcards. */
export function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  if (topic.startsWith("$") && (f[0] === "+" || f[0] === "#")) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Starts the TLS listener and the broker. */
export async function startBroker(options: BrokerOptions): Promise<RunningBroker> {
  const { registry, events, log } = options;
  const identities = new WeakMap<object, PeerIdentity>();
  const states = new WeakMap<Client, ClientState>();
  const sockets = new Set<tls.TLSSocket>();
  const faults = options.faults;
  const codec = payloadCodec;
  const counters = {} as Record<FaultOperation, OperationCounters>;
  for (const op of FAULT_OPERATIONS) {
    counters[op] = { requests: 0, accepted: 0, rejected: 0, dropped: 0 };
  }

  function identify(socket: tls.TLSSocket): PeerIdentity {
    let cert: X509Certificate | undefined;
    try {
      // getPeerX509Certificate parses once; getPeerCertificate builds a big legacy object.
      cert = socket.getPeerX509Certificate?.();
      if (!cert) {
        const raw = socket.getPeerCertificate(true)?.raw;
        if (raw) cert = new X509Certificate(raw);
      }
    } catch {
      return { problem: "the client certificate cannot be parsed" };
    }
    if (!cert) return { problem: "no client certificate was presented" };
    const certificateId = createHash("sha256").update(cert.raw).digest("hex");
    if (!options.ca.issued(cert, certificateId)) {
      return {
        certificateId,
        problem: `certificate ${certificateId} was not issued by the emulator CA`,
      };
    }
    return { certificateId };
  }

  function deny(client: Client, action: IotAction, name: string): Error {
    log(`policy violation: ${client.id} may not ${action} ${name}; disconnecting`);
    events.emit("violation", { clientId: client.id, action, name });
    return new Error(`Not authorized: ${action} ${name}`);
  }

  function allowed(state: ClientState, action: IotAction, name: string): boolean {
    return isAllowed(registry.policyDocumentsOf(state.certificateId), { action, name }, {
      clientId: state.clientId,
      thingName: state.thingName,
    });
  }

  function refuse(
    client: Client,
    identity: PeerIdentity | undefined,
    reason: string,
    returnCode = 5,
  ): AuthenticateError {
    log(`CONNECT refused for client id ${client.id}: ${reason}`);
    counters.connect.rejected++;
    events.emit("connect", {
      clientId: client.id,
      certificateId: identity?.certificateId,
      accepted: false,
      reason,
    });
    const error = new Error(
      returnCode === 5 ? `Not authorized: ${reason}` : reason,
    ) as AuthenticateError;
    error.returnCode = returnCode as AuthenticateError["returnCode"];
    return error;
  }

  /** The CONNECT checks: certificate, status, thing binding, policy. Returns a refusal or the state. */
  function admit(
    client: Client,
    identity: PeerIdentity | undefined,
  ): AuthenticateError | ClientState {
    if (!identity || identity.problem || !identity.certificateId) {
      return refuse(client, identity, identity?.problem ?? "no TLS identity");
    }
    const certificateId = identity.certificateId;
    const record = registry.peekCertificate(certificateId);
    if (!record) return refuse(client, identity, `certificate ${certificateId} is not registered`);
    if (record.status !== "ACTIVE") {
      return refuse(client, identity, `certificate ${certificateId} is ${record.status}`);
    }
    const attached = record.thingNames.includes(client.id);
    if (record.thingNames.length > 0 && !attached) {
      return refuse(
        client,
        identity,
        `certificate ${certificateId} belongs to thing ${record.thingNames.join(", ")} ` +
          `and may connect only with that client id, not ${client.id}`,
      );
    }
    const state: ClientState = {
      certificateId,
      clientId: client.id,
      thingName: attached ? client.id : undefined,
      subscriptions: [],
    };
    if (!allowed(state, "iot:Connect", client.id)) {
      return refuse(
        client,
        identity,
        `no policy of certificate ${certificateId} allows iot:Connect as ${client.id}`,
      );
    }
    return state;
  }

  async function authenticate(client: Client): Promise<AuthenticateError | null> {
    counters.connect.requests++;
    const plan = faults.plan("connect");
    if (plan.applied.length) noteFault("connect", client.id, plan.applied);
    await faults.checkpoint("connect", "before", client.id);
    const identity = identities.get(client.conn);
    if (plan.drop) {
      counters.connect.dropped++;
      log(`CONNECT from ${client.id}: connection dropped (injected fault)`);
      client.conn.destroy();
      return refuse(client, identity, "connection dropped (injected fault)", 3);
    }
    if (plan.reject) {
      return refuse(
        client,
        identity,
        `${plan.reject.errorCode} (injected fault)`,
        plan.returnCode ?? 3,
      );
    }
    const admitted = admit(client, identity);
    if (admitted instanceof Error) return admitted;
    await faults.checkpoint("connect", "after", client.id);
    if (plan.delayMs > 0) await sleep(plan.delayMs);
    if (client.closed || client.conn.destroyed) return refuse(client, identity, "client went away");
    states.set(client, admitted);
    counters.connect.accepted++;
    log(`CONNECT accepted: client id ${client.id}, certificate ${admitted.certificateId}`);
    events.emit("connect", {
      clientId: client.id,
      certificateId: admitted.certificateId,
      accepted: true,
    });
    return null;
  }

  function noteFault(operation: FaultOperation, clientId: string, applied: string[]): void {
    log(`injecting fault on ${operation} for ${clientId}: ${applied.join(", ")}`);
    events.emit("fault", { operation, clientId, faults: applied });
  }

  const broker = await Aedes.createBroker({
    authenticate(client, _username, _password, done) {
      authenticate(client).then(
        (error) => error ? done(error, false) : done(null, true),
        (error) => {
          log(`internal error at CONNECT: ${(error as Error).stack}`);
          done(refuse(client, undefined, "internal error", 3), false);
        },
      );
    },

    authorizeSubscribe(client, subscription, done) {
      const state = states.get(client);
      if (!state || !allowed(state, "iot:Subscribe", subscription.topic)) {
        return done(deny(client, "iot:Subscribe", subscription.topic));
      }
      state.subscriptions = state.subscriptions.filter((s) => s.filter !== subscription.topic);
      state.subscriptions.push({ filter: subscription.topic, qos: subscription.qos });
      done(null, subscription);
    },

    authorizePublish(client, packet, done) {
      if (!client) return done(null);
      const state = states.get(client);
      const route = routeOf(packet.topic);
      if (!state || route?.answer || !allowed(state, "iot:Publish", packet.topic)) {
        return done(deny(client, "iot:Publish", packet.topic));
      }
      done(null);
    },

    authorizeForward(client, packet) {
      // Requests and answers on reserved topics never travel between clients;
      // the emulator writes answers itself (those packets carry no clientId).
      const fromClient = (packet as { clientId?: string }).clientId !== undefined;
      if (fromClient && packet.topic.startsWith("$aws/")) return null;
      const state = states.get(client);
      if (
        fromClient && (!state || !allowed(state, "iot:Receive", packet.topic))
      ) {
        return null;
      }
      return packet;
    },

    published(packet, client, done) {
      done(null);
      if (!client) return;
      const route = routeOf(packet.topic);
      const state = states.get(client);
      if (!route || route.answer || !state) return;
      handleRequest(client, state, route, Buffer.from(packet.payload as Uint8Array)).catch(
        (error) => {
          log(
            `internal error answering ${route.operation} for ${client.id}: ${
              (error as Error).stack
            }`,
          );
        },
      );
    },
  });

  broker.on("unsubscribe", (filters, client) => {
    const state = states.get(client);
    if (state) state.subscriptions = state.subscriptions.filter((s) => !filters.includes(s.filter));
  });
  broker.on("clientDisconnect", (client) => {
    if (!states.has(client)) return;
    states.delete(client);
    events.emit("disconnect", { clientId: client.id });
  });

  async function handleRequest(client: Client, state: ClientState, route: Route, payload: Buffer) {
    const { operation, format } = route;
    const clientId = client.id;
    counters[operation].requests++;
    log(`${operation} request (${format}) from ${clientId}`);
    events.emit("request", { operation, format, clientId });
    const topics = operationTopics(operation, { format, templateName: route.templateName });
    const plan = faults.plan(operation);
    if (plan.applied.length) noteFault(operation, clientId, plan.applied);
    const drop = (topic: string, reason: string) => {
      counters[operation].dropped++;
      log(`no answer: ${reason}`);
      events.emit("dropped", { operation, format, clientId, topic, reason });
    };

    await faults.checkpoint(operation, "before", clientId);
    if (plan.drop === "request") {
      client.conn.destroy();
      drop(topics.request, `connection of ${clientId} dropped on request (injected fault)`);
      return;
    }
    const answer = plan.reject
      ? { accepted: false as const, body: plan.reject }
      : await answerRequest(operation, route, payload, state, clientId);
    await faults.checkpoint(operation, "after", clientId);
    if (plan.delayMs > 0) await sleep(plan.delayMs);

    const topic = answer.accepted ? topics.accepted : topics.rejected;
    if (plan.drop === "before") {
      client.conn.destroy();
      drop(topic, `connection of ${clientId} dropped before the answer (injected fault)`);
      return;
    }
    if (client.closed) {
      drop(topic, `client ${clientId} went away before the answer`);
      return;
    }
    const subscription = state.subscriptions.find((s) => filterMatches(s.filter, topic));
    if (!subscription) {
      drop(topic, `client ${clientId} did not subscribe to ${topic} before publishing the request`);
      return;
    }
    let bytes = codec.encode(answer.body, format);
    if (plan.malformed) bytes = Buffer.from(format === "json" ? "{not json" : [0xff, 0xff, 0x1c]);
    if (plan.truncated) bytes = bytes.subarray(0, Math.floor(bytes.length / 2));
    const qos = Math.min(1, subscription.qos) as 0 | 1;
    for (let i = plan.duplicate ? 2 : 1; i > 0; i--) {
      await new Promise<void>((resolve) => {
        client.publish(
          { cmd: "publish", topic, payload: bytes, qos, retain: false, dup: false },
          () => resolve(),
        );
      });
    }
    counters[operation][answer.accepted ? "accepted" : "rejected"]++;
    log(`${operation} ${answer.accepted ? "accepted" : "rejected"} for ${clientId} on ${topic}`);
    events.emit("answer", { operation, format, clientId, accepted: answer.accepted, topic });
    if (plan.drop === "after") {
      log(`dropping the connection of ${clientId} after the answer (injected fault)`);
      client.conn.destroy();
    }
  }

  async function answerRequest(
    operation: Operation,
    route: Route,
    payload: Buffer,
    state: ClientState,
    clientId: string,
  ): Promise<Answer> {
    if (operation === "RegisterThing" && route.templateName !== options.templateName) {
      return reject(
        404,
        "ResourceNotFound",
        `Provisioning template ${route.templateName} does not exist.`,
      );
    }
    let request: unknown;
    try {
      request = codec.decode(payload, route.format);
    } catch (error) {
      return reject(400, "InvalidPayload", (error as Error).message);
    }
    return await options.service.handle(operation, request, {
      certificateId: state.certificateId,
      clientId,
    });
  }

  const server = tls.createServer({
    cert: options.serverCertPem,
    key: options.serverKeyPem,
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: [AWS_ALPN],
    // No session tickets: devices connect once per certificate, and building
    // a ticket (which embeds the client certificate) costs a tenth of a handshake.
    secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    socket.setNoDelay(true); // no Nagle + delayed-ACK stall on multi-packet answers
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    if (options.alpn === "require" && socket.alpnProtocol !== AWS_ALPN) {
      const reason =
        `TLS connection from ${socket.remoteAddress} did not negotiate ALPN ${AWS_ALPN}`;
      log(`refused: ${reason}`);
      events.emit("connect", { clientId: "", accepted: false, reason });
      socket.destroy();
      return;
    }
    identities.set(socket, identify(socket));
    broker.handle(socket);
  });
  server.on("tlsClientError", (error) => log(`TLS handshake failed: ${error.message}`));

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;

  return {
    host: options.host,
    port: address.port,
    counters,
    async close() {
      faults.releaseAll();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await closed;
    },
  };
}

/** The provisioning payload codec (JSON and CBOR). */
const payloadCodec: PayloadCodec = {
  decode(payload, format) {
    if (payload.length === 0) return undefined;
    try {
      return decodePayload(payload, format);
    } catch (error) {
      if (format === "cbor") throw error;
      throw new Error("The request payload is not valid JSON.");
    }
  },
  encode(body, format) {
    const bytes = encodePayload(body, format);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  },
};

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
