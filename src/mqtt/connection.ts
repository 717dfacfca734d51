// SPDX-License-Identifier: Apache-2.0
/**
 * One MQTT session (3.1.1, or 5) over mutual TLS, built for the fewest round
 * trips: the SUBSCRIBE for an operation's answers and its request PUBLISH are
 * written right behind CONNECT (before CONNACK) and never wait for SUBACK or
 * PUBACK. MQTT.js owns the session (CONNECT/CONNACK, keepalive, parsing,
 * PUBACK of answers); the request packets come from mqtt-packet, the codec
 * MQTT.js uses. Over MQTT 5 a SUBACK, PUBACK or DISCONNECT with a failure
 * reason code fails the request with that code and the broker's reason string
 * (`reason_codes.ts`); over MQTT 3.1.1 a hang-up right after CONNECT is told
 * apart from a network failure (kind "hangup").
 *
 * @module
 */
import { MqttClient } from "mqtt";
import mqttPacket from "mqtt-packet";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import type { OperationTopics } from "../protocol/mod.ts";
import { untrusted } from "../text.ts";
import { closeError } from "./closes.ts";
import { FrameGuard, FramingError, guardedStream } from "./framing.ts";
import { policyHint, refusalError } from "./reason_codes.ts";
import { SessionError } from "./session_error.ts";
import { classifySocketError } from "./socket_errors.ts";

export { type CloseDetail, SessionError, type SessionFailureKind } from "./session_error.ts";

/** How to reach and authenticate to the broker. */
export interface SessionOptions {
  /** Host name; the server certificate must match it. */
  endpoint: string;
  /** The endpoint's IP address when already resolved (saves a DNS lookup). */
  address?: string;
  port: number;
  clientId: string;
  /** Client certificate, PEM. */
  cert: string;
  /** Client private key, PEM (absent when the key lives in a PKCS#11 token). */
  key?: string;
  /** A ready TLS context (certificate, key, CAs), e.g. one whose key lives in a secure element. */
  secureContext?: tls.SecureContext;
  /** Trusted root CAs, PEM; undefined uses the system trust store. */
  ca?: string;
  /** ALPN protocols to offer; fleetprov offers `x-amzn-mqtt-ca` on port 443. */
  alpnProtocols?: string[];
  /** An already-open transport (e.g. an HTTP CONNECT tunnel) to run TLS over. */
  socket?: Duplex;
  /** How long to wait for CONNACK, milliseconds. */
  connectTimeoutMs: number;
  /** MQTT keepalive, seconds. */
  keepaliveSeconds?: number;
  /** MQTT protocol level: 4 (MQTT 3.1.1, default) or 5. */
  mqttVersion?: 4 | 5;
  /** Whose policy a refused subscribe or publish points at, e.g. "the claim policy". */
  policyName?: string;
}

/** An answer on one of an operation's response topics. */
export interface Answer {
  accepted: boolean;
  payload: Uint8Array;
}

/** A live session. */
export interface Session {
  /** Resolves on CONNACK; rejects with a {@linkcode SessionError}. */
  readonly connected: Promise<void>;
  /** The broker's IP address once connected, to reuse without another DNS lookup. */
  remoteAddress(): string | undefined;
  /**
   * Subscribes to the operation's answers and publishes the request, pipelined,
   * then resolves with the first answer. Rejects on timeout or session failure.
   */
  request(
    topics: OperationTopics,
    payload: Uint8Array,
    options: { timeoutMs: number },
  ): Promise<Answer>;
  /** Sends DISCONNECT and closes the transport. */
  close(): Promise<void>;
}

/** Opens a session: TCP, TLS 1.2+/1.3 with the client certificate, MQTT CONNECT. */
export function openSession(options: SessionOptions): Session {
  return new MqttSession(options);
}

/** The TLS options of a session: the client certificate, the trust, the server name, ALPN. */
export function tlsOptions(options: SessionOptions): tls.ConnectionOptions {
  return {
    host: options.address ?? options.endpoint,
    servername: isIpAddress(options.endpoint) ? undefined : options.endpoint,
    port: options.port,
    socket: options.socket,
    cert: options.cert,
    key: options.key,
    secureContext: options.secureContext,
    ca: options.ca,
    ALPNProtocols: options.alpnProtocols,
    minVersion: "TLSv1.2",
    rejectUnauthorized: true,
  };
}

/**
 * The packets of one request, written in one go right behind CONNECT: the
 * SUBSCRIBE to both answer topics, then the PUBLISH of the request. Neither
 * waits for CONNACK, SUBACK or PUBACK.
 */
export function pipelinedRequest(
  topics: OperationTopics,
  payload: Uint8Array,
  messageIds: { subscribe: number; publish: number; mqttVersion?: 4 | 5 },
): Buffer {
  const options = { protocolVersion: messageIds.mqttVersion ?? 4 };
  const subscribe = mqttPacket.generate({
    cmd: "subscribe",
    messageId: messageIds.subscribe,
    subscriptions: [{ topic: topics.accepted, qos: 1 }, { topic: topics.rejected, qos: 1 }],
  }, options);
  const publish = mqttPacket.generate({
    cmd: "publish",
    messageId: messageIds.publish,
    qos: 1,
    dup: false,
    retain: false,
    topic: topics.request,
    payload: Buffer.from(payload),
  }, options);
  return Buffer.concat([subscribe, publish]);
}

