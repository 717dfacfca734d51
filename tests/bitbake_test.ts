// SPDX-License-Identifier: Apache-2.0
/**
 * The Yocto layer in real BitBake, on each release LAYERSERIES_COMPAT names
 * (scarthgap, wrynose), for qemuarm64 and qemuarm through one multiconfig
 * build: the layer parses, the release binaries are fetched (file:// and a
 * local HTTP server), checked against fleetprov-release.inc (a tampered binary
 * is refused both ways), unpacked and installed, and the installed tree is
 * right (ELF machine, modes, the configured claim files).
 *
 * openembedded-core and BitBake come from unmodified archives in
 * FLEETPROV_YOCTO_DIR (default /work/shared/yocto), extracted into a temporary
 * directory for each run. Offline and on 2 cores an image build is out of
 * reach, so the build stops at do_install and the test's own
 * configuration (`bitbakeConfig`) stands in for what only later tasks need.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { join } from "node:path";
import { build, sha256File } from "../build/mod.ts";
import { hostRunner, runCommand } from "../build/host.ts";
import { SYSTEMD_UNITS, writeYoctoLayer } from "../build/yocto.ts";
import type { TargetId } from "../build/targets.ts";
import { VERSION } from "../src/version.ts";
import { modeOf, ROOT, skipWhenMissing } from "./support/mod.ts";

const YOCTO_DIR = Deno.env.get("FLEETPROV_YOCTO_DIR") ?? "/work/shared/yocto";

/** A Yocto release and the archives of its openembedded-core and BitBake. */
interface Release {
  name: string;
  oeCore: string;
  bitbake: string;
}

/** The releases the layer is tested on: exactly its LAYERSERIES_COMPAT. */
const RELEASES: Release[] = [
  {
    name: "scarthgap",
    oeCore: "openembedded-core-scarthgap.tar.gz",
    bitbake: "bitbake-2.8.tar.gz",
  },
  { name: "wrynose", oeCore: "openembedded-core-wrynose.tar.gz", bitbake: "bitbake-2.18.tar.gz" },
];

/** Each machine, the release binary it takes and its ELF class and e_machine. */
const MACHINES = [
  { name: "qemuarm64", target: "arm64", elfClass: 2, elfMachine: 183 /* EM_AARCH64 */ },
  { name: "qemuarm", target: "armv7", elfClass: 1, elfMachine: 40 /* EM_ARM */ },
] as const satisfies readonly {
  name: string;
  target: TargetId;
  elfClass: number;
  elfMachine: number;
}[];

/** BitBake refuses root: as root, it runs as nobody. */
const BUILD_USER = Deno.uid() === 0 ? { uid: 65534, gid: 65534 } : undefined;

/**
 * Why the archives are not here, or undefined. They are fixtures beside the
 * checkout, not tools a machine can install: where they are absent the tests
 * skip loudly even in CI, unless FLEETPROV_REQUIRE_YOCTO=1 demands them.
 */
function missingArchive(): string | undefined {
  for (const release of RELEASES) {
    for (const archive of [release.oeCore, release.bitbake]) {
      try {
        Deno.statSync(join(YOCTO_DIR, archive));
      } catch {
        return `${join(YOCTO_DIR, archive)} is missing: set FLEETPROV_YOCTO_DIR to the folder ` +
          "holding the openembedded-core and BitBake archives.";
      }
    }
  }
  return undefined;
}

/** Why these tests cannot run here, or undefined when they can. */
function missingPrerequisite(): string | undefined {
  for (const machine of MACHINES) {
    const runner = hostRunner(machine.target);
    if (!runner.ok) return `the ${machine.target} binary cannot be built here: ${runner.reason}.`;
  }
  const locales = new Deno.Command("locale", { args: ["-a"], stdout: "piped", stderr: "null" })
    .outputSync();
  if (!/^en_US\.utf8$/im.test(new TextDecoder().decode(locales.stdout))) {
    return "BitBake needs the en_US.UTF-8 locale: install the Debian package locales and " +
      "generate it (uncomment it in /etc/locale.gen, run locale-gen).";
  }
  return undefined;
}

/**
 * GitHub's ci job sets FLEETPROV_SKIP_BITBAKE: its bitbake job runs these
 * tests on upstream clones. Honoured only on GitHub Actions: anywhere else
 * (this machine's `.ci/run`) the switch cannot take tests away.
 */
