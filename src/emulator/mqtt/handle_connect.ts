// SPDX-License-Identifier: Apache-2.0
/**
 * CONNECT, as AWS IoT checks it: the TLS client certificate (issued by the
 * emulator's CA, registered, ACTIVE), the thing it is bound to, the
 * iot:Connect policy, and the faults injected on "connect"; refused the way
 * AWS IoT refuses over each MQTT version.
 *
 * @module
 */
import { createHash, X509Certificate } from "node:crypto";
import type tls from "node:tls";
import type { Client, ConnectPacket } from "aedes";
import mqttPacket from "mqtt-packet";
import {
  allowed,
  type BrokerContext,
  type ClientState,
  noteFault,
  type PeerIdentity,
  sleep,
  trackClient,
} from "./context.ts";

/** MQTT 5 CONNACK 0x87 Not authorized. */
const REASON_NOT_AUTHORIZED = 0x87;
/** MQTT 5 CONNACK 0x97 Quota exceeded (AWS IoT's code for limits; the emulator's throttle). */
const REASON_QUOTA_EXCEEDED = 0x97;
/** MQTT 3.1.1 CONNACK return codes 1-5 as MQTT 5 reason codes. */
const V5_CONNACK_CODES: Record<number, number> = {
  1: 0x84,
  2: 0x85,
  3: 0x88,
  4: 0x86,
  5: 0x87,
};

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

/**
 * Decides a CONNECT (aedes' preConnect hook, before aedes sends any CONNACK):
 * true admits the client (its state is recorded); false refuses it, after
 * {@linkcode refuse} answered as AWS IoT does for the client's MQTT version.
 */
export async function decideConnect(
  context: BrokerContext,
  connect: { client: Client; packet: ConnectPacket },
): Promise<boolean> {
  const { client, packet } = connect;
  const { counters, faults, log } = context;
  const clientId = packet.clientId;
  const version = packet.protocolVersion ?? 4;
  counters.connect.requests++;
  const plan = faults.plan("connect");
  if (plan.applied.length) {
    noteFault(context, { operation: "connect", clientId, applied: plan.applied });
  }
  await faults.checkpoint("connect", "before", clientId);
  const identity = context.identities.get(client.conn);
  const refusal = { client, clientId, version, identity };
  if (plan.drop) {
    counters.connect.dropped++;
    log(`CONNECT from ${clientId}: connection dropped (injected fault)`);
    client.conn.destroy();
    return await refuse(context, { ...refusal, reason: "connection dropped (injected fault)" });
  }
  if (plan.reject) {
    const throttled = plan.reject.statusCode === 429;
    const reason = `${plan.reject.errorCode} (injected fault)`;
    return await refuse(context, {
      ...refusal,
      reason,
      returnCode: plan.returnCode ?? 3,
      reasonCode: throttled ? REASON_QUOTA_EXCEEDED : undefined,
    });
  }
  const admitted = admit(context, { client, clientId, identity });
  if (typeof admitted === "string") {
    return await refuse(context, { ...refusal, reason: admitted });
  }
  await faults.checkpoint("connect", "after", clientId);
  if (plan.delayMs > 0) await sleep(plan.delayMs);
  if (client.closed || client.conn.destroyed) {
    return await refuse(context, { ...refusal, reason: "client went away" });
  }
  context.states.set(client, admitted);
  trackClient(context, client, admitted.certificateId);
  counters.connect.accepted++;
  log(
    `CONNECT accepted (MQTT ${
      versionName(version)
    }): client id ${clientId}, certificate ${admitted.certificateId}`,
  );
  context.events.emit("connect", {
    clientId,
    certificateId: admitted.certificateId,
    accepted: true,
    mqttVersion: version,
  });
  return true;
}

/** A refused CONNECT: who, why, and the CONNACK code a fault asks for. */
export interface Refusal {
  client: Client;
  clientId: string;
  /** The CONNECT's protocol level: 3 or 4 (MQTT 3.1/3.1.1), 5. */
  version: number;
  identity: PeerIdentity | undefined;
  reason: string;
  /** MQTT 3.1.1 CONNACK return code (injected faults); none: not authorized. */
  returnCode?: number;
  /** MQTT 5 CONNACK reason code; default: the returnCode's, or 0x87 Not authorized. */
  reasonCode?: number;
}

