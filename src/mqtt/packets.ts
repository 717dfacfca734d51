// SPDX-License-Identifier: Apache-2.0
/**
 * The MQTT 3.1.1 and MQTT 5 packets a provisioning device sends and reads,
 * and nothing else: CONNECT, SUBSCRIBE, PUBLISH at QoS 1, PUBACK, PINGREQ and
 * DISCONNECT out; CONNACK, SUBACK, PUBLISH, PUBACK, DISCONNECT and PINGRESP
 * in. A general MQTT client (MQTT.js with its streams, timers and transports)
 * cost the device more start-up time and memory than the whole rest of its
 * work; this codec is what the device actually needs.
 *
 * Everything read is hostile: {@linkcode decodePacket} takes one complete
 * packet (its size already bounded by the framing guard) and either returns
 * the fields the session uses or throws {@linkcode MalformedPacketError}
 * saying what is wrong; it never reads past the packet.
 *
 * @module
 */

/** MQTT protocol level: 4 is MQTT 3.1.1, 5 is MQTT 5. */
export type ProtocolLevel = 4 | 5;

/** A packet the broker sent that does not follow the protocol. */
export class MalformedPacketError extends Error {
  /** Creates the error; the message says what is wrong. */
  constructor(message: string) {
    super(message);
    this.name = "MalformedPacketError";
  }
}

/** What the session reads from the broker's packets. */
export type IncomingPacket =
  | { cmd: "connack"; code: number; reasonString?: string }
  | { cmd: "suback"; id: number; codes: number[]; reasonString?: string }
  | { cmd: "puback"; id: number; code: number; reasonString?: string }
  | { cmd: "publish"; topic: string; qos: number; id?: number; payload: Uint8Array }
  | { cmd: "disconnect"; code: number; reasonString?: string }
  | { cmd: "pingresp" };

import {
  DISCONNECT_CODES_5,
  PROPERTY_TYPES,
  PUBACK_CODES_5,
  REPEATABLE_PROPERTIES,
  SUBACK_CODES_3,
  SUBACK_CODES_5,
} from "./packet_rules.ts";

const CONNACK = 2;
const PUBLISH = 3;
const PUBACK = 4;
const SUBACK = 9;
const PINGRESP = 13;
const DISCONNECT = 14;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The remaining-length varint of `length`. */
function varint(length: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    bytes.push(byte);
  } while (length > 0);
  return bytes;
}

/** A UTF-8 string with its two-byte length. */
function utf8(text: string): Uint8Array {
  const bytes = encoder.encode(text);
  if (bytes.length > 0xffff) throw new RangeError(`An MQTT string of ${bytes.length} bytes.`);
  const out = new Uint8Array(2 + bytes.length);
  out[0] = bytes.length >> 8;
  out[1] = bytes.length & 0xff;
  out.set(bytes, 2);
  return out;
}

function uint16(value: number): Uint8Array {
  return new Uint8Array([value >> 8, value & 0xff]);
}