const delegation = Deno.env.get("FLEETPROV_SKIP_BITBAKE") === "1";
const skipped = delegation && Deno.env.get("GITHUB_ACTIONS") === "true"
  ? "FLEETPROV_SKIP_BITBAKE=1 says GitHub's bitbake job runs them."
  : undefined;
if (skipped) console.error(`\n*** NOT RUNNING the BitBake tests here: ${skipped} ***\n`);
else if (delegation) {
  console.error(
    "\n*** FLEETPROV_SKIP_BITBAKE=1 is honoured only on GitHub Actions: running the BitBake tests ***\n",
  );
}
const noArchive = skipped ? undefined : missingArchive();
const skipBitbake = !skipped && skipWhenMissing(noArchive ?? missingPrerequisite(), {
  require: noArchive ? "FLEETPROV_REQUIRE_YOCTO" : "FLEETPROV_REQUIRE_TOOLS",
  what: "the BitBake tests",
});

/** A BitBake build directory with oe-core, BitBake and the layers beside it. */
interface Workspace {
  dir: string;
  release: Release;
  /** The release binaries, where file:// URIs point. */
  distDir: string;
  /** The SHA-256 of each release binary. */
  sha256: Record<string, string>;
  claim: { cert: string; key: string; rootCa: string };
}

