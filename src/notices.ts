// SPDX-License-Identifier: Apache-2.0
/**
 * `--third-party-notices`: the licences of the npm packages and the Node.js
 * runtime inside a release binary. `deno task build` writes them
 * (build/notices.ts) and embeds them into the bundle, deflated and base64
 * encoded, as the constant `FLEETPROV_THIRD_PARTY_NOTICES`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { inflateRawSync } from "node:zlib";

/** Defined by esbuild in release bundles; undefined when running from source. */
declare const FLEETPROV_THIRD_PARTY_NOTICES: string | undefined;

/** The notices embedded into this binary, or undefined when running from source. */
export function embeddedNotices(): string | undefined {
  if (typeof FLEETPROV_THIRD_PARTY_NOTICES !== "string") return undefined;
  return inflateRawSync(Buffer.from(FLEETPROV_THIRD_PARTY_NOTICES, "base64")).toString("utf8");
}

/** What `--third-party-notices` prints when running from source. */
export const FROM_SOURCE_NOTICE =
  "fleetprov is running from source, not from a release binary, so it bundles nothing: the " +
  "npm packages' licences are in node_modules/. `deno task build` writes the notices of the " +
  "release binaries to dist/THIRD_PARTY_NOTICES, and each binary prints its own with " +
  "--third-party-notices.\n";
