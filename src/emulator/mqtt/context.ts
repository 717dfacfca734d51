// SPDX-License-Identifier: Apache-2.0
/**
 * What the broker's handlers share: the emulator's parts (registry, service,
 * events, faults), the state of each connection, and the counters.
 *
 * @module
 */
import type { Client } from "aedes";
import type { CertificateAuthority } from "../ca.ts";
import type { EmulatorEvents } from "../events.ts";
import { FAULT_OPERATIONS, type FaultController, type FaultOperation } from "./faults.ts";
import { type CertificateFacts, type IotAction, isAllowed } from "../../policy/mod.ts";
import { certificateFacts } from "../../policy/certificate.ts";
import type { Registry } from "../registry/mod.ts";
import type { ProvisioningService } from "./service.ts";

/** Requests and answers counted per operation. */
export interface OperationCounters {
  requests: number;
  accepted: number;
  rejected: number;
  dropped: number;
}

/** Settings of the broker (`startBroker`). */
export interface BrokerOptions {
  host: string;
  port: number;
  serverCertPem: string;
  serverKeyPem: string;
  ca: CertificateAuthority;
  registry: Registry;
  service: ProvisioningService;
  events: EmulatorEvents;
  faults: FaultController;
  /** "require": refuse TLS connections that do not negotiate ALPN x-amzn-mqtt-ca. */
  alpn: "require" | "optional";
  log: (line: string) => void;
}

/** Who a TLS peer is: its certificate, or why it cannot be used. */
export interface PeerIdentity {
  certificateId?: string;
  /** Why the certificate cannot be used, if it cannot. */
  problem?: string;
}

/** A subscription a client made (answers go only to subscribed clients). */
export interface Subscription {
  filter: string;
  qos: number;
}

/** An admitted connection. */
export interface ClientState {
  certificateId: string;
  clientId: string;
  thingName?: string;
  subscriptions: Subscription[];
}

/** The broker's shared state. */
export interface BrokerContext extends BrokerOptions {
  /** Identity of each TLS socket, found at the handshake. */
  identities: WeakMap<object, PeerIdentity>;
  /** State of each admitted client. */
  states: WeakMap<Client, ClientState>;
  /** Admitted clients by certificate id (a status change disconnects them). */
  clientsByCertificate: Map<string, Set<Client>>;
  /** Per operation; "connect" counts CONNECTs (requests, accepted, rejected = refused, dropped). */
  counters: Record<FaultOperation, OperationCounters>;
}

/** A fresh context: no connections yet, every counter at zero. */
export function brokerContext(options: BrokerOptions): BrokerContext {
  const counters = {} as Record<FaultOperation, OperationCounters>;
  for (const op of FAULT_OPERATIONS) {
    counters[op] = { requests: 0, accepted: 0, rejected: 0, dropped: 0 };
  }
  return {
    ...options,
    identities: new WeakMap(),
    states: new WeakMap(),
    clientsByCertificate: new Map(),
    counters,
  };
}

/** Records an admitted client under its certificate until its connection closes. */
export function trackClient(context: BrokerContext, client: Client, certificateId: string): void {
  const clients = context.clientsByCertificate.get(certificateId) ?? new Set();
  context.clientsByCertificate.set(certificateId, clients.add(client));
  client.conn.once("close", () => {
    clients.delete(client);
    if (clients.size === 0 && context.clientsByCertificate.get(certificateId) === clients) {
      context.clientsByCertificate.delete(certificateId);
    }
  });
}

/** Whether the policies of the client's certificate allow `action` on `name`. */
export function allowed(
  context: BrokerContext,
  request: { state: ClientState; action: IotAction; name: string },
): boolean {
  const { state, action, name } = request;
  return isAllowed(context.registry.policyDocumentsOf(state.certificateId), { action, name }, {
    clientId: state.clientId,
    thingName: state.thingName,
    certificate: factsOf(context, state.certificateId),
  });
}

const facts = new Map<string, CertificateFacts | undefined>();

/** The certificate policy variables of a registered certificate (parsed once per id). */
function factsOf(context: BrokerContext, certificateId: string): CertificateFacts | undefined {
  if (!facts.has(certificateId)) {
    const pem = context.registry.peekCertificate(certificateId)?.certificatePem;
    let value: CertificateFacts | undefined;
    try {
      value = pem === undefined ? undefined : certificateFacts(pem);
    } catch {
      value = undefined;
    }
    if (facts.size > 10_000) facts.clear();
    facts.set(certificateId, value);
  }
  return facts.get(certificateId);
}

/** Logs and announces the faults injected into one request or CONNECT. */
export function noteFault(
  context: BrokerContext,
  fault: { operation: FaultOperation; clientId: string; applied: string[] },
): void {
  const { operation, clientId, applied } = fault;
  context.log(`injecting fault on ${operation} for ${clientId}: ${applied.join(", ")}`);
  context.events.emit("fault", { operation, clientId, faults: applied });
}

/** Resolves after `ms` milliseconds (injected delays). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