type AnswerHandler = (accepted: boolean, payload: Uint8Array) => void;

/** The fields of CONNACK, SUBACK, PUBACK and DISCONNECT packets the session reads. */
interface AckPacket {
  cmd: string;
  messageId?: number;
  returnCode?: number;
  reasonCode?: number;
  granted?: (number | { qos: number })[];
  properties?: { reasonString?: string };
}

/** One session: the TLS socket, the MQTT.js client on it, and the requests waiting for answers. */
class MqttSession implements Session {
  readonly connected: Promise<void>;
  readonly #socket: tls.TLSSocket;
  /** The guarded socket MQTT.js reads and writes; our own packets go through it too, in order. */
  readonly #stream: Duplex;
  readonly #client: MqttClient;
  #failure: SessionError | undefined;
  readonly #waiters = new Set<(error: SessionError) => void>();
  /** Answer routing: the handler waiting on each answer topic. */
  readonly #answers = new Map<string, AnswerHandler>();
  #nextMessageId = 1;
  /**
   * Set as soon as an accepting CONNACK is parsed. MQTT.js emits "connect" only
   * later (after its outgoing store drains), so a broker closing right after
   * CONNACK (e.g. a policy refusing the pipelined SUBSCRIBE) would otherwise be
   * reported as "closed before CONNACK" and never count as the broker closing.
   */
  #connackSeen = false;
  /** Packet boundaries of what the broker sends; refuses oversized packets. */
  readonly #guard = new FrameGuard();
  /** PUBLISH headers seen when the pending request was written (undefined: none pending). */
  #publishesAtRequest: number | undefined;
  readonly #version: 4 | 5;
  readonly #policyName: string;
  /** The TLS handshake completed (so a close before CONNACK is the broker's doing). */
  #tlsUp = false;
  /** The broker closed its side (FIN) rather than the connection failing. */
  #ended = false;
  /** MQTT 5: a refusing CONNACK or a DISCONNECT, with its reason code and string. */
  #refusal: { packet: "CONNACK" | "DISCONNECT"; code: number; reasonString?: string } | undefined;
  /** MQTT 5: what to do with the SUBACK or PUBACK of each pending request packet. */
  readonly #acks = new Map<number, (packet: AckPacket) => void>();

