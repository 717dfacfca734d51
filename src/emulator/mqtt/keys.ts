// SPDX-License-Identifier: Apache-2.0
/**
 * The key pairs CreateKeysAndCertificate hands out: RSA 2048 (what AWS IoT
 * creates; PKCS#1 PEM, "BEGIN RSA PRIVATE KEY", as AWS sends it) or EC P-256
 * (the fast path for storms and benchmarks). RSA key generation costs tens to
 * hundreds of milliseconds of CPU, so a small pool is generated ahead, off the
 * event loop (node:crypto runs it on libuv's thread pool), and refilled in the
 * background: a single request does not wait for a key unless a storm drained
 * the pool.
 *
 * @module
 */
import { generateKeyPair as generateNodeKeyPair, webcrypto } from "node:crypto";
import { generateKeyPair } from "../../pki/mod.ts";
import { concat } from "../der.ts";

/** Key types the emulator can hand out. */
export type KeyType = "rsa-2048" | "ec-p256";

/** The key types, for validation messages. */
export const KEY_TYPES: readonly KeyType[] = ["rsa-2048", "ec-p256"];

/** A key pair ready to certify: the private key as AWS sends it, the public key as SPKI DER. */
export interface IssuedKey {
  privateKeyPem: string;
  spki: Uint8Array;
}

/** SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes follow) }. */
const P256_SPKI_PREFIX = new Uint8Array([
  0x30,
  0x59,
  0x30,
  0x13,
  0x06,
  0x07,
  0x2a,
  0x86,
  0x48,
  0xce,
  0x3d,
  0x02,
  0x01,
  0x06,
  0x08,
  0x2a,
  0x86,
  0x48,
  0xce,
  0x3d,
  0x03,
  0x01,
  0x07,
  0x03,
  0x42,
  0x00,
]);

/** Generates one key pair of `type`. */
export async function generateIssuedKey(type: KeyType): Promise<IssuedKey> {
  if (type === "ec-p256") {
    const pair = await generateKeyPair("ec-p256");
    // SPKI of a P-256 key = fixed prefix + the uncompressed point ("raw" export is the cheap one).
    const point = new Uint8Array(await webcrypto.subtle.exportKey("raw", pair.keys.publicKey));
    return { privateKeyPem: pair.privateKeyPem, spki: concat(P256_SPKI_PREFIX, point) };
  }
  return await new Promise<IssuedKey>((resolve, reject) => {
    generateNodeKeyPair("rsa", {
      modulusLength: 2048,
      publicExponent: 0x10001,
      publicKeyEncoding: { type: "spki", format: "der" },
      privateKeyEncoding: { type: "pkcs1", format: "pem" },
    }, (error, spki, privateKeyPem) => {
      if (error) return reject(error);
      resolve({ privateKeyPem, spki: new Uint8Array(spki) });
    });
  });
}

/**
 * Keys generated ahead: `take()` hands out a ready key (or waits for the next
 * one) and starts a refill, one key at a time, so the pool never competes
 * with more than one libuv thread. Size 0 generates on demand.
 */
export class KeyPool {
  readonly type: KeyType;
  readonly size: number;
  readonly #ready: Promise<IssuedKey>[] = [];
  /** The key being generated for the pool, if any. */
  #filling: Promise<unknown> | undefined;
  #closed = false;

  /** Creates the pool and starts filling it. */
  constructor(type: KeyType, size: number) {
    if (!KEY_TYPES.includes(type)) {
      throw new Error(
        `keyType must be one of ${KEY_TYPES.join(", ")}, not ${JSON.stringify(type)}.`,
      );
    }
    if (!Number.isInteger(size) || size < 0 || size > 1000) {
      throw new Error(`keyPoolSize must be an integer from 0 to 1000, not ${size}.`);
    }
    this.type = type;
    this.size = size;
    this.#refill();
  }

  /** A key pair: a pooled one when ready, else the next one generated. */
  take(): Promise<IssuedKey> {
    const key = this.#ready.shift() ?? generateIssuedKey(this.type);
    this.#refill();
    return key;
  }

  /** How many keys are generated or being generated ahead. */
  get available(): number {
    return this.#ready.length;
  }

  /** Stops refilling; resolves once the key being generated (if any) is done. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#filling;
  }

  /** Generates keys one after another until the pool is full. */
  #refill(): void {
    if (this.#filling || this.#closed || this.#ready.length >= this.size) return;
    const key = generateIssuedKey(this.type);
    this.#ready.push(key);
    // A failed key is reported to the request that takes it; the pool goes on.
    const done = () => {
      this.#filling = undefined;
      this.#refill();
    };
    this.#filling = key.then(done, done);
  }
}
