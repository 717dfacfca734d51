// SPDX-License-Identifier: Apache-2.0
/**
 * The framing guard between the TLS socket and the MQTT session: it follows
 * packet boundaries in the bytes the broker sends (type byte, remaining-length
 * varint, body) and refuses a packet larger than the API can send as soon as
 * its fixed header arrives, before any of it is buffered. So memory is
 * bounded by the protocol, not by the sender: a 250 MB "answer" costs one TLS
 * record, not 250 MB. With a packet callback it also hands each complete
 * packet to the session, copied once into a buffer of its announced size.
 *
 * @module
 */

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
  readonly #onPacket: ((packet: Uint8Array) => void) | undefined;
  #phase: "type" | "length" | "body" = "type";
  #type = 0;
  #length = 0;
  #lengthBytes = 0;
  #remaining = 0;
  /** The fixed header so far (type byte and length bytes), while assembling. */
  #header: number[] = [];
  /** The packet being assembled, and how much of it is filled. */
  #packet: Uint8Array | undefined;
  #filled = 0;
  /** Complete PUBLISH packets received. */
  publishes = 0;
  /** PUBLISH packets whose header arrived (complete or not). */
  publishesStarted = 0;

  /**
   * A guard refusing packets whose remaining length exceeds `limit` bytes;
   * with `onPacket`, each complete packet (fixed header included) is passed to it.
   */
  constructor(
    limit: number = MAX_INCOMING_PACKET_BYTES,
    onPacket?: (packet: Uint8Array) => void,
  ) {
    this.#limit = limit;
    this.#onPacket = onPacket;
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
        this.#type = chunk[i] >> 4;
        this.#header = [chunk[i++]];
        this.#phase = "length";
        this.#length = 0;
        this.#lengthBytes = 0;
      } else if (this.#phase === "length") {
        this.#header.push(chunk[i]);
        this.#readLengthByte(chunk[i++]);
      } else {
        const take = Math.min(this.#remaining, chunk.length - i);
        this.#packet?.set(chunk.subarray(i, i + take), this.#filled);
        this.#filled += take;
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
    if (this.#onPacket) {
      this.#packet = new Uint8Array(this.#header.length + this.#length);
      this.#packet.set(this.#header);
      this.#filled = this.#header.length;
    }
    this.#remaining = this.#length;
    this.#phase = "body";
    if (this.#remaining === 0) this.#endPacket();
  }

  #endPacket(): void {
    if (this.#type === PUBLISH) this.publishes++;
    this.#phase = "type";
    const packet = this.#packet;
    this.#packet = undefined;
    if (packet) this.#onPacket!(packet);
  }
}
