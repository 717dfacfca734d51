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
import { X509Certificate } from "node:crypto";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { Aedes, type AuthenticateError, type Client } from "aedes";
import { certificateId as certificateIdOf } from "../pki/mod.ts";
import { type Operation, operationTopics, type PayloadFormat } from "../provisioning/topics.ts";
import type { CertificateAuthority } from "./ca.ts";
import type { EmulatorEvents } from "./events.ts";
import { type IotAction, isAllowed } from "./policy.ts";
import type { Registry } from "./registry.ts";
import type { Answer, ProvisioningService } from "./service.ts";

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
  log: (line: string) => void;
}

/** A running broker. */
export interface RunningBroker {
  host: string;
  port: number;
  counters: Record<Operation, OperationCounters>;
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
  const counters = {} as Record<Operation, OperationCounters>;
  for (
    const op of ["CreateKeysAndCertificate", "CreateCertificateFromCsr", "RegisterThing"] as const
  ) {
    counters[op] = { requests: 0, accepted: 0, rejected: 0, dropped: 0 };
  }

  function identify(socket: tls.TLSSocket): PeerIdentity {
    const peer = socket.getPeerCertificate(true);
    if (!peer || !peer.raw) return { problem: "no client certificate was presented" };
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(peer.raw);
    } catch {
      return { problem: "the client certificate cannot be parsed" };
    }
    const certificateId = certificateIdOf(cert.toString());
    if (!options.ca.issued(cert)) {
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

  function refuse(client: Client, identity: PeerIdentity | undefined, reason: string) {
    log(`CONNECT refused for client id ${client.id}: ${reason}`);
    events.emit("connect", {
      clientId: client.id,
      certificateId: identity?.certificateId,
      accepted: false,
      reason,
    });
    const error = new Error(`Not authorized: ${reason}`) as AuthenticateError;
    error.returnCode = 5;
    return error;
  }

  const broker = await Aedes.createBroker({
    authenticate(client, _username, _password, done) {
      const identity = identities.get(client.conn);
      if (!identity || identity.problem || !identity.certificateId) {
        return done(refuse(client, identity, identity?.problem ?? "no TLS identity"), false);
      }
      const certificateId = identity.certificateId;
      const record = registry.peekCertificate(certificateId);
      if (!record) {
        return done(
          refuse(client, identity, `certificate ${certificateId} is not registered`),
          false,
        );
      }
      if (record.status !== "ACTIVE") {
        return done(
          refuse(client, identity, `certificate ${certificateId} is ${record.status}`),
          false,
        );
      }
      const attached = record.thingNames.includes(client.id);
      if (record.thingNames.length > 0 && !attached) {
        return done(
          refuse(
            client,
            identity,
            `certificate ${certificateId} belongs to thing ${record.thingNames.join(", ")} ` +
              `and may connect only with that client id, not ${client.id}`,
          ),
          false,
        );
      }
      const state: ClientState = {
        certificateId,
        clientId: client.id,
        thingName: attached ? client.id : undefined,
        subscriptions: [],
      };
      if (!allowed(state, "iot:Connect", client.id)) {
        return done(
          refuse(
            client,
            identity,
            `no policy of certificate ${certificateId} allows iot:Connect as ${client.id}`,
          ),
          false,
        );
      }
      states.set(client, state);
      log(`CONNECT accepted: client id ${client.id}, certificate ${certificateId}`);
      events.emit("connect", { clientId: client.id, certificateId, accepted: true });
      done(null, true);
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
    counters[operation].requests++;
    log(`${operation} request (${format}) from ${client.id}`);
    events.emit("request", { operation, format, clientId: client.id });
    const topics = operationTopics(operation, { format, templateName: route.templateName });
    let answer: Answer;
    if (operation === "RegisterThing" && route.templateName !== options.templateName) {
      answer = {
        accepted: false,
        body: {
          statusCode: 404,
          errorCode: "ResourceNotFound",
          errorMessage: `Provisioning template ${route.templateName} does not exist.`,
        },
      };
    } else {
      let request: unknown;
      let decodeError: string | undefined;
      try {
        request = decode(payload, format);
      } catch (error) {
        decodeError = (error as Error).message;
      }
      answer = decodeError !== undefined
        ? {
          accepted: false,
          body: { statusCode: 400, errorCode: "InvalidPayload", errorMessage: decodeError },
        }
        : await options.service.handle(operation, request, {
          certificateId: state.certificateId,
          clientId: client.id,
        });
    }
    const topic = answer.accepted ? topics.accepted : topics.rejected;
    const subscription = state.subscriptions.find((s) => filterMatches(s.filter, topic));
    if (client.closed) {
      counters[operation].dropped++;
      events.emit("dropped", {
        operation,
        format,
        clientId: client.id,
        topic,
        reason: "client gone",
      });
      return;
    }
    if (!subscription) {
      counters[operation].dropped++;
      const reason =
        `client ${client.id} did not subscribe to ${topic} before publishing the request`;
      log(`no answer: ${reason}`);
      events.emit("dropped", { operation, format, clientId: client.id, topic, reason });
      return;
    }
    await new Promise<void>((resolve) => {
      client.publish(
        {
          cmd: "publish",
          topic,
          payload: encode(answer.body, format),
          qos: Math.min(1, subscription.qos) as 0 | 1,
          retain: false,
          dup: false,
        },
        () => resolve(),
      );
    });
    counters[operation][answer.accepted ? "accepted" : "rejected"]++;
    log(`${operation} ${answer.accepted ? "accepted" : "rejected"} for ${client.id} on ${topic}`);
    events.emit("answer", {
      operation,
      format,
      clientId: client.id,
      accepted: answer.accepted,
      topic,
    });
  }

  const server = tls.createServer({
    cert: options.serverCertPem,
    key: options.serverKeyPem,
    requestCert: true,
    rejectUnauthorized: false,
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
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
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await closed;
    },
  };
}

function decode(payload: Buffer, format: PayloadFormat): unknown {
  if (format === "cbor") throw new Error("CBOR payloads are not supported yet.");
  if (payload.length === 0) return undefined;
  try {
    return JSON.parse(payload.toString("utf8"));
  } catch {
    throw new Error("The request payload is not valid JSON.");
  }
}

function encode(body: unknown, _format: PayloadFormat): Buffer {
  return Buffer.from(JSON.stringify(body));
}