/**
 * Refuses a CONNECT as AWS IoT does, counted and announced: over MQTT 3.1.1
 * a certificate or policy refusal is a hang-up without CONNACK (what users of
 * AWS IoT see: aws-iot-device-sdk-cpp-v2#247, aws-iot-device-sdk-js-v2#101),
 * an injected fault's return code a CONNACK; over MQTT 5 a CONNACK with a
 * reason code (0x87 Not authorized, as AWS documents) and a reason string.
 * Resolves false once the CONNACK (if any) is written.
 */
export async function refuse(context: BrokerContext, refusal: Refusal): Promise<false> {
  const { client, clientId, identity, reason, version } = refusal;
  context.log(`CONNECT refused for client id ${clientId}: ${reason}`);
  context.counters.connect.rejected++;
  context.events.emit("connect", {
    clientId,
    certificateId: identity?.certificateId,
    accepted: false,
    reason,
    mqttVersion: version,
  });
  const connack = refusalConnack(refusal);
  if (connack && !client.conn.destroyed) {
    await new Promise<void>((resolve) => {
      client.conn.write(
        mqttPacket.generate(connack, { protocolVersion: version }),
        () => resolve(),
      );
    });
  }
  return false;
}

/**
 * Longest reason string of a refused CONNACK, in characters. The emulator's
 * reasons name a certificate id, its things and the client id (AWS IoT's at
 * most 128 bytes each): whole, they fit. The client id is the device's and
 * unbounded here, so the reason is capped, never mid-character.
 */
const MAX_REASON_CHARS = 1024;

/** The CONNACK of a refusal, or undefined for a hang-up (MQTT 3.1.1, not authorized). */
function refusalConnack(refusal: Refusal): mqttPacket.IConnackPacket | undefined {
  const { version, returnCode, reason } = refusal;
  if (version !== 5) {
    return returnCode === undefined
      ? undefined
      : { cmd: "connack", returnCode, sessionPresent: false };
  }
  const reasonCode = refusal.reasonCode ??
    (returnCode === undefined ? REASON_NOT_AUTHORIZED : V5_CONNACK_CODES[returnCode] ?? 0x80);
  return {
    cmd: "connack",
    reasonCode,
    sessionPresent: false,
    properties: { reasonString: Array.from(reason).slice(0, MAX_REASON_CHARS).join("") },
  };
}

/** The CONNECT checks: certificate, status, thing binding, policy. Returns why not, or the state. */
function admit(
  context: BrokerContext,
  connect: { client: Client; clientId: string; identity: PeerIdentity | undefined },
): string | ClientState {
  const { clientId, identity } = connect;
  if (!identity || identity.problem || !identity.certificateId) {
    return identity?.problem ?? "no TLS identity";
  }
  const certificateId = identity.certificateId;
  const record = context.registry.peekCertificate(certificateId);
  if (!record) return `certificate ${certificateId} is not registered`;
  if (record.status !== "ACTIVE") return `certificate ${certificateId} is ${record.status}`;
  const attached = record.thingNames.includes(clientId);
  if (record.thingNames.length > 0 && !attached) {
    return `certificate ${certificateId} belongs to thing ${record.thingNames.join(", ")} ` +
      `and may connect only with that client id, not ${clientId}`;
  }
  const state: ClientState = {
    certificateId,
    clientId,
    thingName: attached ? clientId : undefined,
    subscriptions: [],
  };
  if (!allowed(context, { state, action: "iot:Connect", name: clientId })) {
    return `no policy of certificate ${certificateId} allows iot:Connect as ${clientId}`;
  }
  return state;
}

/** "3.1.1" for protocol level 4, "3.1" for 3, "5" for 5. */
export function versionName(version: number): string {
  return version === 5 ? "5" : version === 3 ? "3.1" : "3.1.1";
}
