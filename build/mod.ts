// SPDX-License-Identifier: Apache-2.0
/**
 * `deno task build`: bundles main.ts with esbuild and turns it into one Node.js
 * single executable per board (dist/fleetprov-linux-{x64,arm64,armv7}), plus
 * dist/SHA256SUMS, dist/THIRD_PARTY_NOTICES, the Debian packages
 * dist/fleetprov_<version>_{amd64,arm64,armhf}.deb and the Yocto layer
 * dist/meta-fleetprov.
 *
 * Incremental: a target is rebuilt only when the bundle, its runtime or the
 * build scripts changed. Offline once `deno install` has cached the packages.
 *
 * ```sh
 * deno task build [--targets x64,arm64,armv7] [--runtime armv7=PATH] [--out-dir DIR] [--force]
 *                  [--no-code-cache] [--skip-unbuildable] [--no-deb]
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { bundle, type EmbeddedModule } from "./bundle.ts";
import { buildDeb, DEB_ARCH } from "./deb.ts";
import {
  type BundledPackage,
  bundledPackages,
  noticesText,
  packNotices,
  type RuntimeLicense,
  runtimeLicenseText,
} from "./notices.ts";
import { findOnPath, hostRunner, runFor } from "./host.ts";
import {
  appendBundle,
  findStrip,
  injectBlob,
  makeBlob,
  SEA_EXEC_ARGV,
  strip,
  supportsExecArgv,
} from "./sea.ts";
import { parseTargetId, TARGET_IDS, type TargetId, TARGETS } from "./targets.ts";
import { writeYoctoLayer } from "./yocto.ts";
import { VERSION } from "../src/version.ts";

/** The project root (the folder holding deno.json). */
export const ROOT: string = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** Bumped when the shape of the build output changes, to force rebuilds. */
const BUILD_FORMAT = 4;

/**
 * What a device never runs: left out of the main script (compiled in full at
 * every start), appended to the binary (src/embedded.ts) and loaded only by
 * its command. The emulator; lint, with the template checks and the policy
 * explanations only it uses.
 */
const EMBEDDED: readonly EmbeddedModule[] = [
  {
    path: join(ROOT, "src", "commands", "emulator.ts"),
    resource: "FLEETPROV_EMULATOR",
    exports: ["runEmulatorCommand"],
  },
  {
    path: join(ROOT, "src", "commands", "lint.ts"),
    resource: "FLEETPROV_LINT",
    exports: ["runLintCommand"],
  },
];

/** A bundle appended to the binary: its resource name and where the build wrote it. */
interface AppendedBundle {
  resource: string;
  path: string;
}

/** Options for {@linkcode build}. */
export interface BuildOptions {
  /** Targets to build; all by default. */
  targets?: readonly TargetId[];
  /** A runtime file of the user's to use instead of the pinned one. */
  runtimes?: Partial<Record<TargetId, string>>;
  /** Output folder; `dist/` by default. */
  outDir?: string;
  /** Rebuild even when nothing changed. */
  force?: boolean;
  /**
   * Put a V8 code cache in each blob (faster start-up; default true). The
   * cache is made by the target's own runtime, under QEMU for ARM.
   */
  codeCache?: boolean;
  /**
   * Skip, with a loud warning, targets this host can neither run (no QEMU)
   * nor make a blob for; by default that is an error.
   */
  skipUnbuildable?: boolean;
  /**
   * Build the Debian packages (default true). Without dpkg-deb that is an
   * error, or a loud skip with `skipUnbuildable`.
   */
  debs?: boolean;
  /** Progress lines; printed to stderr by default. */
  log?: (line: string) => void;
}

/** One built (or up-to-date) binary. */
export interface BuiltTarget {
  id: TargetId;
  /** Absolute path of the binary. */
  path: string;
  size: number;
  sha256: string;
  /** Node.js version inside. */
  nodeVersion: string;
  stripped: boolean;
  /** Whether `--version` was run on the result (natively or under QEMU). */
  verified: boolean;
  /** True when the binary was already up to date. */
  upToDate: boolean;
  /** The third-party notices embedded into it (`--third-party-notices`). */
  notices: string;
}

