// SPDX-License-Identifier: Apache-2.0
/**
 * Child-process wrapper around postject's API:
 * `postject_cli.ts BINARY BLOB` injects BLOB as the Node.js SEA resource.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { inject } from "postject";
import { SEA_FUSE } from "./sea.ts";

if (import.meta.main) {
  const [binary, blob] = Deno.args;
  if (!binary || !blob) {
    console.error("usage: postject_cli.ts BINARY BLOB");
    Deno.exit(2);
  }
  await inject(binary, "NODE_SEA_BLOB", Buffer.from(await Deno.readFile(blob)), {
    sentinelFuse: SEA_FUSE,
    overwrite: false,
  });
}
