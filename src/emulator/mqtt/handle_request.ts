// SPDX-License-Identifier: Apache-2.0
/**
 * A provisioning request published by a client: the service's answer (or an
 * injected rejection), delivered only to the asking connection and only if
 * it subscribed to the answer topic first and its policy allows iot:Receive
 * on it, with the faults injected on the operation (drops, delays, garbled or duplicate answers).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Client } from "aedes";
import {
  decodePayload,
  encodePayload,
  operationTopics,
  type PayloadFormat,
  type Route,
} from "../../protocol/mod.ts";
import { allowed, type BrokerContext, type ClientState, noteFault, sleep } from "./context.ts";
import type { FaultPlan } from "./faults.ts";
import { filterMatches } from "./authorize.ts";
import { type Answer, reject } from "./answers.ts";

/** A request as published: who sent it, on which route, with what payload. */
export interface Request {
  client: Client;
  state: ClientState;
  route: Route;
  payload: Buffer;
}

/** Answers a request (or drops it, as the faults say). */
export async function handleRequest(context: BrokerContext, request: Request): Promise<void> {
  const { client, route } = request;
  const { operation, format } = route;
  const clientId = client.id;
  const { counters, faults, log } = context;
  counters[operation].requests++;
  log(`${operation} request (${format}) from ${clientId}`);
  context.events.emit("request", { operation, format, clientId });
  const topics = operationTopics(operation, { format, templateName: route.templateName });
  const plan = faults.plan(operation);
  if (plan.applied.length) noteFault(context, { operation, clientId, applied: plan.applied });

  await faults.checkpoint(operation, "before", clientId);
  if (plan.drop === "request") {
    client.conn.destroy();
    const reason = `connection of ${clientId} dropped on request (injected fault)`;
    dropped(context, request, { topic: topics.request, reason });
    return;
  }
  const answer = plan.reject
    ? { accepted: false as const, body: plan.reject }
    : await answerRequest(context, request);
  await faults.checkpoint(operation, "after", clientId);
  if (plan.delayMs > 0) await sleep(plan.delayMs);
  const topic = answer.accepted ? topics.accepted : topics.rejected;
  await deliver(context, request, { answer, topic, plan });
}

/** The service's answer; an undecodable payload is rejected. */
async function answerRequest(context: BrokerContext, request: Request): Promise<Answer> {
  const { route, state, client } = request;
  let body: unknown;
  try {
    body = decodeRequest(request.payload, route.format);
  } catch (error) {
    return reject(400, "InvalidPayload", (error as Error).message);
  }
  return await context.service.handle(route.operation, body, {
    certificateId: state.certificateId,
    clientId: client.id,
    templateName: route.templateName,
  });
}

/** Sends the answer to the asking client if it can receive it, with the faults of `plan`. */
async function deliver(
  context: BrokerContext,
  request: Request,
  outgoing: { answer: Answer; topic: string; plan: FaultPlan },
): Promise<void> {
  const { client, state, route } = request;
  const { answer, topic, plan } = outgoing;
  const { operation, format } = route;
  const clientId = client.id;
  if (plan.drop === "before") {
    client.conn.destroy();
    const reason = `connection of ${clientId} dropped before the answer (injected fault)`;
    return dropped(context, request, { topic, reason });
  }
  if (client.closed) {
    return dropped(context, request, {
      topic,
      reason: `client ${clientId} went away before the answer`,
    });
  }
  const subscription = state.subscriptions.find((s) => filterMatches(s.filter, topic));
  if (!subscription) {
    const reason = `client ${clientId} did not subscribe to ${topic} before publishing the request`;
    return dropped(context, request, { topic, reason });
  }
  if (!allowed(context, { state, action: "iot:Receive", name: topic })) {
    // AWS IoT checks iot:Receive on every delivery: a denied one is dropped without a word.
    context.log(`policy violation: ${clientId} may not iot:Receive ${topic}; answer dropped`);
    context.events.emit("violation", {
      clientId,
      action: "iot:Receive",
      name: topic,
      disconnected: false,
    });
    const reason = `no policy of client ${clientId}'s certificate allows iot:Receive on ${topic}`;
    return dropped(context, request, { topic, reason });
  }
  const bytes = answerBytes(answer, format, plan);
  const qos = Math.min(1, subscription.qos) as 0 | 1;
  for (let i = plan.duplicate ? 2 : 1; i > 0; i--) {
    await new Promise<void>((resolve) => {
      client.publish(
        { cmd: "publish", topic, payload: bytes, qos, retain: false, dup: false },
        () => resolve(),
      );
    });
  }
  context.counters[operation][answer.accepted ? "accepted" : "rejected"]++;
  context.log(
    `${operation} ${answer.accepted ? "accepted" : "rejected"} for ${clientId} on ${topic}`,
  );
  context.events.emit("answer", {
    operation,
    format,
    clientId,
    accepted: answer.accepted,
    topic,
    ...(answer.accepted
      ? {}
      : { rejection: { statusCode: answer.body.statusCode, errorCode: answer.body.errorCode } }),
  });
  if (plan.drop === "after") {
    context.log(`dropping the connection of ${clientId} after the answer (injected fault)`);
    client.conn.destroy();
  }
}

/** The encoded answer, garbled or cut short when the faults say so. */
function answerBytes(answer: Answer, format: PayloadFormat, plan: FaultPlan): Buffer {
  const encoded = encodePayload(answer.body, format);
  let bytes = Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  if (plan.malformed) bytes = Buffer.from(format === "json" ? "{not json" : [0xff, 0xff, 0x1c]);
  if (plan.truncated) bytes = bytes.subarray(0, Math.floor(bytes.length / 2));
  return bytes;
}

/** Decodes a request; undefined for an empty payload; throws a sentence on bad input. */
function decodeRequest(payload: Uint8Array, format: PayloadFormat): unknown {
  if (payload.length === 0) return undefined;
  try {
    return decodePayload(payload, format);
  } catch (error) {
    if (format === "cbor") throw error;
    throw new Error("The request payload is not valid JSON.");
  }
}

function dropped(
  context: BrokerContext,
  request: Request,
  drop: { topic: string; reason: string },
): void {
  const { operation, format } = request.route;
  context.counters[operation].dropped++;
  context.log(`no answer: ${drop.reason}`);
  context.events.emit("dropped", {
    operation,
    format,
    clientId: request.client.id,
    topic: drop.topic,
    reason: drop.reason,
  });
}