/** What {@linkcode build} produced. */
export interface BuildReport {
  targets: BuiltTarget[];
  /** Absolute path of SHA256SUMS. */
  sumsPath: string;
  /** Absolute path of the Yocto layer. */
  layerPath: string;
  /** Absolute path of THIRD_PARTY_NOTICES (every built target's runtime). */
  noticesPath: string;
  /** Absolute paths of the Debian packages, by target. */
  debs: Partial<Record<TargetId, string>>;
}

interface Stamp {
  inputs: string;
  size: number;
  mtime: number;
  target: Omit<BuiltTarget, "notices">;
}

/** Hex SHA-256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function pinnedRuntimePath(id: TargetId): string {
  return join(ROOT, "node_modules", TARGETS[id].runtime.packageName, "bin", "node");
}

/** Makes sure the pinned runtimes are installed and match the pinned table. */
async function checkPinnedRuntimes(ids: readonly TargetId[], log: (line: string) => void) {
  if (ids.length === 0) return;
  const missing = [];
  for (const id of ids) if (!await exists(pinnedRuntimePath(id))) missing.push(id);
  if (missing.length > 0) {
    log(`runtimes for ${missing.join(", ")} are not in node_modules: running deno install`);
    const result = await new Deno.Command(Deno.execPath(), { args: ["install"], cwd: ROOT })
      .output();
    if (!result.success) throw new Error("deno install failed: see its output above.");
  }
  const lock = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.lock")));
  for (const id of ids) {
    const { packageName, version, integrity, sha256: want } = TARGETS[id].runtime;
    const locked = lock.npm?.[`${packageName}@${version}`]?.integrity;
    if (locked !== integrity) {
      throw new Error(
        `deno.lock pins ${packageName}@${version} with integrity ${locked ?? "(none)"}, ` +
          `but build/targets.ts expects ${integrity}: make deno.json, deno.lock and ` +
          `build/targets.ts agree.`,
      );
    }
    const got = await sha256File(pinnedRuntimePath(id));
    if (got !== want) {
      throw new Error(
        `${relative(ROOT, pinnedRuntimePath(id))} has SHA-256 ${got}, but build/targets.ts ` +
          `pins ${want}: delete node_modules/ and run deno install again.`,
      );
    }
  }
}

/** Reads a runtime's Node.js version by running it (natively or under QEMU). */
async function runtimeVersion(id: TargetId, path: string): Promise<string> {
  const runner = hostRunner(id);
  if (!runner.ok) {
    throw new Error(`Cannot read the Node.js version of ${path}: ${runner.reason}.`);
  }
  const result = await runFor(id, path, ["--version"]);
  const match = /^v(\d+\.\d+\.\d+)\s*$/.exec(result.stdout);
  if (result.code !== 0 || !match) {
    throw new Error(`${path} is not a working ${id} Node.js runtime: ${result.stderr.trim()}`);
  }
  return match[1];
}

/**
 * The command prefix that makes the blob: the target's own runtime (natively
 * or under QEMU), which can also make a code cache; else a pinned runtime of
 * exactly the same version that runs natively, without a code cache.
 */
function blobRunner(
  id: TargetId,
  runtimePath: string,
  version: string,
): { runner: string[]; codeCache: boolean } {
  const runner = hostRunner(id);
  if (runner.ok) return { runner: [...runner.prefix, runtimePath], codeCache: true };
  for (const other of TARGET_IDS) {
    const pinned = TARGETS[other];
    if (pinned.hostArch === Deno.build.arch && pinned.runtime.version === version) {
      return { runner: [pinnedRuntimePath(other)], codeCache: false };
    }
  }
  throw new Error(
    `Cannot make the SEA blob for ${id}: it needs Node.js ${version} running here, and ` +
      `${runner.reason}. Install qemu-user-static and the cross libraries, or leave ${id} ` +
      `out with --targets.`,
  );
}

async function readStamp(path: string): Promise<Stamp | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
}

/** Hash of the build scripts themselves, so changing them rebuilds. */
async function buildScriptsHash(): Promise<string> {
  const parts = [];
  for (
    const name of [
      "bundle.ts",
      "host.ts",
      "mod.ts",
      "notices.ts",
      "postject_cli.ts",
      "sea.ts",
      "targets.ts",
    ]
  ) {
    parts.push(await Deno.readTextFile(join(ROOT, "build", name)));
  }
  return sha256(parts.join("\0"));
}

/**
 * The exact `--version` line of a `target` binary with Node.js `nodeVersion`
 * (the OpenSSL version is whatever that Node.js carries).
 */