  constructor(options: SessionOptions) {
    this.#version = options.mqttVersion ?? 4;
    this.#policyName = options.policyName ?? "the certificate's policy";
    this.#socket = tls.connect(tlsOptions(options));
    this.#socket.setNoDelay(true);
    this.#socket.on("error", (error: NodeJS.ErrnoException) =>
      this.#fail(
        error instanceof FramingError
          ? new SessionError(error.message, "malformed", "EMSGSIZE")
          : classifySocketError(error),
      ));
    this.#socket.once("secureConnect", () => (this.#tlsUp = true));
    this.#socket.once("end", () => (this.#ended = true));
    const stream = guardedStream(this.#socket, this.#guard);
    this.#stream = stream;
    this.#client = new MqttClient(() => stream, {
      clientId: options.clientId,
      protocolVersion: this.#version,
      clean: true,
      keepalive: options.keepaliveSeconds ?? 60,
      reconnectPeriod: 0,
      connectTimeout: options.connectTimeoutMs,
      manualConnect: true,
      resubscribe: false,
    });
    // Errors reach us through the socket and CONNACK handlers; MQTT.js re-emits them.
    this.#client.on("error", (error: Error & { code?: string | number }) => {
      this.#fail(
        typeof error.code === "number"
          ? this.#connackError(error.code, error.message)
          : classifySocketError(error as NodeJS.ErrnoException),
      );
    });
    this.connected = new Promise<void>((resolve, reject) => {
      this.#client.once("connect", () => resolve());
      this.#waiters.add(reject);
    });
    this.connected.catch(() => {});
    this.#client.on("packetreceive", (packet) => this.#received(packet as AckPacket));
    this.#socket.on("close", () => this.#fail(this.#closedError()));
    this.#client.on("message", (topic: string, payload: Uint8Array) => {
      this.#answers.get(topic)?.(topic.endsWith("/accepted"), payload);
    });
    this.#client.connect();
  }

  /** Notes CONNACK, DISCONNECT (MQTT 5) and routes SUBACK/PUBACK to their request. */
  #received(packet: AckPacket): void {
    const code = packet.reasonCode ?? packet.returnCode ?? 0;
    if (packet.cmd === "connack") {
      if (code === 0) this.#connackSeen = true;
      else if (this.#version === 5) {
        this.#refusal = { packet: "CONNACK", code, reasonString: packet.properties?.reasonString };
      }
    } else if (packet.cmd === "disconnect" && code >= 0x80) {
      this.#refusal = { packet: "DISCONNECT", code, reasonString: packet.properties?.reasonString };
    } else if (packet.messageId !== undefined) {
      this.#acks.get(packet.messageId)?.(packet);
    }
  }

  /** A refusing CONNACK: its MQTT 5 reason code and string, or the MQTT 3.1.1 return code. */
  #connackError(code: number, message: string): SessionError {
    const refusal = this.#refusal;
    if (refusal?.packet === "CONNACK") {
      const error = refusalError(refusal);
      return new SessionError(
        `The broker refused the connection: ${error.message}`,
        "refused",
        error.code,
      );
    }
    return new SessionError(
      `The broker refused the connection: ${untrusted(message)}.`,
      "refused",
      String(code),
    );
  }

  remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  request(
    topics: OperationTopics,
    payload: Uint8Array,
    options: { timeoutMs: number },
  ): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      const subscribe = this.#nextMessageId++;
      const publish = this.#nextMessageId++;
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.#publishesAtRequest = undefined;
        this.#waiters.delete(onFailure);
        this.#answers.delete(topics.accepted);
        this.#answers.delete(topics.rejected);
        this.#acks.delete(subscribe);
        this.#acks.delete(publish);
        settle();
      };
      const timer = setTimeout(
        () => finish(() => reject(answerTimeout(topics, options.timeoutMs))),
        options.timeoutMs,
      );
      const onFailure = (error: SessionError) => finish(() => reject(error));
      this.#waiters.add(onFailure);
      const onAnswer = (accepted: boolean, body: Uint8Array) =>
        finish(() => resolve({ accepted, payload: body }));
      this.#answers.set(topics.accepted, onAnswer);
      this.#answers.set(topics.rejected, onAnswer);
      const refused = (error: SessionError | undefined) => {
        if (error) finish(() => reject(error));
      };
      this.#acks.set(subscribe, (ack) => refused(this.#subackError(ack, topics)));
      this.#acks.set(publish, (ack) => refused(this.#pubackError(ack, topics)));
      this.#publishesAtRequest = this.#guard.publishesStarted;
      this.#stream.write(
        pipelinedRequest(topics, payload, { subscribe, publish, mqttVersion: this.#version }),
      );
    });
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.#socket.destroyed) return resolve();
      if (this.#connackSeen && !this.#failure) {
        // DISCONNECT and our FIN go out now; MQTT.js calls back only once the
        // broker's FIN arrives, a round trip later that nothing here needs.
        // Do not wait for it: the socket finishes closing in the background.
        this.#client.end(false, {}, () => this.#socket.destroy());
        resolve();
      } else {
        this.#socket.once("close", () => resolve());
        this.#socket.destroy();
      }
    });
  }

  /** MQTT 5: the SUBACK's first failure reason code, as an error naming the topic filter. */
  #subackError(ack: AckPacket, topics: OperationTopics): SessionError | undefined {
    const codes = (ack.granted ?? []).map((g) => typeof g === "number" ? g : g.qos);
    const failed = codes.findIndex((code) => code >= 0x80);
    if (failed < 0) return undefined;
    const code = codes[failed];
    return refusalError({
      packet: "SUBACK",
      code,
      topic: [topics.accepted, topics.rejected][failed],
      reasonString: ack.properties?.reasonString,
      hint: policyHint(this.#policyName, code, "iot:Subscribe"),
    });
  }

  /** MQTT 5: a PUBACK with a failure reason code, as an error naming the request topic. */
  #pubackError(ack: AckPacket, topics: OperationTopics): SessionError | undefined {
    const code = ack.reasonCode ?? 0;
    if (code < 0x80) return undefined;
    return refusalError({
      packet: "PUBACK",
      code,
      topic: topics.request,
      reasonString: ack.properties?.reasonString,
      hint: policyHint(this.#policyName, code, "iot:Publish"),
    });
  }

  #fail(error: SessionError): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const waiter of this.#waiters) waiter(error);
    this.#waiters.clear();
  }

  #closedError(): SessionError {
    if (this.#refusal?.packet === "DISCONNECT") {
      const error = refusalError(this.#refusal);
      return new SessionError(`The broker disconnected: ${error.message}`, error.kind, error.code);
    }
    const pending = this.#publishesAtRequest;
    return closeError({
      connackSeen: this.#connackSeen,
      hungUp: this.#tlsUp && this.#ended,
      requestPending: pending !== undefined,
      noAnswerBytes: pending === this.#guard.publishesStarted,
      midPacket: this.#guard.midPacket,
    });
  }
}

/** The code of a request whose answer did not come within the step timeout. */
export const NO_ANSWER = "ENOANSWER";

function answerTimeout(topics: OperationTopics, timeoutMs: number): SessionError {
  return new SessionError(
    `No answer on ${topics.accepted} within ${timeoutMs} ms.`,
    "network",
    NO_ANSWER,
  );
}

function isIpAddress(host: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.includes(":");
}
