// SPDX-License-Identifier: Apache-2.0
/**
 * SUBSCRIBE, PUBLISH and delivery, as AWS IoT authorizes them: the policies
 * of the client's certificate decide. A denial disconnects an MQTT 3.1.1
 * client (its protocol has no way to say no); an MQTT 5 client stays
 * connected and gets reason code 0x87 Not authorized on the SUBACK or PUBACK
 * (as AWS IoT documents). Requests and answers on reserved topics never
 * travel between clients.
 *
 * @module
 */
import type { AedesPublishPacket, Client, PublishPacket, Subscription } from "aedes";
import { routeOf } from "../../protocol/mod.ts";
import { allowed, type BrokerContext } from "./context.ts";
import type { IotAction } from "../../policy/mod.ts";

/**
 * SUBSCRIBE: allowed by policy, then recorded (answers go only to subscribed
 * clients) at QoS 1 at most (AWS IoT has no QoS 2). Denied: an Error
 * (MQTT 3.1.1: aedes disconnects) or null (MQTT 5: SUBACK 0x87 for it).
 */
export function authorizeSubscribe(
  context: BrokerContext,
  request: { client: Client; subscription: Subscription },
): { error: Error | null; granted: Subscription | null } {
  const { client, subscription } = request;
  const state = context.states.get(client);
  if (!state || !allowed(context, { state, action: "iot:Subscribe", name: subscription.topic })) {
    const error = deny(context, { client, action: "iot:Subscribe", name: subscription.topic });
    return { error: client.version === 5 ? null : error, granted: null };
  }
  const qos = Math.min(1, subscription.qos) as 0 | 1;
  state.subscriptions = state.subscriptions.filter((s) => s.filter !== subscription.topic);
  state.subscriptions.push({ filter: subscription.topic, qos });
  return { error: null, granted: { ...subscription, qos } };
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
  const disconnected = client.version !== 5;
  context.log(
    `policy violation: ${client.id} may not ${action} ${name}; ${
      disconnected ? "disconnecting" : "reason code 0x87"
    }`,
  );
  context.events.emit("violation", { clientId: client.id, action, name, disconnected });
  return new Error(`Not authorized: no policy of this certificate allows ${action} on ${name}.`);
}