export function versionPattern(target: TargetId, nodeVersion: string): RegExp {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(
    `^fleetprov ${escape(VERSION)} \\(linux-${target}; Node\\.js ${
      escape(nodeVersion)
    }, OpenSSL [0-9][^\\s)]*\\)\\n$`,
  );
}

/** Runs `--version` on a fresh binary: the expected line, nothing on stderr. */
async function verify(id: TargetId, path: string, nodeVersion: string): Promise<string | null> {
  const result = await runFor(id, path, ["--version"]);
  const want = versionPattern(id, nodeVersion);
  if (result.code === 0 && want.test(result.stdout) && result.stderr === "") return null;
  return `exit ${result.code}, stdout ${JSON.stringify(result.stdout.slice(0, 200))}, ` +
    `stderr ${JSON.stringify(result.stderr.slice(0, 400))}`;
}

async function buildTarget(
  id: TargetId,
  bundled: { path: string; appended: readonly AppendedBundle[] },
  options: {
    runtimePath: string;
    nodeVersion: string;
    outPath: string;
    cacheDir: string;
    codeCache: boolean;
    log: (line: string) => void;
  },
): Promise<Omit<BuiltTarget, "notices">> {
  const { runtimePath, nodeVersion, outPath, cacheDir, log } = options;
  const blobPath = join(cacheDir, `${id}.blob`);
  const maker = blobRunner(id, runtimePath, nodeVersion);
  const useCodeCache = maker.codeCache && options.codeCache;
  if (options.codeCache && !useCodeCache) {
    log(`${id}: cannot run ${id} code here, so the blob has no code cache (slower start-up)`);
  }
  await makeBlob(maker.runner, bundled.path, {
    blobPath,
    useCodeCache,
    execArgv: supportsExecArgv(nodeVersion) ? SEA_EXEC_ARGV : [],
  });
  const stripTool = findStrip(TARGETS[id].strip);
  const canRun = hostRunner(id).ok;
  const tmp = join(dirname(outPath), `.${id}.tmp`);
  const attempt = async (stripIt: boolean): Promise<string | null> => {
    await Deno.copyFile(runtimePath, tmp);
    await Deno.chmod(tmp, 0o755);
    if (stripIt && stripTool) await strip(stripTool, tmp);
    await injectBlob(tmp, blobPath);
    for (const { resource, path } of bundled.appended) await appendBundle(tmp, resource, path);
    return canRun ? await verify(id, tmp, nodeVersion) : null;
  };
  let stripped = stripTool !== null;
  try {
    let failure = await attempt(stripped);
    if (failure && stripped) {
      log(`${id}: the stripped binary does not run (${failure}); building it unstripped`);
      stripped = false;
      failure = await attempt(false);
    }
    if (failure) throw new Error(`fleetprov-linux-${id} does not run: ${failure}`);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
  if (!stripTool) log(`${id}: no strip tool (${TARGETS[id].strip.join(" or ")}): not stripped`);
  if (!canRun) log(`${id}: WARNING: cannot run ${id} code here, the binary is not verified`);
  await Deno.rename(tmp, outPath);
  const info = await Deno.stat(outPath);
  return {
    id,
    path: outPath,
    size: info.size,
    sha256: await sha256File(outPath),
    nodeVersion,
    stripped,
    verified: canRun,
    upToDate: false,
  };
}

function formatMb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Builds the requested single executables; see the module docs. */
export async function build(options: BuildOptions = {}): Promise<BuildReport> {
  const log = options.log ?? ((line: string) => console.error(line));
  const ids = options.targets ?? TARGET_IDS;
  const outDir = resolve(options.outDir ?? join(ROOT, "dist"));
  const cacheDir = join(ROOT, ".cache", "build");
  await Deno.mkdir(cacheDir, { recursive: true });
  await Deno.mkdir(outDir, { recursive: true });

  // One build at a time across processes (tests in parallel share dist/).
  using lockFile = await Deno.open(join(cacheDir, "lock"), { create: true, write: true });
  await lockFile.lock(true);

  const userRuntimes = options.runtimes ?? {};
  await checkPinnedRuntimes(ids.filter((id) => !userRuntimes[id]), log);
  const scriptsHash = await buildScriptsHash();

  // What each target is built from; targets with the same runtime share a bundle.
  const plans: { id: TargetId; runtimePath: string; nodeVersion: string; userRuntime: boolean }[] =
    [];
  for (const id of ids) {
    const userRuntime = userRuntimes[id];
    const runtimePath = userRuntime ? resolve(userRuntime) : pinnedRuntimePath(id);
    const nodeVersion = userRuntime
      ? await runtimeVersion(id, runtimePath)
      : TARGETS[id].runtime.version;
    if (options.skipUnbuildable && !userRuntime) {
      try {
        blobRunner(id, runtimePath, nodeVersion);
      } catch (error) {
        log(`*** SKIPPING ${id}: ${(error as Error).message} ***`);
        continue;
      }
    }
    plans.push({ id, runtimePath, nodeVersion, userRuntime: userRuntime !== undefined });
  }
  const runtimes = new Map<string, RuntimeLicense>();
  const runtimeKeys = new Map<TargetId, string>();
  for (const plan of plans) {
    const text = await runtimeLicenseText(plan.runtimePath);
    if (text === undefined) {
      log(`${plan.id}: WARNING: no LICENSE beside ${plan.runtimePath}; the notices link to it`);
    }
    const key = `${plan.nodeVersion}:${sha256(text ?? "")}`;
    const runtime = runtimes.get(key) ?? { version: plan.nodeVersion, targets: [], text };
    runtime.targets.push(`linux-${plan.id}`);
    runtimes.set(key, runtime);
    runtimeKeys.set(plan.id, key);
  }

  const bundles = new Map<
    string,
    {
      path: string;
      appended: AppendedBundle[];
      hash: string;
      notices: string;
      packages: BundledPackage[];
    }
  >();
  const allPackages = new Map<string, BundledPackage>();
  const built: BuiltTarget[] = [];
  for (const { id, runtimePath, nodeVersion, userRuntime } of plans) {
    const runtimeHash = userRuntime ? await sha256File(runtimePath) : TARGETS[id].runtime.sha256;
    const runtimeKey = runtimeKeys.get(id)!;
    let bundled = bundles.get(runtimeKey);
    if (!bundled) {
      const major = Number(nodeVersion.split(".")[0]);
      let notices = "";
      let bundledList: BundledPackage[] = [];
      // The emulator and lint ride at the end of the binary, each loaded only by its command.
      const appendedBundles: Awaited<ReturnType<typeof bundle>>[] = [];
      // One at a time: each bundle() stops esbuild's service when it ends.
      for (const m of EMBEDDED) {
        appendedBundles.push(await bundle(m.path, ROOT, { nodeMajor: major }));
      }
      const result = await bundle(join(ROOT, "main.ts"), ROOT, {
        nodeMajor: major,
        embedded: EMBEDDED,
        eagerCompile: true,
        // Nothing in the main script reads names (the X.509 library that does is the emulator's):
        // keeping them costs a call per function at every start.
        keepNames: false,
        // The clock's floor (src/clock/mod.ts): SOURCE_DATE_EPOCH, else the last commit's time.
        defines: { FLEETPROV_BUILD_TIME: JSON.stringify(await buildTimeIso()) },
        embedNotices: async (mainInputs) => {
          const inputs = [
            ...new Set([...mainInputs, ...appendedBundles.flatMap((b) => b.inputs)]),
          ].sort();
          const packages = await bundledPackages(ROOT, inputs);
          bundledList = packages;
          for (const p of packages) allPackages.set(`${p.name}@${p.version}`, p);
          notices = noticesText(packages, {
            version: VERSION,
            runtimes: [runtimes.get(runtimeKey)!],
          });
          return packNotices(notices);
        },
      });
      const path = join(cacheDir, `fleetprov-node${nodeVersion}-${bundles.size}.cjs`);
      await Deno.writeFile(path, result.code);
      const appended = await Promise.all(EMBEDDED.map(async ({ resource }, n) => {
        const at = join(
          cacheDir,
          `fleetprov-${
            resource.slice("FLEETPROV_".length).toLowerCase()
          }-node${nodeVersion}-${bundles.size}.cjs`,
        );
        await Deno.writeFile(at, appendedBundles[n].code);
        return { resource, path: at };
      }));
      bundled = {
        path,
        appended,
        hash: sha256(
          JSON.stringify([result.code, ...appendedBundles.map((b) => b.code)].map(sha256)),
        ),
        notices,
        packages: bundledList,
      };
      bundles.set(runtimeKey, bundled);
    }
    const outPath = join(outDir, `fleetprov-linux-${id}`);
    const stampPath = join(cacheDir, `${id}-${sha256(outDir).slice(0, 12)}.stamp.json`);
    const inputs = sha256(JSON.stringify({
      BUILD_FORMAT,
      bundle: bundled.hash,
      runtimeHash,
      nodeVersion,
      scriptsHash,
      strip: findStrip(TARGETS[id].strip),
      canRun: hostRunner(id).ok,
      codeCache: options.codeCache ?? true,
      outPath,
    }));
    const stamp = await readStamp(stampPath);
    const current = await Deno.stat(outPath).catch(() => null);
    if (
      !options.force && stamp && stamp.inputs === inputs && current &&
      current.size === stamp.size && current.mtime?.getTime() === stamp.mtime
    ) {
      built.push({ ...stamp.target, upToDate: true, notices: bundled.notices });
      log(`${id}: up to date (${relative(ROOT, outPath)}, ${formatMb(stamp.size)})`);
      continue;
    }
    if (userRuntime) log(`${id}: using your runtime ${runtimePath} (Node.js ${nodeVersion})`);
    const target = await buildTarget(id, bundled, {
      runtimePath,
      nodeVersion,
      outPath,
      cacheDir,
      codeCache: options.codeCache ?? true,
      log,
    });
    const info = await Deno.stat(outPath);
    await Deno.writeTextFile(
      stampPath,
      JSON.stringify({ inputs, size: info.size, mtime: info.mtime?.getTime(), target }),
    );
    built.push({ ...target, notices: bundled.notices });
    log(
      `${id}: built ${relative(ROOT, outPath)} (${formatMb(target.size)}, Node.js ${nodeVersion}` +
        `${target.stripped ? ", stripped" : ""}${target.verified ? ", runs" : ", NOT VERIFIED"})`,
    );
  }

  const noticesPath = join(outDir, "THIRD_PARTY_NOTICES");
  await Deno.writeTextFile(
    noticesPath,
    noticesText([...allPackages.values()], {
      version: VERSION,
      runtimes: [...runtimes.values()],
      withTargets: true,
    }),
  );
  const sumsPath = join(outDir, "SHA256SUMS");
  const sums = built.map((t) => `${t.sha256}  fleetprov-linux-${t.id}\n`).join("");
  await Deno.writeTextFile(sumsPath, sums);
  const layerPath = await writeYoctoLayer(outDir, {
    version: VERSION,
    binaries: built.map((t) => ({ id: t.id, sha256: t.sha256 })),
    licenseFiles: { license: join(ROOT, "LICENSE"), notices: noticesPath },
  });
  const debs = options.debs === false ? {} : await buildDebs(built, {
    outDir,
    cacheDir,
    skipUnbuildable: options.skipUnbuildable ?? false,
    log,
    inputsOf: (id) => {
      const key = runtimeKeys.get(id)!;
      return { packages: bundles.get(key)!.packages, runtime: runtimes.get(key)! };
    },
  });
  // The packages' checksums join the binaries' in SHA256SUMS.
  for (const path of Object.values(debs)) {
    await Deno.writeTextFile(sumsPath, `${await sha256File(path)}  ${basename(path)}\n`, {
      append: true,
    });
  }
  return { targets: built, sumsPath, layerPath, noticesPath, debs };
}

/** The build time the binaries carry (the clock's floor): the packages' timestamp, ISO 8601. */
export async function buildTimeIso(): Promise<string> {
  return new Date((await sourceDateEpoch()) * 1000).toISOString();
}

/**
 * Timestamp of the packages' files and changelog: SOURCE_DATE_EPOCH when set,
 * else the last commit's time (reproducible builds), else now.
 */
async function sourceDateEpoch(): Promise<number> {
  const fromEnv = Deno.env.get("SOURCE_DATE_EPOCH");
  if (fromEnv && /^\d+$/.test(fromEnv)) return Number(fromEnv);
  const git = await new Deno.Command("git", {
    args: ["log", "-1", "--format=%ct"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).output().catch(() => null);
  const text = git?.success ? new TextDecoder().decode(git.stdout).trim() : "";
  return /^\d+$/.test(text) ? Number(text) : Math.floor(Date.now() / 1000);
}

/** Builds (or keeps, when up to date) a .deb per built target. */
async function buildDebs(
  built: readonly BuiltTarget[],
  options: {
    outDir: string;
    cacheDir: string;
    skipUnbuildable: boolean;
    log: (line: string) => void;
    inputsOf: (id: TargetId) => { packages: BundledPackage[]; runtime: RuntimeLicense };
  },
): Promise<Partial<Record<TargetId, string>>> {
  const { log } = options;
  if (!findOnPath("dpkg-deb") || !findOnPath("readelf")) {
    const reason = "dpkg-deb or readelf is not on PATH (Debian packages dpkg, binutils)";
    if (options.skipUnbuildable) {
      log(`*** SKIPPING the Debian packages: ${reason} ***`);
      return {};
    }
    throw new Error(`Cannot build the Debian packages: ${reason}; or build with --no-deb.`);
  }
  const epoch = await sourceDateEpoch();
  const { helpText } = await import("../src/commands/help.ts");
  const help = helpText();
  const debScript = await Deno.readTextFile(join(ROOT, "build", "deb.ts"));
  const debs: Partial<Record<TargetId, string>> = {};
  for (const target of built) {
    const { packages, runtime } = options.inputsOf(target.id);
    const debPath = join(options.outDir, `fleetprov_${VERSION}_${DEB_ARCH[target.id]}.deb`);
    const inputs = sha256(JSON.stringify({
      binary: target.sha256,
      notices: sha256(target.notices),
      help: sha256(help),
      debScript: sha256(debScript),
      unit: sha256(await Deno.readFile(join(ROOT, "build", "systemd", "fleetprov.service"))),
      epoch,
      debPath,
    }));
    const stampPath = join(
      options.cacheDir,
      `deb-${target.id}-${sha256(debPath).slice(0, 12)}.stamp`,
    );
    const stamp = await Deno.readTextFile(stampPath).catch(() => "");
    const current = await Deno.stat(debPath).catch(() => null);
    if (current && stamp === `${inputs} ${current.size} ${current.mtime?.getTime()}`) {
      log(`${target.id}: ${relative(ROOT, debPath)} up to date`);
      debs[target.id] = debPath;
      continue;
    }
    await buildDeb({
      version: VERSION,
      target: target.id,
      binary: target.path,
      notices: target.notices,
      packages,
      runtime,
      help,
      epoch,
    }, { outDir: options.outDir, workDir: options.cacheDir });
    const info = await Deno.stat(debPath);
    await Deno.writeTextFile(stampPath, `${inputs} ${info.size} ${info.mtime?.getTime()}`);
    log(`${target.id}: built ${relative(ROOT, debPath)} (${formatMb(info.size)})`);
    debs[target.id] = debPath;
  }
  return debs;
}

function parseCli(args: string[]): BuildOptions {
  const { values } = parseArgs({
    args,
    options: {
      targets: { type: "string" },
      runtime: { type: "string", multiple: true },
      "out-dir": { type: "string" },
      force: { type: "boolean" },
      "no-code-cache": { type: "boolean" },
      "skip-unbuildable": { type: "boolean" },
      "no-deb": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(
      "usage: deno task build [--targets x64,arm64,armv7] [--runtime TARGET=PATH]... " +
        "[--out-dir DIR] [--force] [--no-code-cache] [--skip-unbuildable] [--no-deb]",
    );
    Deno.exit(0);
  }
  const runtimes: Partial<Record<TargetId, string>> = {};
  for (const spec of values.runtime ?? []) {
    const at = spec.indexOf("=");
    if (at < 1) throw new Error(`--runtime ${spec}: write it as TARGET=PATH, e.g. armv7=./node.`);
    runtimes[parseTargetId(spec.slice(0, at))] = spec.slice(at + 1);
  }
  return {
    targets: values.targets?.split(",").map((s) => parseTargetId(s.trim())),
    runtimes,
    outDir: values["out-dir"],
    force: values.force,
    codeCache: !values["no-code-cache"],
    skipUnbuildable: values["skip-unbuildable"],
    debs: !values["no-deb"],
  };
}

if (import.meta.main) {
  try {
    const report = await build(parseCli(Deno.args));
    console.log(await Deno.readTextFile(report.sumsPath));
  } catch (error) {
    console.error(`build failed: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}
