// SPDX-License-Identifier: Apache-2.0
/**
 * CONNECT, as AWS IoT checks it: the TLS client certificate (issued by the
 * emulator's CA, registered, ACTIVE), the thing it is bound to, the
 * iot:Connect policy, and the faults injected on "connect".
 *
 * @module
 */
import { createHash, X509Certificate } from "node:crypto";
import type tls from "node:tls";
import type { AuthenticateError, Client } from "aedes";
import {
  allowed,
  type BrokerContext,
  type ClientState,
  noteFault,
  type PeerIdentity,
  sleep,
} from "./context.ts";

/** Who the peer of a TLS socket is: its certificate id, or why its certificate cannot be used. */
export function identify(context: BrokerContext, socket: tls.TLSSocket): PeerIdentity {
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
  if (!context.ca.issued(cert, certificateId)) {
    return {
      certificateId,
      problem: `certificate ${certificateId} was not issued by the emulator CA`,
    };
  }
  return { certificateId };
}

/** Decides a CONNECT: null admits the client (its state is recorded), else the refusal. */
export async function authenticate(
  context: BrokerContext,
  client: Client,
): Promise<AuthenticateError | null> {
  const { counters, faults, log } = context;
  counters.connect.requests++;
  const plan = faults.plan("connect");
  if (plan.applied.length) {
    noteFault(context, { operation: "connect", clientId: client.id, applied: plan.applied });
  }
  await faults.checkpoint("connect", "before", client.id);
  const identity = context.identities.get(client.conn);
  if (plan.drop) {
    counters.connect.dropped++;
    log(`CONNECT from ${client.id}: connection dropped (injected fault)`);
    client.conn.destroy();
    const reason = "connection dropped (injected fault)";
    return refuse(context, client, { identity, reason, returnCode: 3 });
  }
  if (plan.reject) {
    const reason = `${plan.reject.errorCode} (injected fault)`;
    return refuse(context, client, { identity, reason, returnCode: plan.returnCode ?? 3 });
  }
  const admitted = admit(context, client, identity);
  if (admitted instanceof Error) return admitted;
  await faults.checkpoint("connect", "after", client.id);
  if (plan.delayMs > 0) await sleep(plan.delayMs);
  if (client.closed || client.conn.destroyed) {
    return refuse(context, client, { identity, reason: "client went away" });
  }
  context.states.set(client, admitted);
  counters.connect.accepted++;
  log(`CONNECT accepted: client id ${client.id}, certificate ${admitted.certificateId}`);
  context.events.emit("connect", {
    clientId: client.id,
    certificateId: admitted.certificateId,
    accepted: true,
  });
  return null;
}

/** Refuses a CONNECT (CONNACK `returnCode`, 5 "not authorized" by default), counted and announced. */
export function refuse(
  context: BrokerContext,
  client: Client,
  refusal: { identity: PeerIdentity | undefined; reason: string; returnCode?: number },
): AuthenticateError {
  const { identity, reason, returnCode = 5 } = refusal;
  context.log(`CONNECT refused for client id ${client.id}: ${reason}`);
  context.counters.connect.rejected++;
  context.events.emit("connect", {
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
  context: BrokerContext,
  client: Client,
  identity: PeerIdentity | undefined,
): AuthenticateError | ClientState {
  const no = (reason: string) => refuse(context, client, { identity, reason });
  if (!identity || identity.problem || !identity.certificateId) {
    return no(identity?.problem ?? "no TLS identity");
  }
  const certificateId = identity.certificateId;
  const record = context.registry.peekCertificate(certificateId);
  if (!record) return no(`certificate ${certificateId} is not registered`);
  if (record.status !== "ACTIVE") return no(`certificate ${certificateId} is ${record.status}`);
  const attached = record.thingNames.includes(client.id);
  if (record.thingNames.length > 0 && !attached) {
    return no(
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
  if (!allowed(context, { state, action: "iot:Connect", name: client.id })) {
    return no(`no policy of certificate ${certificateId} allows iot:Connect as ${client.id}`);
  }
  return state;
}
