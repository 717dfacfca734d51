// SPDX-License-Identifier: Apache-2.0
/**
 * The fleetprov version and the runtime facts `--version` prints: the target,
 * and the Node.js and OpenSSL versions inside the binary.
 *
 * @module
 */
import process from "node:process";

/** The fleetprov version, printed by `--version`. */
export const VERSION = "0.1.0";

/** What the running program is made of. */
export interface RuntimeFacts {
  /** fleetprov's version. */
  version: string;
  /** Release target name: `linux-x64`, `linux-arm64`, `linux-armv7` (else platform-arch). */
  target: string;
  /** `node` for the release binaries (Node.js single executables), `deno` from source. */
  runtime: "node" | "deno";
  /** The runtime's own version (Node.js or Deno). */
  runtimeVersion: string;
  /** OpenSSL inside Node.js; absent under Deno, whose TLS is not OpenSSL. */
  openssl?: string;
}

/** The release target names of `process.arch` values. */
const TARGET_ARCH: Record<string, string> = { x64: "x64", arm64: "arm64", arm: "armv7" };

/** The facts about this process's runtime. */
export function runtimeFacts(): RuntimeFacts {
  const target = `${process.platform}-${TARGET_ARCH[process.arch] ?? process.arch}`;
  const deno = (globalThis as { Deno?: { version?: { deno?: string } } }).Deno?.version?.deno;
  if (deno) return { version: VERSION, target, runtime: "deno", runtimeVersion: deno };
  return {
    version: VERSION,
    target,
    runtime: "node",
    runtimeVersion: process.versions.node,
    openssl: process.versions.openssl,
  };
}

/**
 * The `--version` line, e.g.
 * `fleetprov 0.1.0 (linux-arm64; Node.js 26.12.1, OpenSSL 3.5.9)`; from source,
 * `fleetprov 0.1.0 (linux-x64; Deno 2.9.6, from source)`. It always starts with
 * `fleetprov <version>`.
 */
export function versionLine(facts: RuntimeFacts = runtimeFacts()): string {
  const inside = facts.runtime === "deno"
    ? `Deno ${facts.runtimeVersion}, from source`
    : `Node.js ${facts.runtimeVersion}, OpenSSL ${facts.openssl ?? "unknown"}`;
  return `fleetprov ${facts.version} (${facts.target}; ${inside})`;
}