/** A packet: the fixed header's first byte, the remaining length, then `parts`. */
function packet(first: number, parts: Uint8Array[]): Uint8Array {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  const header = [first, ...varint(length)];
  const out = new Uint8Array(header.length + length);
  out.set(header);
  let offset = header.length;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** MQTT 5: an empty property list. */
const NO_PROPERTIES = new Uint8Array([0]);

/** CONNECT with a clean session, no user name, password or will. */
export function connectPacket(
  clientId: string,
  options: { keepaliveSeconds: number; level: ProtocolLevel },
): Uint8Array {
  const header = [
    utf8("MQTT"),
    new Uint8Array([options.level, 0x02]), // protocol level; flags: clean session / clean start
    uint16(options.keepaliveSeconds),
  ];
  if (options.level === 5) header.push(NO_PROPERTIES);
  return packet(0x10, [...header, utf8(clientId)]);
}

/** SUBSCRIBE to `filters` at QoS 1, in one packet. */
export function subscribePacket(
  id: number,
  filters: readonly string[],
  level: ProtocolLevel,
): Uint8Array {
  const parts = [uint16(id)];
  if (level === 5) parts.push(NO_PROPERTIES);
  for (const filter of filters) parts.push(utf8(filter), new Uint8Array([1]));
  return packet(0x82, parts);
}

/** PUBLISH at QoS 1 (not a duplicate, not retained). */
export function publishPacket(
  id: number,
  message: { topic: string; payload: Uint8Array },
  level: ProtocolLevel,
): Uint8Array {
  const parts = [utf8(message.topic), uint16(id)];
  if (level === 5) parts.push(NO_PROPERTIES);
  parts.push(message.payload);
  return packet(0x32, parts);
}

/** PUBACK of a QoS 1 PUBLISH (MQTT 5: success, said by leaving the reason code out). */
export function pubackPacket(id: number): Uint8Array {
  return packet(0x40, [uint16(id)]);
}

/** PINGREQ. */
export const PINGREQ: Uint8Array = new Uint8Array([0xc0, 0]);

/** DISCONNECT (MQTT 5: normal disconnection, said by an empty body). */
export const DISCONNECT_PACKET: Uint8Array = new Uint8Array([0xe0, 0]);

/** Reads one packet's body, field by field, never past its end. */
class BodyReader {
  #offset: number;
  readonly #bytes: Uint8Array;
  readonly #what: string;

  constructor(bytes: Uint8Array, offset: number, what: string) {
    this.#bytes = bytes;
    this.#offset = offset;
    this.#what = what;
  }

  get left(): number {
    return this.#bytes.length - this.#offset;
  }

  #take(count: number): Uint8Array {
    if (count > this.left) throw this.malformed("it ends in the middle of a field");
    const slice = this.#bytes.subarray(this.#offset, this.#offset + count);
    this.#offset += count;
    return slice;
  }

  byte(): number {
    return this.#take(1)[0];
  }

  uint16(): number {
    const [high, low] = this.#take(2);
    return (high << 8) | low;
  }

  varint(): number {
    let value = 0;
    for (let i = 0; i < 4; i++) {
      const byte = this.byte();
      value += (byte & 0x7f) * 128 ** i;
      if (byte & 0x80) continue;
      // MQTT 5 §1.5.5: the shortest encoding only (no trailing zero byte).
      if (i > 0 && byte === 0) {
        throw this.malformed("a variable byte integer is not in its shortest form");
      }
      return value;
    }
    throw this.malformed("a variable byte integer has more than 4 bytes");
  }

  utf8(): string {
    try {
      return decoder.decode(this.#take(this.uint16()));
    } catch (error) {
      if (error instanceof MalformedPacketError) throw error;
      throw this.malformed("a string is not valid UTF-8");
    }
  }

  rest(): Uint8Array {
    return this.#take(this.left);
  }

  skip(count: number): void {
    this.#take(count);
  }

  /** A code byte, refused unless `allowed` has it. */
  code(allowed: ReadonlySet<number>, what: string): number {
    const code = this.byte();
    if (!allowed.has(code)) {
      throw this.malformed(`${what} 0x${code.toString(16)} is not one it may carry`);
    }
    return code;
  }

  malformed(why: string): MalformedPacketError {
    return new MalformedPacketError(`The broker sent a malformed ${this.#what} packet: ${why}.`);
  }
}

/** MQTT 5 properties: skipped, except the reason string, which is returned. */
function readProperties(reader: BodyReader): { reasonString?: string } {
  const length = reader.varint();
  if (length > reader.left) throw reader.malformed("its properties run past its end");
  const end = reader.left - length;
  let reasonString: string | undefined;
  const seen = new Set<number>();
  while (reader.left > end) {
    // A variable byte integer, but every identifier of MQTT 5 is one byte (§2.2.2.2).
    const id = reader.byte();
    const type = PROPERTY_TYPES[id];
    if (type === undefined) throw reader.malformed(`unknown property 0x${id.toString(16)}`);
    if (seen.has(id) && !REPEATABLE_PROPERTIES.has(id)) {
      throw reader.malformed(`property 0x${id.toString(16)} appears more than once`);
    }
    seen.add(id);
    if (id === 0x1f) reasonString = reader.utf8();
    else if (typeof type === "number") reader.skip(type);
    else if (type === "varint") reader.varint();
    else if (type === "pair") {
      reader.skip(reader.uint16());
      reader.skip(reader.uint16());
    } else reader.skip(reader.uint16());
  }
  if (reader.left !== end) throw reader.malformed("a property runs past the property list");
  return reasonString === undefined ? {} : { reasonString };
}

/** MQTT 5 acknowledgements may end after the packet id: success, no properties. */
function ackTail(
  reader: BodyReader,
  level: ProtocolLevel,
): { code: number; reasonString?: string } {
  if (level !== 5 || reader.left === 0) return { code: 0 };
  const code = reader.code(PUBACK_CODES_5, "reason code");
  return { code, ...(reader.left > 0 ? readProperties(reader) : {}) };
}

/** Where the body of a whole packet starts (after its remaining-length varint). */
function bodyOffset(bytes: Uint8Array): number {
  let offset = 1;
  while (offset < 5 && offset < bytes.length && bytes[offset] & 0x80) offset++;
  return offset + 1;
}

/**
 * Decodes one complete packet from the broker (fixed header included) for
 * protocol `level`; throws {@linkcode MalformedPacketError} when it is not a
 * packet a broker may send a client, or does not hold together.
 */
export function decodePacket(bytes: Uint8Array, level: ProtocolLevel): IncomingPacket {
  const type = bytes[0] >> 4;
  const flags = bytes[0] & 0x0f;
  const name = PACKET_NAMES[type] ?? `type ${type}`;
  const reader = new BodyReader(bytes, bodyOffset(bytes), name);
  if (type !== PUBLISH && flags !== 0) throw reader.malformed(`reserved flags ${flags}`);
  let decoded: IncomingPacket;
  switch (type) {
    case CONNACK: {
      const acknowledge = reader.byte(); // bit 0: session present; bits 7-1 reserved
      if (acknowledge > 1) throw reader.malformed(`its flags ${acknowledge} set reserved bits`);
      decoded = {
        cmd: "connack",
        code: reader.byte(),
        ...(level === 5 ? readProperties(reader) : {}),
      };
      break;
    }
    case PUBLISH:
      decoded = decodePublish(reader, { flags, level });
      break;
    case PUBACK:
      decoded = { cmd: "puback", id: reader.uint16(), ...ackTail(reader, level) };
      break;
    case SUBACK: {
      const id = reader.uint16();
      const properties = level === 5 ? readProperties(reader) : {};
      const allowed = level === 5 ? SUBACK_CODES_5 : SUBACK_CODES_3;
      const codes: number[] = [];
      while (reader.left > 0) codes.push(reader.code(allowed, "return code"));
      decoded = { cmd: "suback", id, codes, ...properties };
      break;
    }
    case PINGRESP:
      decoded = { cmd: "pingresp" };
      break;
    case DISCONNECT:
      if (level !== 5) throw reader.malformed("a broker sends DISCONNECT over MQTT 5 only");
      decoded = reader.left === 0 ? { cmd: "disconnect", code: 0 } : {
        cmd: "disconnect",
        code: reader.code(DISCONNECT_CODES_5, "reason code"),
        ...(reader.left > 0 ? readProperties(reader) : {}),
      };
      break;
    default:
      throw reader.malformed("a client never receives this packet type here");
  }
  if (reader.left !== 0) throw reader.malformed(`${reader.left} bytes follow its last field`);
  return decoded;
}

function decodePublish(
  reader: BodyReader,
  header: { flags: number; level: ProtocolLevel },
): IncomingPacket {
  const qos = (header.flags >> 1) & 3;
  if (qos > 1) throw reader.malformed(`QoS ${qos}, but fleetprov subscribes at QoS 1 at most`);
  const topic = reader.utf8();
  const id = qos > 0 ? reader.uint16() : undefined;
  if (header.level === 5) readProperties(reader);
  return {
    cmd: "publish",
    topic,
    qos,
    ...(id === undefined ? {} : { id }),
    payload: reader.rest(),
  };
}

const PACKET_NAMES: Record<number, string> = {
  [CONNACK]: "CONNACK",
  [PUBLISH]: "PUBLISH",
  [PUBACK]: "PUBACK",
  [SUBACK]: "SUBACK",
  [PINGRESP]: "PINGRESP",
  [DISCONNECT]: "DISCONNECT",
};
