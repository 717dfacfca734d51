// SPDX-License-Identifier: Apache-2.0
/**
 * The emulator's events, so tests can await "request received" or "answer
 * dropped" instead of sleeping.
 *
 * @module
 */
import { EventEmitter } from "node:events";
import type { Operation, PayloadFormat } from "../protocol/mod.ts";

/** Every event and its payload. */
export interface EmulatorEventMap {
  /** A CONNECT was accepted or refused. */
  connect: {
    clientId: string;
    certificateId?: string;
    accepted: boolean;
    reason?: string;
    /** Protocol level of the CONNECT: 4 (MQTT 3.1.1) or 5. */
    mqttVersion?: number;
  };
  /** A connected client went away. */
  disconnect: { clientId: string };
  /** A provisioning request arrived. */
  request: { operation: Operation; format: PayloadFormat; clientId: string };
  /** An answer was sent to the asking client. */
  answer: {
    operation: Operation;
    format: PayloadFormat;
    clientId: string;
    accepted: boolean;
    topic: string;
    /** A rejection's status and error code. */
    rejection?: { statusCode: number; errorCode: string };
  };
  /** An answer was not sent, e.g. because the client had not subscribed to its topic. */
  dropped: {
    operation: Operation;
    format: PayloadFormat;
    clientId: string;
    topic: string;
    reason: string;
  };
  /** A fault rule fired for a request or CONNECT. */
  fault: { operation: Operation | "connect"; clientId: string; faults: string[] };
  /**
   * A policy denied a publish or subscribe: over MQTT 3.1.1 the client was
   * disconnected; over MQTT 5 it got reason code 0x87 on the SUBACK or PUBACK.
   * Or it denied iot:Receive on an answer: the answer was dropped, silently.
   */
  violation: { clientId: string; action: string; name: string; disconnected: boolean };
  /**
   * The client sent packets after CONNECT before its CONNACK, which AWS IoT
   * forbids: they were dropped and the connection closed (MQTT 5: DISCONNECT
   * 0x82 Protocol Error first).
   */
  protocol: { clientId: string; reason: string; mqttVersion: number };
}

/** Name of an emulator event. */
export type EmulatorEventName = keyof EmulatorEventMap;

/** Typed event emitter with promise-returning {@linkcode EmulatorEvents.waitFor}. */
export class EmulatorEvents {
  readonly #emitter = new EventEmitter();

  constructor() {
    this.#emitter.setMaxListeners(0);
  }

  /** Subscribes to an event; returns a function that unsubscribes. */
  on<K extends EmulatorEventName>(
    event: K,
    listener: (payload: EmulatorEventMap[K]) => void,
  ): () => void {
    this.#emitter.on(event, listener);
    return () => this.#emitter.off(event, listener);
  }

  /** Emits an event (emulator internal). */
  emit<K extends EmulatorEventName>(event: K, payload: EmulatorEventMap[K]): void {
    this.#emitter.emit(event, payload);
  }

  /**
   * Resolves with the next `event` whose payload satisfies `predicate`.
   * Call it before triggering the action you wait for.
   */
  waitFor<K extends EmulatorEventName>(
    event: K,
    predicate: (payload: EmulatorEventMap[K]) => boolean = () => true,
  ): Promise<EmulatorEventMap[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (payload) => {
        if (!predicate(payload)) return;
        off();
        resolve(payload);
      });
    });
  }
}
