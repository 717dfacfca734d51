// SPDX-License-Identifier: Apache-2.0
/**
 * One MQTT session (3.1.1, or 5) over mutual TLS, built for the fewest round
 * trips AWS IoT allows: CONNECT goes out with the end of the TLS handshake;
 * nothing else goes out before CONNACK (AWS IoT closes a connection that
 * sends before it: "the client must wait for the CONNACK message"); at
 * CONNACK one SUBSCRIBE to every answer topic the run will need and the
 * first request's PUBLISH leave together, never waiting for SUBACK or
 * PUBACK. Later requests are one PUBLISH each.
 *
 * The packets are fleetprov's own (`packets.ts`); every byte read passes the
 * framing guard first (`framing.ts`). Over MQTT 5 a SUBACK, PUBACK or
 * DISCONNECT with a failure reason code fails the request it concerns with
 * that code and the broker's reason string (`reason_codes.ts`); over MQTT
 * 3.1.1 a hang-up right after CONNECT is told apart from a network failure
 * (kind "hangup").
 *
 * @module
 */
import tls from "node:tls";
import type { OperationTopics } from "../protocol/mod.ts";
import { closeError } from "./closes.ts";
import { FrameGuard } from "./framing.ts";
import {
  connectPacket,
  decodePacket,
  DISCONNECT_PACKET,
  type IncomingPacket,
  MalformedPacketError,
  PINGREQ,
  type ProtocolLevel,
  pubackPacket,
  publishPacket,
  subscribePacket,
} from "./packets.ts";
import { type ArnScope, scopeOfEndpoint } from "../policy/arn.ts";
import { disconnectHint, policyHint, receiveHint } from "./policy_hints.ts";
import { refusalError, returnCodeText } from "./reason_codes.ts";
import { SessionError } from "./session_error.ts";
import { type Answer, type Session, type SessionOptions, tlsOptions } from "./session_options.ts";
import { notMqtt, socketFailure } from "./socket_errors.ts";

export { type CloseDetail, SessionError, type SessionFailureKind } from "./session_error.ts";
export { type Answer, type Session, type SessionOptions, tlsOptions } from "./session_options.ts";

/** Opens a session: TCP (unless given), TLS 1.2+/1.3 with the client certificate, MQTT CONNECT. */
export function openSession(options: SessionOptions): Session {
  return new MqttSession(options);
}

/** A request waiting on its answer topics: the answer, or the SUBACK refusing a topic. */
interface Pending {
  answer(accepted: boolean, payload: Uint8Array): void;
  refused(error: SessionError): void;
}
type Ack = Extract<IncomingPacket, { cmd: "suback" | "puback" }>;

/** One session: the TLS socket, the packets in flight, and the requests waiting for answers. */
class MqttSession implements Session {
  readonly connected: Promise<void>;
  readonly #socket: tls.TLSSocket;
  readonly #level: ProtocolLevel;
  readonly #policyName: string;
  /** Partition and region of the endpoint, for the policy statements in refusals. */
  readonly #scope: ArnScope;
  readonly #subscriptions: readonly string[];
  /** The SUBSCRIBE is out and its SUBACK has not come. */
  #subscribePending = false;
  /** The topic of the request whose answer is awaited. */
  #pendingTopic: string | undefined;
  readonly #keepaliveSeconds: number;
  #failure: SessionError | undefined;
  readonly #waiters = new Set<(error: SessionError) => void>();
  /** Answer routing: the handler waiting on each answer topic. */
  readonly #answers = new Map<string, Pending>();
  /** What to do with the SUBACK or PUBACK of each packet id in flight. */
  readonly #acks = new Map<number, (packet: Ack) => void>();
  /** Topic filters the broker refused in its SUBACK, with the error naming each. */
  readonly #refusedFilters = new Map<string, SessionError>();
  /** PUBLISH packets written before CONNACK arrived, sent right after it. */
  #queued: Uint8Array[] = [];
  #nextId = 1;
  #connackSeen = false;
  /** Packet boundaries of what the broker sends; refuses oversized packets. */
  readonly #guard: FrameGuard;
  /** PUBLISH headers seen when the pending request was written (undefined: none pending). */
  #publishesAtRequest: number | undefined;
  /** The TLS handshake completed (so a close before CONNACK is the broker's doing). */
  #tlsUp = false;
  /** The broker closed its side (FIN) rather than the connection failing. */
  #ended = false;
  /** MQTT 5: a refusing CONNACK or a DISCONNECT, with its reason code and string. */
  #refusal: { packet: "CONNACK" | "DISCONNECT"; code: number; reasonString?: string } | undefined;
  #closing = false;
  readonly #timers: ReturnType<typeof setTimeout>[] = [];
  #lastSent = performance.now();
  /** Some byte arrived from the broker. */
  #heardFrom = false;