/** Runs a command as the build user in `cwd` with a clean environment. */
async function runAsBuilder(
  command: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<{ code: number; output: string }> {
  const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const argv = [
    ...(BUILD_USER
      ? ["setpriv", `--reuid=${BUILD_USER.uid}`, `--regid=${BUILD_USER.gid}`, "--clear-groups"]
      : []),
    "env",
    "-i",
    ...env,
    ...command,
  ];
  const result = await runCommand(argv[0], argv.slice(1), { cwd: options.cwd });
  return { code: result.code, output: result.stdout + result.stderr };
}

async function chownToBuilder(path: string): Promise<void> {
  if (BUILD_USER) await Deno.chown(path, BUILD_USER.uid, BUILD_USER.gid);
}

/**
 * Extracts the release's archives, writes the layer for the built binaries,
 * a stand-in layer, claim files and the build configuration.
 */
async function workspace(
  release: Release,
  binaries: { id: TargetId; path: string }[],
): Promise<Workspace> {
  const dir = await Deno.makeTempDir({ prefix: `fleetprov-bitbake-${release.name}-` });
  await chownToBuilder(dir);
  for (const archive of [release.oeCore, release.bitbake]) {
    const tar = await runAsBuilder(["tar", "-xzf", join(YOCTO_DIR, archive)], { cwd: dir });
    assertEquals(tar.code, 0, tar.output);
  }

  const distDir = join(dir, "dist");
  await Deno.mkdir(distDir);
  const sha256: Record<string, string> = {};
  for (const binary of binaries) {
    const copy = join(distDir, `fleetprov-linux-${binary.id}`);
    await Deno.link(binary.path, copy).catch(() => Deno.copyFile(binary.path, copy));
    sha256[binary.id] = await sha256File(binary.path);
  }
  await writeYoctoLayer(dir, {
    version: VERSION,
    binaries: binaries.map((b) => ({ id: b.id, sha256: sha256[b.id] })),
    licenseFiles: {
      license: join(ROOT, "LICENSE"),
      notices: join(ROOT, "dist", "THIRD_PARTY_NOTICES"),
    },
  });

  // Only do_install's dependency chain runs: the runtime packages the recipe
  // RDEPENDS on just have to be resolvable.
  const stub = join(dir, "meta-runtime-stub");
  await Deno.mkdir(join(stub, "conf"), { recursive: true });
  await Deno.mkdir(join(stub, "recipes-stub", "runtime-stub"), { recursive: true });
  await Deno.writeTextFile(
    join(stub, "conf", "layer.conf"),
    [
      'BBPATH .= ":${LAYERDIR}"',
      'BBFILES += "${LAYERDIR}/recipes-*/*/*.bb"',
      'BBFILE_COLLECTIONS += "runtimestub"',
      'BBFILE_PATTERN_runtimestub = "^${LAYERDIR}/"',
      'BBFILE_PRIORITY_runtimestub = "1"',
      `LAYERSERIES_COMPAT_runtimestub = "${release.name}"`,
    ].join("\n") + "\n",
  );
  await Deno.writeTextFile(
    join(stub, "recipes-stub", "runtime-stub", "runtime-stub.bb"),
    [
      'SUMMARY = "Stands in for the runtime packages fleetprov RDEPENDS on"',
      'LICENSE = "CLOSED"',
      'INHIBIT_DEFAULT_DEPS = "1"',
      'PACKAGES = "${PN}"',
      'ALLOW_EMPTY:${PN} = "1"',
      'RPROVIDES:${PN} = "glibc libstdc++ libgcc libatomic ptest-runner"',
    ].join("\n") + "\n",
  );
  // pseudo's sources need the network: tasks run as the build user, with real
  // modes. BitBake runs `FAKEROOTCMD -S` after each such task (pseudo's sync).
  await Deno.writeTextFile(
    join(dir, "no-pseudo"),
    '#!/bin/sh\n[ "$1" = "-S" ] && exit 0\nexec "$@"\n',
    { mode: 0o755 },
  );

  const claimDir = join(dir, "claim");
  await Deno.mkdir(claimDir);
  const claim = {
    cert: join(claimDir, "claim.pem.crt"),
    key: join(claimDir, "claim.pem.key"),
    rootCa: join(claimDir, "AmazonRootCA1.pem"),
  };
  await Deno.writeTextFile(claim.cert, "-----BEGIN CERTIFICATE-----\nclaim\n");
  await Deno.writeTextFile(claim.key, "-----BEGIN PRIVATE KEY-----\nclaim\n", { mode: 0o600 });
  await Deno.writeTextFile(claim.rootCa, "-----BEGIN CERTIFICATE-----\nroot\n");

  const conf = join(dir, "build", "conf");
  await Deno.mkdir(join(conf, "multiconfig"), { recursive: true });
  await Deno.writeTextFile(
    join(conf, "bblayers.conf"),
    [
      'LCONF_VERSION = "7"',
      'BBPATH = "${TOPDIR}"',
      'BBFILES ?= ""',
      `BBLAYERS = "${dir}/openembedded-core/meta ${dir}/meta-fleetprov ${stub}"`,
    ].join("\n") + "\n",
  );
  for (const machine of MACHINES) {
    await Deno.writeTextFile(
      join(conf, "multiconfig", `${machine.name}.conf`),
      `MACHINE = "${machine.name}"\nTMPDIR = "\${TOPDIR}/tmp-${machine.name}"\n`,
    );
  }
  await chownTreeToBuilder(dir);
  return { dir, release, distDir, sha256, claim };
}

/** Hands everything written as root under `dir` to the build user. */
async function chownTreeToBuilder(dir: string): Promise<void> {
  if (!BUILD_USER) return;
  const chown = await new Deno.Command("chown", {
    args: ["-R", `${BUILD_USER.uid}:${BUILD_USER.gid}`, dir],
  }).output();
  assert(chown.success, `chown -R ${dir} failed`);
}

/**
 * The build configuration: systemd and ptest on, both machines as
 * multiconfigs, and what stands in for an image build's toolchain offline.
 */
function bitbakeConfig(
  ws: Workspace,
  options: { releaseUri: string; downloads: string; http?: boolean },
): string {
  return [
    'CONF_VERSION = "2"',
    'MACHINE = "qemuarm64"',
    `BBMULTICONFIG = "${MACHINES.map((m) => m.name).join(" ")}"`,
    'INIT_MANAGER = "systemd"',
    'DISTRO_FEATURES:append = " ptest"',
    `DL_DIR = "${ws.dir}/${options.downloads}"`,
    // The network: none, or only this machine's loopback for the HTTP case.
    ...(options.http
      ? ['BB_ALLOWED_NETWORKS = "127.0.0.1"', 'CONNECTIVITY_CHECK_URIS = ""']
      : ['BB_NO_NETWORK = "1"']),
    'INHERIT_DISTRO:remove = "uninative"',
    // Parse only this layer's recipes: oe-core's ~950 take over a minute.
    'BBMASK = "/openembedded-core/meta/recipes-"',
    'BBFILE_PATTERN_IGNORE_EMPTY_core = "1"',
    // What tasks after do_install (packaging, QA) and a cross toolchain
    // would build; a prebuilt binary needs none of it up to do_install.
    'INHIBIT_DEFAULT_DEPS:pn-fleetprov = "1"',
    'ASSUME_PROVIDED += "quilt-native patch-native patch-replacement-native pseudo-native ' +
    "virtual/fakeroot-native gnu-config-native systemd-systemctl-native rpm-native " +
    "dwarfsrcfiles-native opkg-utils-native zstd-native virtual/${TARGET_PREFIX}binutils " +
    'binutils-cross-${TARGET_ARCH}"',
    `FAKEROOTCMD = "${ws.dir}/no-pseudo"`,
    // The layer under test, configured for a first-boot provisioning.
    `FLEETPROV_RELEASE_URI = "${options.releaseUri}"`,
    'FLEETPROV_ENDPOINT = "abcdefghijklmn-ats.iot.eu-west-1.amazonaws.com"',
    'FLEETPROV_TEMPLATE_NAME = "FleetProvisioningTemplate"',
    `FLEETPROV_CLAIM_CERT = "${ws.claim.cert}"`,
    `FLEETPROV_CLAIM_KEY = "${ws.claim.key}"`,
    `FLEETPROV_ROOT_CA = "${ws.claim.rootCa}"`,
    `FLEETPROV_TEMPLATE_PARAMETERS = '{"SerialNumber": "from-factory"}'`,
    'FLEETPROV_ROTATION_TEMPLATE_NAME = "FleetprovRotationTemplate"',
  ].join("\n") + "\n";
}

/** Runs bitbake in the workspace with `local.conf` set to `localConf`. */
async function bitbake(
  ws: Workspace,
  localConf: string,
  args: string[],
): Promise<{ code: number; output: string }> {
  const build = join(ws.dir, "build");
  await Deno.writeTextFile(join(build, "conf", "local.conf"), localConf);
  await chownToBuilder(join(build, "conf", "local.conf"));
  return await runAsBuilder(["bitbake", ...args], {
    cwd: build,
    env: {
      HOME: ws.dir,
      LANG: "en_US.UTF-8",
      BBPATH: build,
      PATH: [
        join(ws.dir, "openembedded-core", "scripts"),
        join(ws.dir, "bitbake", "bin"),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      ].join(":"),
    },
  });
}

/** Both machines' do_install, in one multiconfig build. */
const INSTALL_BOTH = [...MACHINES.map((m) => `mc:${m.name}:fleetprov`), "-c", "install"];

/** The same, going on after a failure (so each machine's refusal shows). */
const INSTALL_BOTH_KEEP_GOING = ["-k", ...INSTALL_BOTH];

/** BitBake's WARNING and ERROR lines. */
function complaints(output: string): string[] {
  return output.split("\n").filter((line) => /^(WARNING|ERROR):/.test(line));
}

/** The names in a directory, none when it does not exist. */
async function names(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((entry) => entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/** The `image` directory (D) of fleetprov for `machine` (TMPDIR may end in -glibc). */
async function imageDir(ws: Workspace, machine: string): Promise<string> {
  const build = join(ws.dir, "build");
  const found: string[] = [];
  for (const tmp of await names(build)) {
    if (!new RegExp(`^tmp-${machine}(-[a-z]+)?$`).test(tmp)) continue;
    for (const arch of await names(join(build, tmp, "work"))) {
      const recipe = join(build, tmp, "work", arch, "fleetprov");
      for (const version of await names(recipe)) found.push(join(recipe, version, "image"));
    }
  }
  assertEquals(found.length, 1, `one fleetprov work directory for ${machine}: ${found}`);
  return found[0];
}

/** ELF class (1: 32-bit, 2: 64-bit) and e_machine of a little-endian ELF file. */
async function elfHeader(path: string): Promise<{ elfClass: number; machine: number }> {
  using file = await Deno.open(path);
  const header = new Uint8Array(20);
  assertEquals(await file.read(header), 20);
  assertEquals([...header.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `${path} is not ELF`);
  return { elfClass: header[4], machine: header[18] | (header[19] << 8) };
}

/** The tree do_install left for each machine. */
async function checkInstalledTree(ws: Workspace): Promise<void> {
  for (const machine of MACHINES) {
    const image = await imageDir(ws, machine.name);
    const binary = join(image, "usr", "bin", "fleetprov");
    assertEquals(modeOf(binary), "755");
    assertEquals(await elfHeader(binary), {
      elfClass: machine.elfClass,
      machine: machine.elfMachine,
    });
    assertEquals(await sha256File(binary), ws.sha256[machine.target]);

    const unitDir = join(image, "usr", "lib", "systemd", "system");
    for (const unit of SYSTEMD_UNITS) {
      assertEquals(modeOf(join(unitDir, unit)), "644", unit);
      assertEquals(
        await Deno.readTextFile(join(unitDir, unit)),
        await Deno.readTextFile(join(ROOT, "build", "systemd", unit)),
      );
    }

    const etc = join(image, "etc", "fleetprov");
    const modes: Record<string, string> = {};
    for await (const entry of Deno.readDir(etc)) modes[entry.name] = modeOf(join(etc, entry.name));
    assertEquals(modeOf(etc), "700");
    assertEquals(modes, {
      "fleetprov.conf": "640",
      "fleetprov.conf.example": "640",
      "claim-certificate.pem.crt": "644",
      "claim-private.pem.key": "600",
      "root-ca.pem": "644",
    });
    assertEquals(JSON.parse(await Deno.readTextFile(join(etc, "fleetprov.conf"))), {
      endpoint: "abcdefghijklmn-ats.iot.eu-west-1.amazonaws.com",
      cert: "/etc/fleetprov/claim-certificate.pem.crt",
      key: "/etc/fleetprov/claim-private.pem.key",
      "root-ca": "/etc/fleetprov/root-ca.pem",
      "fleet-provisioning": {
        enabled: true,
        "template-name": "FleetProvisioningTemplate",
        "template-parameters": '{"SerialNumber": "from-factory"}',
        "rotation-template-name": "FleetprovRotationTemplate",
      },
    });
    assertEquals(
      await Deno.readTextFile(join(etc, "claim-private.pem.key")),
      await Deno.readTextFile(ws.claim.key),
    );
  }
}

/** Serves the files of `dir` over HTTP on the loopback; counts the requests per path. */
function serveDir(
  dir: string,
): { uri: string; requests: Map<string, number>; close(): Promise<void> } {
  const requests = new Map<string, number>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const name = new URL(request.url).pathname.slice(1);
    requests.set(name, (requests.get(name) ?? 0) + 1);
    if (!/^[\w.-]+$/.test(name)) return new Response("not found", { status: 404 });
    try {
      const file = await Deno.open(join(dir, name));
      const { size } = await file.stat();
      return new Response(file.readable, { headers: { "content-length": String(size) } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return {
    uri: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

/** A copy of `dir`'s binaries with one byte changed in the middle of each. */
async function tamperedCopy(ws: Workspace): Promise<string> {
  const tampered = join(ws.dir, "tampered");
  await Deno.mkdir(tampered);
  for await (const entry of Deno.readDir(ws.distDir)) {
    const bytes = await Deno.readFile(join(ws.distDir, entry.name));
    bytes[bytes.length >> 1] ^= 0x01;
    await Deno.writeFile(join(tampered, entry.name), bytes, { mode: 0o755 });
  }
  await chownTreeToBuilder(tampered);
  return tampered;
}

Deno.test("bitbake: LAYERSERIES_COMPAT names exactly the releases tested here", async () => {
  const layerConf = await Deno.readTextFile(
    join(ROOT, "build", "yocto", "meta-fleetprov", "conf", "layer.conf"),
  );
  const compat = /^LAYERSERIES_COMPAT_fleetprov = "([^"]*)"$/m.exec(layerConf);
  assert(compat, "layer.conf has no LAYERSERIES_COMPAT_fleetprov");
  assertEquals(compat[1].split(" "), RELEASES.map((r) => r.name));
});

// Delegated to another job (FLEETPROV_SKIP_BITBAKE), they are not registered: not ignored either.
for (const release of skipped ? [] : RELEASES) {
  Deno.test({
    name: `bitbake ${release.name}: qemuarm64 and qemuarm parse, fetch, check, unpack, install`,
    ignore: skipBitbake,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      // Every target, as `deno task test` built them: dist/SHA256SUMS and
      // dist/meta-fleetprov, which build() rewrites, keep listing all three.
      const report = await build({ log: () => {} });
      const started = performance.now();
      const timings: string[] = [];
      const timed = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
        const start = performance.now();
        const result = await work();
        timings.push(`${label} ${((performance.now() - start) / 1000).toFixed(1)} s`);
        return result;
      };
      const arm = report.targets.filter((t) => MACHINES.some((m) => m.target === t.id));
      const ws = await timed("extract", () => workspace(release, arm));
      const run = (label: string, args: string[], options: Parameters<typeof bitbakeConfig>[1]) =>
        timed(label, () => bitbake(ws, bitbakeConfig(ws, options), args));
      const installed = (output: string) => output.match(/task do_install: Succeeded/g)?.length;
      try {
        await t.step("the layer parses cleanly with oe-core's classes", async () => {
          const result = await run("parse", ["-p"], {
            releaseUri: `file://${ws.distDir}`,
            downloads: "downloads",
          });
          assertEquals(result.code, 0, result.output);
          assertEquals(complaints(result.output), []);
        });

        await t.step("file://: checked, unpacked and installed for both machines", async () => {
          const result = await run("file://", INSTALL_BOTH, {
            releaseUri: `file://${ws.distDir}`,
            downloads: "downloads",
          });
          assertEquals(result.code, 0, result.output);
          assertEquals(complaints(result.output), []);
          assertEquals(installed(result.output), MACHINES.length, result.output);
          await checkInstalledTree(ws);
        });

        await t.step("LIC_FILES_CHKSUM matches the licence files the layer ships", async () => {
          const result = await run("populate_lic", [
            ...MACHINES.map((m) => `mc:${m.name}:fleetprov`),
            "-c",
            "populate_lic",
          ], { releaseUri: `file://${ws.distDir}`, downloads: "downloads" });
          assertEquals(result.code, 0, result.output);
          assertEquals(complaints(result.output), []);
          assertEquals(
            result.output.match(/task do_populate_lic: Succeeded/g)?.length,
            MACHINES.length,
            result.output,
          );
        });

        await t.step("http: downloaded from a local server, checked and installed", async () => {
          const server = serveDir(ws.distDir);
          try {
            const result = await run("http", INSTALL_BOTH, {
              releaseUri: server.uri,
              downloads: "downloads",
              http: true,
            });
            assertEquals(result.code, 0, result.output);
            assertEquals(complaints(result.output), []);
            assertEquals(Object.fromEntries(server.requests), {
              "fleetprov-linux-arm64": 1,
              "fleetprov-linux-armv7": 1,
            });
            assertEquals(installed(result.output), MACHINES.length, result.output);
            await checkInstalledTree(ws);
          } finally {
            await server.close();
          }
        });

        await t.step(
          "a binary with one byte changed is refused over file:// and http",
          async () => {
            const tampered = await tamperedCopy(ws);
            const local = await run("tampered file://", INSTALL_BOTH_KEEP_GOING, {
              releaseUri: `file://${tampered}`,
              downloads: "downloads",
            });
            assert(local.code !== 0, local.output);
            for (const machine of MACHINES) {
              assertMatch(
                local.output,
                new RegExp(
                  `^ERROR: mc:${machine.name}:fleetprov-${VERSION}-r0 do_fetch: fleetprov: ` +
                    `${tampered}/fleetprov-linux-${machine.target} has SHA-256 [0-9a-f]{64}, ` +
                    `but fleetprov-release\\.inc expects ${ws.sha256[machine.target]}\\.`,
                  "m",
                ),
              );
            }
            assertEquals(installed(local.output), undefined, local.output);

            // A fresh download directory: the good binaries are cached under the same names.
            const server = serveDir(tampered);
            try {
              const remote = await run("tampered http", INSTALL_BOTH_KEEP_GOING, {
                releaseUri: server.uri,
                downloads: "downloads-tampered",
                http: true,
              });
              assert(remote.code !== 0, remote.output);
              for (const machine of MACHINES) {
                assertMatch(
                  remote.output,
                  new RegExp(
                    `Fetcher failure for URL: '${server.uri}/fleetprov-linux-${machine.target};` +
                      ".*Checksum mismatch!",
                  ),
                );
              }
              assertEquals(installed(remote.output), undefined, remote.output);
            } finally {
              await server.close();
            }
          },
        );
      } finally {
        await Deno.remove(ws.dir, { recursive: true });
        console.error(
          `bitbake ${release.name}: ${timings.join(", ")}; total ${
            ((performance.now() - started) / 1000).toFixed(1)
          } s`,
        );
      }
    },
  });
}
