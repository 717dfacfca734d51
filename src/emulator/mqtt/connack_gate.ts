// SPDX-License-Identifier: Apache-2.0
/**
 * AWS IoT's rule that a client waits for CONNACK: "Before sending additional
 * control packets or a disconnect request, the client must wait for the
 * CONNACK message to be received on their device from the AWS IoT message
 * broker" (AWS IoT differences from MQTT specifications), and AWS IoT closes
 * a connection whose SUBSCRIBE came before its CONNACK (yosssi/gmq#9).
 *
 * The gate sits between a client's TLS socket and aedes: it passes the
 * CONNECT, holds whatever arrives after it until the broker has written its
 * CONNACK, and then either lets the connection flow or, when something
 * arrived early, never shows those packets to the broker and closes the
 * connection: over MQTT 3.1.1 by hanging up (the protocol has no way to say
 * why), over MQTT 5 with DISCONNECT 0x82 Protocol Error and a reason string.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import type tls from "node:tls";
import mqttPacket from "mqtt-packet";

/** MQTT 5 reason code 0x82 Protocol Error. */
const PROTOCOL_ERROR = 0x82;

/** What the gate knows of the first packet and of what followed it. */
type GateState =
  | { phase: "connect"; header: number[]; rest: number }
  | { phase: "held"; held: Buffer[] }
  | { phase: "open" };

/** The stream aedes reads and writes for one client. */
export class ConnackGate extends Duplex {
  readonly #socket: tls.TLSSocket;
  #state: GateState = { phase: "connect", header: [], rest: -1 };
  /** The CONNECT's protocol level (4: MQTT 3.1.1, 5), once read. */
  #level = 4;
  #connectBytes: number[] = [];

  /** Wraps the TLS socket of one client. */
  constructor(socket: tls.TLSSocket) {
    super();
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => this.#incoming(chunk));
    socket.on("end", () => this.push(null));
    socket.on("close", () => this.destroy());
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _encoding: string, callback: (error?: Error | null) => void) {
    if (this.#socket.write(chunk)) callback();
    else this.#socket.once("drain", () => callback());
  }

  override _final(callback: () => void): void {
    this.#socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy(error ?? undefined);
    callback(error);
  }

  /** The TLS socket (for the peer certificate and address). */
  get socket(): tls.TLSSocket {
    return this.#socket;
  }

  /**
   * The broker wrote its CONNACK: what arrived after CONNECT flows on from
   * now, or, when packets came before the CONNACK, the connection is closed
   * as AWS IoT does and the reason is returned.
   */
  connackSent(): string | undefined {
    const state = this.#state;
    this.#state = { phase: "open" };
    if (state.phase !== "held" || state.held.length === 0) return undefined;
    const bytes = state.held.reduce((sum, chunk) => sum + chunk.length, 0);
    const reason =
      `the client sent ${bytes} bytes of packets after CONNECT before its CONNACK; AWS IoT requires it to wait for CONNACK`;
    if (this.#level === 5) {
      this.#socket.end(
        mqttPacket.generate({
          cmd: "disconnect",
          reasonCode: PROTOCOL_ERROR,
          properties: { reasonString: reason },
        }, { protocolVersion: 5 }),
      );
    } else {
      this.#socket.destroy();
    }
    return reason;
  }

  /** The MQTT protocol level of the CONNECT (4 for MQTT 3.1.1, 5). */
  get level(): number {
    return this.#level;
  }

  #incoming(chunk: Buffer): void {
    const state = this.#state;
    if (state.phase === "open") return this.#pass(chunk);
    if (state.phase === "held") {
      state.held.push(chunk);
      return;
    }
    let i = 0;
    while (state.rest < 0 && i < chunk.length) {
      const byte = chunk[i++];
      state.header.push(byte);
      if (state.header.length === 1) {
        if (byte >> 4 !== 1) {
          // Not a CONNECT: aedes refuses it; the gate stays out of the way.
          this.#state = { phase: "open" };
          return this.#pass(chunk);
        }
      } else if (!(byte & 0x80) || state.header.length === 5) {
        state.rest = remainingLength(state.header);
      }
    }
    if (state.rest < 0) return this.#pass(chunk);
    const take = Math.min(state.rest, chunk.length - i);
    this.#connectBytes.push(...chunk.subarray(i, i + Math.min(take, 7)));
    state.rest -= take;
    this.#pass(chunk.subarray(0, i + take));
    if (state.rest > 0) return;
    // Protocol name (2 + 4 bytes), then the level.
    this.#level = this.#connectBytes[6] ?? 4;
    this.#state = { phase: "held", held: [] };
    if (i + take < chunk.length) this.#state.held.push(chunk.subarray(i + take));
  }

  #pass(chunk: Buffer): void {
    if (chunk.length > 0 && !this.push(chunk)) this.#socket.pause();
  }
}

/** The remaining length a fixed header (type byte, 1-4 length bytes) announces. */
function remainingLength(header: number[]): number {
  let length = 0;
  for (let i = 1; i < header.length; i++) length += (header[i] & 0x7f) * 128 ** (i - 1);
  return length;
}
