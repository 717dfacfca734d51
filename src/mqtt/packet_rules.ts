// SPDX-License-Identifier: Apache-2.0
/**
 * What MQTT allows in the packets a broker sends a client, as data for the
 * device's codec (packets.ts): the reason codes each acknowledgement may carry
 * and the MQTT 5 properties with the size of their values.
 *
 * @module
 */

/** MQTT 3.1.1 SUBACK return codes (§3.9.3): granted QoS 0, 1, 2, or failure. */
export const SUBACK_CODES_3: ReadonlySet<number> = new Set([0x00, 0x01, 0x02, 0x80]);
/** MQTT 5 reason codes a SUBACK may carry (§3.9.3). */
export const SUBACK_CODES_5: ReadonlySet<number> = new Set([
  0x00,
  0x01,
  0x02,
  0x80,
  0x83,
  0x87,
  0x8f,
  0x91,
  0x97,
  0x9e,
  0xa1,
  0xa2,
]);
/** MQTT 5 reason codes a PUBACK may carry (§3.4.2.1). */
export const PUBACK_CODES_5: ReadonlySet<number> = new Set([
  0x00,
  0x10,
  0x80,
  0x83,
  0x87,
  0x90,
  0x91,
  0x97,
  0x99,
]);
/** MQTT 5 reason codes a DISCONNECT may carry (§3.14.2.1). */
export const DISCONNECT_CODES_5: ReadonlySet<number> = new Set([
  0x00,
  0x04,
  ...[0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90],
  ...[
    0x93,
    0x94,
    0x95,
    0x96,
    0x97,
    0x98,
    0x99,
    0x9a,
    0x9b,
    0x9c,
    0x9d,
    0x9e,
    0x9f,
    0xa0,
    0xa1,
    0xa2,
  ],
]);

/** Bytes of the value of each MQTT 5 property by identifier: a count, or how to read it. */
export const PROPERTY_TYPES: Record<number, number | "varint" | "utf8" | "binary" | "pair"> = {
  0x01: 1, // payload format indicator
  0x02: 4, // message expiry interval
  0x03: "utf8", // content type
  0x08: "utf8", // response topic
  0x09: "binary", // correlation data
  0x0b: "varint", // subscription identifier
  0x11: 4, // session expiry interval
  0x12: "utf8", // assigned client identifier
  0x13: 2, // server keep alive
  0x15: "utf8", // authentication method
  0x16: "binary", // authentication data
  0x1a: "utf8", // response information
  0x1c: "utf8", // server reference
  0x1f: "utf8", // reason string
  0x21: 2, // receive maximum
  0x22: 2, // topic alias maximum
  0x23: 2, // topic alias
  0x24: 1, // maximum QoS
  0x25: 1, // retain available
  0x26: "pair", // user property
  0x27: 4, // maximum packet size
  0x28: 1, // wildcard subscription available
  0x29: 1, // subscription identifiers available
  0x2a: 1, // shared subscription available
};

/** Properties that may appear more than once (§2.2.2.2): user properties, subscription identifiers. */
export const REPEATABLE_PROPERTIES: ReadonlySet<number> = new Set([0x26, 0x0b]);
