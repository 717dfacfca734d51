// SPDX-License-Identifier: Apache-2.0
/**
 * A Debian rootfs booted with systemd-nspawn, for tests of the systemd units
 * under a real systemd as PID 1.
 *
 * The rootfs comes from debootstrap, from the Debian mirror this machine's
 * apt uses, and is cached under .cache/nspawn/ keyed by what went into it;
 * each test boots it through its own overlayfs, so the cache stays clean. The
 * container shares the host's network namespace (the emulator listens on the
 * host's loopback). As root only.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { runCommand, type RunResult } from "../../build/host.ts";
import { ROOT } from "./mod.ts";

/** What debootstrap installs: systemd as init, nothing else beyond minbase. */
const SUITE = "bookworm";
const VARIANT = "minbase";
/**
 * systemd as PID 1, and the libraries the release binary needs beyond minbase
 * (the .deb's Depends; Node.js 26 links libatomic on every architecture).
 */
const INCLUDE = ["systemd-sysv", "libstdc++6", "libgcc-s1", "libatomic1"];
/** Bump when the preparation after debootstrap changes. */
const IMAGE_FORMAT = 1;

/** Tools the container tests need, with their Debian packages. */
export const NSPAWN_TOOLS = [
  ["/usr/sbin/debootstrap", "debootstrap"],
  ["/usr/bin/systemd-nspawn", "systemd-container"],
  ["/usr/bin/nsenter", "util-linux"],
  ["/usr/share/keyrings/debian-archive-keyring.gpg", "debian-archive-keyring"],
] as const;

/**
 * The Debian mirror of this machine's apt sources (FLEETPROV_DEBIAN_MIRROR
 * overrides it): the first `deb` source of a Debian release suite (a URI
 * ending in /debian, not the security archive); deb.debian.org when there is
 * none, e.g. on Ubuntu.
 */
