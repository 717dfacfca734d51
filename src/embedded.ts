// SPDX-License-Identifier: Apache-2.0
/**
 * Code a release binary carries outside its main script, loaded only by the
 * command that needs it: the emulator (aedes, its MQTT codec, an X.509
 * library) is two thirds of fleetprov's code, and lint (its template checks
 * and policy explanations) most of the rest; a device runs neither. Kept in
 * the main script, they would cost every boot of every board the time to set
 * them up and the memory to hold them.
 *
 * The build appends each such bundle (CommonJS, requiring only Node.js
 * built-ins) to the binary, after everything the ELF headers describe, with a
 * trailer: the bundle, its name, the name's length (4 bytes), the bundle's
 * length (8 bytes, little-endian), then {@linkcode TRAILER_MAGIC}; bundles
 * follow one another, each with its trailer, read from the end. The kernel
 * never maps those bytes (they cost no memory until read), ELF tools ignore
 * them, and it works on every runtime the release uses (Node.js 20 on armv7
 * has no SEA assets; a second note injected by postject breaks the program
 * headers lintian checks). `strip` drops them: the device still works, the
 * emulator says it is missing.
 *
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { createRequire } from "node:module";
import process from "node:process";
import { runInThisContext } from "node:vm";

/** The last 8 bytes of a binary that carries an appended bundle. */
export const TRAILER_MAGIC = "FPEMBED1";

function readAt(fd: number, position: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, bytes, done, length - done, position + done);
    if (n === 0) throw new Error(`${process.execPath} ends before offset ${position + length}.`);
    done += n;
  }
  return bytes;
}

/** Where a bundle appended to a binary lies: its name, first byte and length. */
export interface AppendedBundle {
  name: string;
  offset: number;
  length: number;
}

/** The bundles appended to the binary at `path`, the last one first. */
export function appendedBundles(path: string): AppendedBundle[] {
  const fd = openSync(path, "r");
  try {
    const found: AppendedBundle[] = [];
    // From the end, bundle by bundle, while there is a trailer.
    let end = fstatSync(fd).size;
    while (end >= 20) {
      const tail = readAt(fd, end - 20, 20);
      if (new TextDecoder().decode(tail.subarray(12)) !== TRAILER_MAGIC) break;
      const view = new DataView(tail.buffer);
      const nameLength = view.getUint32(0, true);
      const length = Number(view.getBigUint64(4, true));
      const nameAt = end - 20 - nameLength;
      if (nameAt - length < 0) break;
      const name = new TextDecoder().decode(readAt(fd, nameAt, nameLength));
      found.push({ name, offset: nameAt - length, length });
      end = nameAt - length;
    }
    return found;
  } finally {
    closeSync(fd);
  }
}

/** The bundle named `name` appended to the running binary, or undefined. */
export function embeddedResource(name: string): Uint8Array | undefined {
  const bundle = appendedBundles(process.execPath).find((b) => b.name === name);
  if (!bundle) return undefined;
  const fd = openSync(process.execPath, "r");
  try {
    return readAt(fd, bundle.offset, bundle.length);
  } finally {
    closeSync(fd);
  }
}

/**
 * Evaluates the CommonJS bundle appended as `name` and returns its exports;
 * throws a sentence naming it when the binary lacks it.
 */
export function loadEmbedded<T>(name: string): T {
  const code = embeddedResource(name);
  if (!code) {
    throw new Error(
      `${process.execPath} does not carry ${name} (was it stripped? strip removes what the build appended); use the release binary, or rebuild it with deno task build.`,
    );
  }
  const module = { exports: {} as T };
  const factory = runInThisContext(
    `(function (exports, require, module) {${new TextDecoder().decode(code)}\n})`,
    { filename: `${name.toLowerCase()}.cjs` },
  ) as (exports: T, require: NodeJS.Require, module: { exports: T }) => void;
  factory(module.exports, createRequire(process.execPath), module);
  return module.exports;
}
