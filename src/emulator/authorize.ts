// SPDX-License-Identifier: Apache-2.0
/**
 * SUBSCRIBE, PUBLISH and delivery, as AWS IoT authorizes them: the policies
 * of the client's certificate decide; a denial disconnects the client.
 * Requests and answers on reserved topics never travel between clients.
 *
 * @module
 */
import type { AedesPublishPacket, Client, PublishPacket, Subscription } from "aedes";
import { routeOf } from "../protocol/mod.ts";
import { allowed, type BrokerContext } from "./context.ts";
import type { IotAction } from "./policy.ts";

/** SUBSCRIBE: allowed by policy, then recorded (answers go only to subscribed clients). */
export function authorizeSubscribe(
  context: BrokerContext,
  request: { client: Client; subscription: Subscription },
): Error | null {
  const { client, subscription } = request;
  const state = context.states.get(client);
  if (!state || !allowed(context, { state, action: "iot:Subscribe", name: subscription.topic })) {
    return deny(context, { client, action: "iot:Subscribe", name: subscription.topic });
  }
  state.subscriptions = state.subscriptions.filter((s) => s.filter !== subscription.topic);
  state.subscriptions.push({ filter: subscription.topic, qos: subscription.qos });
  return null;
}

/** UNSUBSCRIBE: forgets the subscriptions. */
export function unsubscribed(context: BrokerContext, client: Client, filters: string[]): void {
  const state = context.states.get(client);
  if (state) state.subscriptions = state.subscriptions.filter((s) => !filters.includes(s.filter));
}

/** PUBLISH from a client: allowed by policy, and never on an answer topic. */
export function authorizePublish(
  context: BrokerContext,
  request: { client: Client; packet: PublishPacket },
): Error | null {
  const { client, packet } = request;
  const state = context.states.get(client);
  const route = routeOf(packet.topic);
  if (
    !state || route?.answer ||
    !allowed(context, { state, action: "iot:Publish", name: packet.topic })
  ) {
    return deny(context, { client, action: "iot:Publish", name: packet.topic });
  }
  return null;
}

/**
 * Delivery of another client's message: never on `$aws/` topics (the
 * emulator writes answers itself, and those packets carry no clientId), and
 * only where iot:Receive allows it.
 */
export function authorizeForward(
  context: BrokerContext,
  request: { client: Client; packet: AedesPublishPacket },
): AedesPublishPacket | null {
  const { client, packet } = request;
  const fromClient = (packet as { clientId?: string }).clientId !== undefined;
  if (fromClient && packet.topic.startsWith("$aws/")) return null;
  const state = context.states.get(client);
  if (
    fromClient &&
    (!state || !allowed(context, { state, action: "iot:Receive", name: packet.topic }))
  ) {
    return null;
  }
  return packet;
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

function deny(
  context: BrokerContext,
  violation: { client: Client; action: IotAction; name: string },
): Error {
  const { client, action, name } = violation;
  context.log(`policy violation: ${client.id} may not ${action} ${name}; disconnecting`);
  context.events.emit("violation", { clientId: client.id, action, name });
  return new Error(`Not authorized: ${action} ${name}`);
}