export function debianMirror(): string {
  const override = Deno.env.get("FLEETPROV_DEBIAN_MIRROR");
  if (override) return override;
  const files = ["/etc/apt/sources.list"];
  try {
    for (const entry of Deno.readDirSync("/etc/apt/sources.list.d")) {
      if (/\.(list|sources)$/.test(entry.name)) {
        files.push(join("/etc/apt/sources.list.d", entry.name));
      }
    }
  } catch { /* no sources.list.d */ }
  for (const file of files.sort()) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    const sources = file.endsWith(".sources") ? deb822Sources(text) : oneLineSources(text);
    for (const source of sources) {
      const release = source.suites.some((suite) => /^[a-z]+$/.test(suite));
      if (source.type === "deb" && release && /\/debian\/*$/.test(source.uri)) {
        return source.uri.replace(/\/+$/, "");
      }
    }
  }
  return "http://deb.debian.org/debian";
}

interface AptSource {
  type: string;
  uri: string;
  suites: string[];
}

function oneLineSources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").replace(/\[[^\]]*\]/, "").trim();
    const [type, uri, suite] = line.split(/\s+/);
    if (type && uri && suite) sources.push({ type, uri, suites: [suite] });
  }
  return sources;
}

function deb822Sources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split("\n")) {
      const match = /^([\w-]+):\s*(.*)$/.exec(line);
      if (match) fields.set(match[1].toLowerCase(), match[2].trim());
    }
    if (fields.get("enabled") === "no") continue;
    const suites = (fields.get("suites") ?? "").split(/\s+/).filter(Boolean);
    for (const type of (fields.get("types") ?? "").split(/\s+/)) {
      for (const uri of (fields.get("uris") ?? "").split(/\s+/).filter(Boolean)) {
        sources.push({ type, uri, suites });
      }
    }
  }
  return sources;
}

/** Runs a command to completion; its output becomes the error message on failure. */
export async function run(
  command: string,
  args: string[],
  options: { allowFailure?: boolean } = {},
): Promise<RunResult> {
  const result = await runCommand(command, args);
  if (!options.allowFailure && result.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
  }
  return result;
}

/**
 * The cached rootfs for the package list (made with debootstrap when
 * missing). `log` hears how long debootstrap took.
 */
export async function cachedRootfs(log: (line: string) => void): Promise<string> {
  const mirror = debianMirror();
  const key = createHash("sha256")
    .update(JSON.stringify({ SUITE, VARIANT, INCLUDE, mirror, IMAGE_FORMAT }))
    .digest("hex").slice(0, 12);
  const cacheDir = join(ROOT, ".cache", "nspawn");
  const rootfs = join(cacheDir, `${SUITE}-${key}`);
  try {
    if (Deno.statSync(join(rootfs, "usr", "lib", "systemd", "systemd")).isFile) return rootfs;
  } catch { /* not cached yet */ }
  await Deno.mkdir(cacheDir, { recursive: true });
  const partial = `${rootfs}.partial-${Deno.pid}`;
  const started = performance.now();
  await run("/usr/sbin/debootstrap", [
    `--variant=${VARIANT}`,
    `--include=${INCLUDE.join(",")}`,
    SUITE,
    partial,
    mirror,
  ]);
  const seconds = (performance.now() - started) / 1000;
  // debootstrap writes no /etc/hosts: "localhost" must resolve in the container.
  await Deno.writeTextFile(
    join(partial, "etc", "hosts"),
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
  );
  for await (const entry of Deno.readDir(join(partial, "var", "cache", "apt", "archives"))) {
    if (entry.name.endsWith(".deb")) {
      await Deno.remove(join(partial, "var", "cache", "apt", "archives", entry.name));
    }
  }
  await Deno.rename(partial, rootfs);
  log(
    `debootstrap ${SUITE} ${VARIANT}+${INCLUDE.join(",")} from ${mirror}: ${
      seconds.toFixed(1)
    } s (cached in ${rootfs})`,
  );
  return rootfs;
}

/** A rootfs of its own for one test: the cached one under an overlayfs. */
export class Overlay {
  /** The merged tree: write here to change the container's files. */
  readonly root: string;
  readonly #dir: string;

  private constructor(dir: string) {
    this.#dir = dir;
    this.root = join(dir, "merged");
  }

  /** Mounts `lower` read-only under a fresh writable layer. */
  static async mount(lower: string): Promise<Overlay> {
    const dir = await Deno.makeTempDir({ prefix: "fleetprov-nspawn-" });
    for (const name of ["upper", "work", "merged"]) await Deno.mkdir(join(dir, name));
    await run("mount", [
      "-t",
      "overlay",
      "overlay",
      "-o",
      `lowerdir=${lower},upperdir=${join(dir, "upper")},workdir=${join(dir, "work")}`,
      join(dir, "merged"),
    ]);
    return new Overlay(dir);
  }

  /** Unmounts and deletes the writable layer. */
  async remove(): Promise<void> {
    await run("umount", [this.root]);
    await Deno.remove(this.#dir, { recursive: true });
  }
}

/** What `systemctl show` says about a unit, property by property. */
export type UnitProperties = Record<string, string>;

/** A journal entry, as `journalctl -o json` prints it. */
export type JournalEntry = Record<string, string | number[] | undefined>;

/** A booted container: systemd as PID 1, sharing the host's network. */
export class Container {
  readonly #process: Deno.ChildProcess;
  readonly #leader: number;
  readonly #done: Promise<Deno.CommandStatus>;

  private constructor(process: Deno.ChildProcess, leader: number) {
    this.#process = process;
    this.#leader = leader;
    this.#done = process.status;
  }

  /**
   * Boots `root` with `systemd-nspawn -b --register=no --keep-unit`, binding
   * the files of `binds` (host path → container path) read-only.
   */
  static async boot(root: string, binds: Record<string, string>): Promise<Container> {
    const process = new Deno.Command("/usr/bin/systemd-nspawn", {
      args: [
        "--quiet",
        "--boot",
        "--register=no",
        "--keep-unit",
        "--console=pipe",
        "--machine=fleetprov-test",
        `--directory=${root}`,
        ...Object.entries(binds).map(([host, inside]) => `--bind-ro=${host}:${inside}`),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    // The container's PID 1 is nspawn's child, once it has become systemd
    // (before that, its namespaces are still being set up).
    const leader = await waitFor("the container's systemd", async () => {
      for await (const entry of Deno.readDir("/proc")) {
        if (!/^\d+$/.test(entry.name)) continue;
        try {
          const status = await Deno.readTextFile(`/proc/${entry.name}/status`);
          const child = new RegExp(`^PPid:\\s+${process.pid}$`, "m").test(status);
          if (child && /^Name:\s+systemd$/m.test(status)) return Number(entry.name);
        } catch { /* gone */ }
      }
      return undefined;
    });
    return new Container(process, leader);
  }

  /** Runs a command inside the container (its mount, UTS, IPC and PID namespaces). */
  exec(
    command: string[],
    options: { allowFailure?: boolean } = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return run("nsenter", [
      `--target=${this.#leader}`,
      "--mount",
      "--uts",
      "--ipc",
      "--pid",
      "--",
      ...command,
    ], options);
  }

  /** Waits until the boot is finished (systemd's own `is-system-running --wait`). */
  async booted(): Promise<string> {
    return await waitFor("the end of the boot", async () => {
      const result = await this.exec(["systemctl", "is-system-running", "--wait"], {
        allowFailure: true,
      });
      const state = result.stdout.trim();
      return ["running", "degraded"].includes(state) ? state : undefined;
    });
  }

  /** `systemctl show` of a unit (or of the manager, with no unit). */
  async show(unit?: string): Promise<UnitProperties> {
    const result = await this.exec(["systemctl", "show", ...(unit ? [unit] : [])]);
    const properties: UnitProperties = {};
    for (const line of result.stdout.split("\n")) {
      const at = line.indexOf("=");
      if (at > 0) properties[line.slice(0, at)] = line.slice(at + 1);
    }
    return properties;
  }

  /** Waits until `predicate` holds for the properties of `unit`, and returns them. */
  waitForUnit(
    unit: string,
    what: string,
    predicate: (properties: UnitProperties) => boolean,
  ): Promise<UnitProperties> {
    return waitFor(`${unit}: ${what}`, async () => {
      const properties = await this.show(unit);
      return predicate(properties) ? properties : undefined;
    });
  }

  /** This boot's journal of `unit` (its own lines and systemd's about it). */
  async journal(unit: string): Promise<JournalEntry[]> {
    const result = await this.exec([
      "journalctl",
      "--boot",
      `--unit=${unit}`,
      "--output=json",
      "--no-pager",
    ]);
    return result.stdout.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
  }

  /** Powers the container off (SIGTERM to nspawn asks systemd to) and waits for it. */
  async poweroff(): Promise<void> {
    try {
      this.#process.kill("SIGTERM");
    } catch { /* already gone */ }
    const timeout = setTimeout(() => {
      try {
        this.#process.kill("SIGKILL");
      } catch { /* gone */ }
    }, 30_000);
    try {
      await this.#done;
    } finally {
      clearTimeout(timeout);
    }
  }
}

/** The text of a journal entry's MESSAGE (which may be an array of bytes). */
export function message(entry: JournalEntry): string {
  const value = entry.MESSAGE;
  if (Array.isArray(value)) return new TextDecoder().decode(new Uint8Array(value));
  return value ?? "";
}

/**
 * Polls `check` every 100 ms until it returns a value, for at most
 * `timeoutMs`; the error names `what` was waited for.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
