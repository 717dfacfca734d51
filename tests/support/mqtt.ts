// SPDX-License-Identifier: Apache-2.0
/**
 * MQTT clients for the emulator tests: mqtt.js connections over mutual TLS
 * with real certificates, and request/answer round trips.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import mqtt, { type MqttClient } from "mqtt";
import type { Emulator } from "../../src/emulator/mod.ts";
import {
  decodePayload,
  encodePayload,
  type Operation,
  operationTopics,
  type PayloadFormat,
} from "../../src/protocol/mod.ts";

/** Credentials for a connection. */
export interface Credentials {
  cert: string;
  key: string;
}

/** The claim certificate and key as PEM strings. */
export function claimCredentials(
  emulator: { claim: { certPath: string; keyPath: string } },
): Credentials {
  return {
    cert: readFileSync(emulator.claim.certPath, "utf8"),
    key: readFileSync(emulator.claim.keyPath, "utf8"),
  };
}

/** MQTT protocol levels the tests speak: 4 (MQTT 3.1.1, the default) and 5. */
export type MqttVersion = 4 | 5;

/**
 * Connects with mqtt.js over mutual TLS; resolves on CONNACK. Rejects on a
 * refusal: "CONNACK <code>[: <reason string>] (<mqtt.js message>)" when the broker
 * answered, "connection closed before CONNACK" when it hung up.
 */
export function connect(
  emulator: Pick<Emulator, "endpoint" | "port" | "caCertPem">,
  credentials: Credentials,
  clientId = `test-${crypto.randomUUID()}`,
  options: { mqttVersion?: MqttVersion } = {},
): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({
      protocol: "mqtts",
      host: emulator.endpoint,
      port: emulator.port,
      ca: emulator.caCertPem,
      cert: credentials.cert,
      key: credentials.key,
      clientId,
      protocolVersion: options.mqttVersion ?? 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    let refusal: string | undefined;
    client.on("packetreceive", (packet) => {
      if (packet.cmd !== "connack") return;
      const code = packet.reasonCode ?? packet.returnCode ?? 0;
      if (code === 0) return;
      const reasonString = packet.properties?.reasonString;
      refusal = `CONNACK ${code}${reasonString ? `: ${reasonString}` : ""}`;
    });
    client.once("connect", () => {
      client.removeAllListeners("error");
      resolve(client);
    });
    client.once("error", (error) => {
      client.end(true);
      reject(refusal ? new Error(`${refusal} (${error.message})`) : error);
    });
    client.once("close", () => reject(new Error(refusal ?? "connection closed before CONNACK")));
  });
}

/** Subscribes to accepted and rejected of an operation. */
export async function subscribeAnswers(
  client: MqttClient,
  operation: Operation,
  options: { format?: PayloadFormat; templateName?: string } = {},
): Promise<void> {
  const topics = operationTopics(operation, { templateName: "FleetprovTemplate", ...options });
  await client.subscribeAsync([topics.accepted, topics.rejected], { qos: 1 });
}

/** A decoded answer and whether it came on `accepted`. */
export interface TestAnswer {
  accepted: boolean;
  body: Record<string, unknown>;
}

/**
 * Subscribes, publishes a request (JSON by default; a Uint8Array is sent as
 * is) and resolves with the decoded answer.
 */
export async function request(
  client: MqttClient,
  operation: Operation,
  payload: unknown,
  options: { templateName?: string; format?: PayloadFormat } = {},
): Promise<TestAnswer> {
  const format = options.format ?? "json";
  const topics = operationTopics(operation, { templateName: "FleetprovTemplate", ...options });
  await subscribeAnswers(client, operation, options);
  const answer = nextAnswer(client, topics.accepted, topics.rejected, format);
  const bytes = payload instanceof Uint8Array
    ? payload
    : payload === undefined
    ? new Uint8Array()
    : encodePayload(payload, format);
  await client.publishAsync(topics.request, Buffer.from(bytes), { qos: 1 });
  return await answer;
}

/** Resolves with the next message on `accepted` or `rejected`. */
export function nextAnswer(
  client: MqttClient,
  accepted: string,
  rejected: string,
  format: PayloadFormat = "json",
): Promise<TestAnswer> {
  return new Promise((resolve, reject) => {
    const onMessage = (topic: string, payload: Uint8Array) => {
      if (topic !== accepted && topic !== rejected) return;
      client.off("message", onMessage);
      client.off("close", onClose);
      resolve({
        accepted: topic === accepted,
        body: decodePayload(payload, format) as Record<string, unknown>,
      });
    };
    const onClose = () => {
      client.off("message", onMessage);
      reject(new Error("connection closed before the answer"));
    };
    client.on("message", onMessage);
    client.once("close", onClose);
  });
}

/** Resolves when the client's connection closes (call before causing it). */
export function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.once("close", () => resolve()));
}

/** An MQTT packet as mqtt.js parsed it (the fields the tests read). */
export interface ReceivedPacket {
  cmd: string;
  reasonCode?: number;
  granted?: (number | { qos: number })[];
  properties?: { reasonString?: string; userProperties?: Record<string, string | string[]> };
}

/** Resolves with the next packet of type `cmd` the client receives (call before causing it). */
export function nextPacket(client: MqttClient, cmd: string): Promise<ReceivedPacket> {
  return new Promise((resolve) => {
    const onPacket = (packet: ReceivedPacket) => {
      if (packet.cmd !== cmd) return;
      client.off("packetreceive", onPacket as never);
      resolve(packet);
    };
    client.on("packetreceive", onPacket as never);
  });
}
