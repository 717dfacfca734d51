// SPDX-License-Identifier: Apache-2.0
/**
 * `--version` names fleetprov's version, the target and the runtime inside;
 * the binary tests check the release binaries' line (Node.js and OpenSSL).
 *
 * @module
 */
import { assertEquals, assertMatch } from "./support/assert.ts";
import { VERSION, versionLine } from "../src/version.ts";
import { FROM_SOURCE_NOTICE } from "../src/notices.ts";
import { deviceHome, runFleetprov } from "./support/mod.ts";

Deno.test("version line: target, Node.js and OpenSSL; Deno from source", () => {
  assertEquals(
    versionLine({
      version: "1.2.3",
      target: "linux-armv7",
      runtime: "node",
      runtimeVersion: "20.11.0",
      openssl: "3.0.12+quic",
    }),
    "fleetprov 1.2.3 (linux-armv7; Node.js 20.11.0, OpenSSL 3.0.12+quic)",
  );
  assertEquals(
    versionLine({
      version: "1.2.3",
      target: "linux-x64",
      runtime: "deno",
      runtimeVersion: "2.9.6",
    }),
    "fleetprov 1.2.3 (linux-x64; Deno 2.9.6, from source)",
  );
});

Deno.test("--version and --third-party-notices from source", async () => {
  const home = deviceHome();
  const version = await runFleetprov(["--version"], { home });
  assertEquals(version.code, 0);
  const arch = { x86_64: "x64", aarch64: "arm64" }[Deno.build.arch as string] ?? Deno.build.arch;
  assertEquals(
    version.stdout,
    `fleetprov ${VERSION} (linux-${arch}; Deno ${Deno.version.deno}, from source)\n`,
  );
  const notices = await runFleetprov(["--third-party-notices"], { home });
  assertEquals([notices.code, notices.stdout, notices.stderr], [0, FROM_SOURCE_NOTICE, ""]);
  assertMatch(notices.stdout, /dist\/THIRD_PARTY_NOTICES/);
});