  constructor(options: SessionOptions) {
    this.#level = options.mqttVersion ?? 4;
    this.#policyName = options.policyName ?? "the certificate's policy";
    this.#scope = scopeOfEndpoint(options.endpoint) ?? {};
    this.#subscriptions = options.subscriptions ?? [];
    this.#keepaliveSeconds = options.keepaliveSeconds ?? 60;
    this.#guard = new FrameGuard(undefined, (bytes) => this.#packet(bytes));
    let resolveConnected!: () => void;
    this.connected = new Promise<void>((resolve, reject) => {
      resolveConnected = resolve;
      this.#waiters.add(reject);
    });
    this.connected.catch(() => {});
    this.#onConnack = resolveConnected;
    this.#socket = tls.connect(tlsOptions(options));
    this.#socket.setNoDelay(true);
    this.#socket.on("error", (error: NodeJS.ErrnoException) => this.#fail(socketFailure(error)));
    this.#socket.once("secureConnect", () => (this.#tlsUp = true));
    this.#socket.once("end", () => (this.#ended = true));
    this.#socket.on("data", (chunk: Buffer) => {
      try {
        if (!this.#heardFrom && chunk.length > 0) this.#firstBytes(chunk);
        this.#guard.inspect(chunk);
      } catch (error) {
        this.#socket.destroy(error as Error);
      }
    });
    this.#socket.on("close", () => this.#fail(this.#closedError()));
    // Written now, sent by TLS as soon as its handshake is done.
    this.#write(
      connectPacket(options.clientId, {
        keepaliveSeconds: this.#keepaliveSeconds,
        level: this.#level,
      }),
    );
    this.#timers.push(setTimeout(() => {
      if (this.#connackSeen) return;
      this.#socket.destroy(
        new SessionError(
          `No CONNACK within ${options.connectTimeoutMs} ms.`,
          "network",
          "ETIMEDOUT",
        ),
      );
    }, options.connectTimeoutMs));
  }

  readonly #onConnack: () => void;

  /** The first bytes from the broker must begin a CONNACK. */
  #firstBytes(chunk: Buffer): void {
    this.#heardFrom = true;
    const error = notMqtt(chunk);
    if (error) throw error;
  }

  #write(bytes: Uint8Array): void {
    this.#lastSent = performance.now();
    this.#socket.write(bytes);
  }

  /** One complete packet from the broker. */
  #packet(bytes: Uint8Array): void {
    if (this.#failure || this.#closing) return;
    const packet = decodePacket(bytes, this.#level);
    if (!this.#connackSeen && packet.cmd !== "connack") {
      throw new MalformedPacketError(`The broker sent ${packet.cmd.toUpperCase()} before CONNACK.`);
    }
    switch (packet.cmd) {
      case "connack":
        return this.#connack(packet);
      case "suback":
      case "puback":
        return this.#acks.get(packet.id)?.(packet);
      case "publish":
        if (packet.id !== undefined) this.#write(pubackPacket(packet.id));
        return this.#answers.get(packet.topic)?.answer(
          packet.topic.endsWith("/accepted"),
          packet.payload,
        );
      case "disconnect":
        if (packet.code >= 0x80) this.#refusal = { packet: "DISCONNECT", ...packet };
        return;
      case "pingresp":
        return;
    }
  }

  #connack(packet: { code: number; reasonString?: string }): void {
    if (this.#connackSeen) throw new MalformedPacketError("The broker sent a second CONNACK.");
    if (packet.code !== 0) {
      if (this.#level === 5) this.#refusal = { packet: "CONNACK", ...packet };
      this.#fail(this.#connackError(packet.code));
      this.#socket.destroy();
      return;
    }
    this.#connackSeen = true;
    const burst: Uint8Array[] = [];
    if (this.#subscriptions.length > 0) {
      const id = this.#nextId++;
      this.#acks.set(id, (ack) => this.#subacked(ack as Extract<Ack, { cmd: "suback" }>));
      burst.push(subscribePacket(id, this.#subscriptions, this.#level));
      this.#subscribePending = true;
    }
    burst.push(...this.#queued);
    this.#queued = [];
    if (burst.length > 0) this.#write(Buffer.concat(burst));
    this.#keepAlive();
    this.#onConnack();
  }

  /** PINGREQ whenever nothing else was sent for half the keepalive (seconds). */
  #keepAlive(): void {
    const halfMs = 500 * this.#keepaliveSeconds;
    const timer = setInterval(() => {
      if (performance.now() - this.#lastSent >= halfMs) this.#write(PINGREQ);
    }, halfMs);
    timer.unref?.();
    this.#timers.push(timer);
  }

  /** A refusing CONNACK: its MQTT 5 reason code and string, or the MQTT 3.1.1 return code. */
  #connackError(code: number): SessionError {
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
      `The broker refused the connection: ${returnCodeText(code)}.`,
      "refused",
      String(code),
    );
  }

  /** The SUBACK of the session's SUBSCRIBE: each refused filter fails the requests on it. */
  #subacked(ack: Extract<Ack, { cmd: "suback" }>): void {
    this.#subscribePending = false;
    ack.codes.forEach((code, i) => {
      const filter = this.#subscriptions[i];
      if (code < 0x80 || filter === undefined) return;
      const error = refusalError({
        packet: "SUBACK",
        code,
        topic: filter,
        reasonString: ack.reasonString,
        hint: policyHint(this.#policyName, code, {
          action: "iot:Subscribe",
          name: filter,
          scope: this.#scope,
        }),
      });
      this.#refusedFilters.set(filter, error);
      this.#answers.get(filter)?.refused(error);
    });
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
      const refused = this.#refusedFilters.get(topics.accepted) ??
        this.#refusedFilters.get(topics.rejected);
      if (this.#failure || refused) return reject(this.#failure ?? refused);
      const id = this.#nextId++;
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.#publishesAtRequest = undefined;
        this.#pendingTopic = undefined;
        this.#waiters.delete(onFailure);
        this.#answers.delete(topics.accepted);
        this.#answers.delete(topics.rejected);
        this.#acks.delete(id);
        settle();
      };
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(
              answerTimeout(topics, {
                timeoutMs: options.timeoutMs,
                hint: receiveHint(this.#policyName, topics.accepted, this.#scope),
              }),
            )
          ),
        options.timeoutMs,
      );
      const onFailure = (error: SessionError) => finish(() => reject(error));
      this.#waiters.add(onFailure);
      const pending: Pending = {
        answer: (accepted, body) => finish(() => resolve({ accepted, payload: body })),
        refused: onFailure,
      };
      this.#answers.set(topics.accepted, pending);
      this.#answers.set(topics.rejected, pending);
      this.#acks.set(id, (ack) => {
        const error = this.#pubackError(ack, topics);
        if (error) finish(() => reject(error));
      });
      this.#publishesAtRequest = this.#guard.publishesStarted;
      this.#pendingTopic = topics.request;
      const publish = publishPacket(id, { topic: topics.request, payload }, this.#level);
      if (this.#connackSeen) this.#write(publish);
      else this.#queued.push(publish);
    });
  }

  close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    if (this.#socket.destroyed) return Promise.resolve();
    this.#closing = true;
    if (this.#connackSeen && !this.#failure) {
      // DISCONNECT, TLS close_notify and our FIN are handed to the kernel,
      // which delivers them; the broker's FIN, a round trip later, is not
      // waited for.
      this.#socket.end(DISCONNECT_PACKET, () => this.#socket.destroy());
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.#socket.once("close", () => resolve());
      this.#socket.destroy();
    });
  }

  /** MQTT 5: a PUBACK with a failure reason code, as an error naming the request topic. */
  #pubackError(ack: Ack, topics: OperationTopics): SessionError | undefined {
    if (ack.cmd !== "puback" || ack.code < 0x80) return undefined;
    return refusalError({
      packet: "PUBACK",
      code: ack.code,
      topic: topics.request,
      reasonString: ack.reasonString,
      hint: policyHint(this.#policyName, ack.code, {
        action: "iot:Publish",
        name: topics.request,
        scope: this.#scope,
      }),
    });
  }

  #fail(error: SessionError): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const timer of this.#timers) clearTimeout(timer);
    for (const waiter of this.#waiters) waiter(error);
    this.#waiters.clear();
  }

  #closedError(): SessionError {
    if (this.#refusal?.packet === "DISCONNECT") {
      const sent = {
        subscribe: this.#subscribePending ? this.#subscriptions : undefined,
        publish: this.#pendingTopic,
      };
      const hint = disconnectHint(this.#policyName, this.#refusal.code, sent, this.#scope);
      const error = refusalError({ ...this.#refusal, hint });
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

function answerTimeout(
  topics: OperationTopics,
  options: { timeoutMs: number; hint: string },
): SessionError {
  return new SessionError(
    `No answer on ${topics.accepted} within ${options.timeoutMs} ms (${options.hint}).`,
    "network",
    NO_ANSWER,
  );
}
