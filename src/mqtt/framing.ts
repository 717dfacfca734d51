// SPDX-License-Identifier: Apache-2.0
/**
 * The framing guard between the TLS socket and MQTT.js: it follows packet
 * boundaries in the bytes the broker sends (type byte, remaining-length
 * varint, body skipped) and refuses a packet larger than the API can send as
 * soon as its fixed header arrives, before any parser buffers it. So memory
 * is bounded by the protocol, not by the sender: a 250 MB "answer" costs
 * one TLS record, not 250 MB.
 *
 * @module
 */
import { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";

/** AWS IoT Core's message size limit: no legitimate packet from the broker is larger. */
export const MAX_INCOMING_PACKET_BYTES = 128 * 1024;

/** MQTT control packet type 3. */
const PUBLISH = 3;

/** A packet the guard refused: too large, or a malformed remaining length. */
export class FramingError extends Error {
  /** Creates the error; the message says what arrived. */
  constructor(message: string) {
    super(message);
    this.name = "FramingError";
  }
}

/** Follows packet boundaries in a byte stream; throws {@linkcode FramingError} on a bad header. */
export class FrameGuard {
  readonly #limit: number;
  #phase: "type" | "length" | "body" = "type";
  #type = 0;
  #length = 0;
  #lengthBytes = 0;
  #remaining = 0;
  /** Complete PUBLISH packets received. */
  publishes = 0;
  /** PUBLISH packets whose header arrived (complete or not). */
  publishesStarted = 0;

  /** A guard refusing packets whose remaining length exceeds `limit` bytes. */
  constructor(limit: number = MAX_INCOMING_PACKET_BYTES) {
    this.#limit = limit;
  }

  /** True when the bytes so far end inside a packet (a close now cuts a packet). */
  get midPacket(): boolean {
    return this.#phase !== "type";
  }

  /** Advances over `chunk`; throws when a header announces a packet over the limit. */
  inspect(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#phase === "type") {
        this.#type = chunk[i++] >> 4;
        this.#phase = "length";
        this.#length = 0;
        this.#lengthBytes = 0;
      } else if (this.#phase === "length") {
        this.#readLengthByte(chunk[i++]);
      } else {
        const take = Math.min(this.#remaining, chunk.length - i);
        i += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#endPacket();
      }
    }
  }

  #readLengthByte(byte: number): void {
    this.#length += (byte & 0x7f) * 128 ** this.#lengthBytes;
    this.#lengthBytes++;
    if (byte & 0x80) {
      if (this.#lengthBytes === 4) {
        throw new FramingError(
          "The broker sent a packet whose remaining length has more than 4 bytes (malformed MQTT).",
        );
      }
      return;
    }
    if (this.#length > this.#limit) {
      throw new FramingError(
        `The broker sent a ${
          this.#type === PUBLISH ? "PUBLISH" : `type ${this.#type}`
        } packet of ${this.#length} bytes, more than the ${this.#limit} bytes AWS IoT allows; refused before reading it.`,
      );
    }
    if (this.#type === PUBLISH) this.publishesStarted++;
    this.#remaining = this.#length;
    this.#phase = "body";
    if (this.#remaining === 0) this.#endPacket();
  }

  #endPacket(): void {
    if (this.#type === PUBLISH) this.publishes++;
    this.#phase = "type";
  }
}

/**
 * The TLS socket as MQTT.js sees it: writes go straight through; every byte
 * read passes `guard` first, and a refused packet destroys the socket (with
 * the {@linkcode FramingError}) before MQTT.js gets any of it.
 */
export function guardedStream(socket: TLSSocket, guard: FrameGuard): Duplex {
  const stream: Duplex = new Duplex({
    read() {
      socket.resume();
    },
    // Done once the socket took the bytes (or drained): its own write callbacks
    // may wait for the TLS handshake, which would stall the packets behind.
    writev(chunks, callback) {
      const bytes = Buffer.concat(chunks.map(({ chunk }) => chunk as Buffer));
      if (socket.write(bytes)) callback();
      else socket.once("drain", () => callback());
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  socket.on("data", (chunk: Buffer) => {
    try {
      guard.inspect(chunk);
    } catch (error) {
      socket.destroy(error as Error);
      return;
    }
    if (!stream.push(chunk)) socket.pause();
  });
  socket.on("end", () => stream.push(null));
  socket.on("close", () => stream.destroy());
  return stream;
}
