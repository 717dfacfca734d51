// SPDX-License-Identifier: Apache-2.0
/**
 * Debian bookworm board images for the full-system QEMU tests: a root file
 * system made by debootstrap from the Debian mirror for arm64 or armhf, with
 * its Debian kernel and initrd, systemd as PID 1, systemd-networkd doing DHCP
 * on the QEMU user network, and root logged in on the serial console.
 *
 * Building one takes minutes (the second stage of debootstrap runs under
 * QEMU user-mode emulation), so images are cached outside the clone, in
 * `${FLEETPROV_BOARD_CACHE:-/var/cache/fleetprov/boards}/<arch>-<key>/`, where
 * the key hashes every input: suite, variant, packages, architecture, kernel
 * flavour, mirror, and this file's own text. A cache entry is built under a
 * lock into a temporary directory and renamed into place when complete, so
 * concurrent runs wait for one build and an interrupted build leaves nothing
 * that looks finished. Tests boot a qcow2 overlay of the cached disk and never
 * write to it. Each use touches the entry's lock file; entries of the same
 * architecture under another key (an older image script, another mirror)
 * that no run has used for an hour, and partial builds whose process is gone,
 * are removed ({@linkcode pruneEntries}): an entry is about 0.5 to 0.75 GB.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { debianMirror, run } from "../nspawn.ts";
import { withBinfmt } from "./binfmt.ts";

/** A board architecture: its Debian port, QEMU machine and kernel flavour. */
export interface BoardArch {
  /** Debian architecture. */
  id: "arm64" | "armhf";
  /** fleetprov's release target for it (build/targets.ts). */
  target: "arm64" | "armv7";
  /** Full-system emulator and CPU (`-M virt`). */
  qemuSystem: string;
  cpu: string;
  /** QEMU user-mode architecture (binfmt entry) for the second stage. */
  qemuUser: string;
  /** Debian's kernel metapackage for `-M virt`. */
  kernelPackage: string;
}

/** The two board architectures: a Cortex-A53 (Raspberry Pi 3 class) and a Cortex-A15 (ARMv7). */
export const BOARD_ARCHS: Readonly<Record<BoardArch["id"], BoardArch>> = {
  arm64: {
    id: "arm64",
    target: "arm64",
    qemuSystem: "/usr/bin/qemu-system-aarch64",
    cpu: "cortex-a53",
    qemuUser: "aarch64",
    kernelPackage: "linux-image-arm64",
  },
  armhf: {
    id: "armhf",
    target: "armv7",
    qemuSystem: "/usr/bin/qemu-system-arm",
    cpu: "cortex-a15",
    qemuUser: "arm",
    kernelPackage: "linux-image-armmp-lpae",
  },
};

const SUITE = "bookworm";
const VARIANT = "minbase";
/**
 * On top of minbase: systemd as PID 1 with udev and kmod, the initrd
 * builder, and iproute2. fleetprov's own dependencies beyond minbase
 * (libatomic1) are not installed: apt installs them with the .deb, from the
 * package lists and archive the image carries (see {@linkcode DOWNLOAD_ONLY}).
 */
const INCLUDE = ["systemd", "systemd-sysv", "udev", "kmod", "initramfs-tools", "iproute2"];
/**
 * Packages fetched into /var/cache/apt/archives but not installed: what
 * `apt install ./fleetprov_*.deb` needs beyond the image, so that it works
 * offline as it would online.
 */
const DOWNLOAD_ONLY = ["libatomic1"];
/** Modules the initrd loads: the virtio PCI disk (`-M virt`, if=virtio) and ext4. */
const INITRD_MODULES = ["virtio_pci", "virtio_mmio", "virtio_blk", "ext4", "crc32c_generic"];
/** The board's disk size (sparse). */
const DISK_SIZE = "2G";

/** Tools the image build needs, with their Debian packages. */
export const IMAGE_TOOLS = [
  ["/usr/sbin/debootstrap", "debootstrap"],
  ["/usr/sbin/mkfs.ext4", "e2fsprogs"],
  ["/usr/bin/qemu-img", "qemu-utils"],
  ["/usr/bin/qemu-aarch64-static", "qemu-user-static"],
  ["/usr/bin/systemctl", "systemd"],
  ["/usr/share/keyrings/debian-archive-keyring.gpg", "debian-archive-keyring"],
] as const;

/** A cached board image. */
export interface BoardImage {
  arch: BoardArch;
  /** The cache entry's directory. */
  dir: string;
  /** The root file system, ext4 in qcow2: boot an overlay of it, never it. */
  disk: string;
  kernel: string;
  initrd: string;
  /** Versions inside (manifest.json). */
  kernelVersion: string;
  systemdVersion: string;
  /** Seconds its build took (a cold cache's cost). */
  buildSeconds: number;
  /** True when this run built it, false when it came from the cache. */
  builtNow: boolean;
}

interface Manifest {
  kernelVersion: string;
  systemdVersion: string;
  mirror: string;
  builtAt: string;
  buildSeconds: number;
  steps: Record<string, number>;
}

/** The cache root: FLEETPROV_BOARD_CACHE, else /var/cache/fleetprov/boards. */
export function boardCacheRoot(): string {
  return Deno.env.get("FLEETPROV_BOARD_CACHE") || "/var/cache/fleetprov/boards";
}

/** The cache key of an architecture's image: a hash of everything that goes into it. */
export function imageKey(arch: BoardArch, mirror: string): string {
  const script = Deno.readTextFileSync(new URL(import.meta.url).pathname);
  return createHash("sha256")
    .update(JSON.stringify({
      SUITE,
      VARIANT,
      INCLUDE,
      DOWNLOAD_ONLY,
      INITRD_MODULES,
      DISK_SIZE,
      arch,
      mirror,
      script,
    }))
    .digest("hex").slice(0, 16);
}

/**
 * The cached image of `arch`, built first when the cache has none. `log`
 * hears the build's steps and their durations.
 */
export async function boardImage(
  arch: BoardArch,
  log: (line: string) => void,
): Promise<BoardImage> {
  const mirror = debianMirror();
  const root = boardCacheRoot();
  const name = `${arch.id}-${SUITE}-${imageKey(arch, mirror)}`;
  const dir = join(root, name);
  await Deno.mkdir(root, { recursive: true });
  const lockPath = join(root, `${name}.lock`);
  const lock = await Deno.open(lockPath, { create: true, write: true });
  const now = new Date();
  await Deno.utime(lockPath, now, now);
  for (const pruned of pruneEntries(root, { arch: arch.id, keep: name })) {
    log(`${arch.id}: removed ${pruned} from the board cache (unused for an hour)`);
  }
  const cached = readEntry(arch, dir);
  if (cached) {
    lock.close();
    return cached;
  }
  try {
    await lock.lock(true);
    // Another run may have built it while this one waited for the lock.
    const built = readEntry(arch, dir);
    if (built) return built;
    const partial = `${dir}.partial-${Deno.pid}`;
    await Deno.remove(partial, { recursive: true }).catch(() => {});
    try {
      const manifest = await buildImage(arch, partial, { mirror, log });
      await Deno.rename(partial, dir);
      log(`${arch.id}: image built in ${manifest.buildSeconds.toFixed(0)} s, cached in ${dir}`);
    } catch (error) {
      await Deno.remove(partial, { recursive: true }).catch(() => {});
      throw error;
    }
    return { ...readEntry(arch, dir)!, builtNow: true };
  } finally {
    lock.close();
  }
}

/** How long an entry of another key may go unused before {@linkcode pruneEntries} removes it. */
export const IDLE_ENTRY_MS = 3_600_000;

/**
 * Removes from the cache `root` the entries of architecture `arch` other than
 * `keep` whose lock file (touched by every use) is older than
 * {@linkcode IDLE_ENTRY_MS}, with their lock files, and the partial builds of
 * `arch` whose process is gone. Returns the names removed.
 */
export function pruneEntries(
  root: string,
  options: { arch: string; keep: string; now?: number },
): string[] {
  const now = options.now ?? Date.now();
  const removed: string[] = [];
  for (const entry of Deno.readDirSync(root)) {
    const name = entry.name;
    if (!entry.isDirectory || !name.startsWith(`${options.arch}-`) || name === options.keep) {
      continue;
    }
    const partial = /\.partial-(\d+)$/.exec(name);
    let stale: boolean;
    if (partial) {
      stale = !existsSync(`/proc/${partial[1]}`);
    } else {
      const lockPath = join(root, `${name}.lock`);
      const used = existsSync(lockPath) ? Deno.statSync(lockPath) : Deno.statSync(join(root, name));
      stale = now - (used.mtime?.getTime() ?? 0) > IDLE_ENTRY_MS;
      if (stale && existsSync(lockPath)) Deno.removeSync(lockPath);
    }
    if (!stale) continue;
    Deno.removeSync(join(root, name), { recursive: true });
    removed.push(name);
  }
  return removed;
}

/** The entry in `dir` if it is complete (its manifest is written last). */
function readEntry(arch: BoardArch, dir: string): BoardImage | undefined {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(Deno.readTextFileSync(join(dir, "manifest.json")));
  } catch {
    return undefined;
  }
  return {
    arch,
    dir,
    disk: join(dir, "disk.qcow2"),
    kernel: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd.img"),
    kernelVersion: manifest.kernelVersion,
    systemdVersion: manifest.systemdVersion,
    buildSeconds: manifest.buildSeconds,
    builtNow: false,
  };
}

/** Times one step of the build. */
async function step<T>(
  steps: Record<string, number>,
  name: string,
  log: (line: string) => void,
  fn: () => Promise<T>,
): Promise<T> {
  const started = performance.now();
  const value = await fn();
  steps[name] = Math.round((performance.now() - started) / 100) / 10;
  log(`${name}: ${steps[name]} s`);
  return value;
}

/** Builds an image into `out` (a fresh directory); returns its manifest. */
async function buildImage(
  arch: BoardArch,
  out: string,
  options: { mirror: string; log: (line: string) => void },
): Promise<Manifest> {
  const { mirror } = options;
  const log = (line: string) => options.log(`${arch.id}: ${line}`);
  const started = performance.now();
  const steps: Record<string, number> = {};
  const rootfs = join(out, "rootfs");
  await Deno.mkdir(out, { recursive: true });
  await step(steps, "debootstrap first stage", log, () =>
    run("/usr/sbin/debootstrap", [
      "--foreign",
      `--arch=${arch.id}`,
      `--variant=${VARIANT}`,
      `--include=${[...INCLUDE, arch.kernelPackage].join(",")}`,
      SUITE,
      rootfs,
      mirror,
    ]));
  await prepareInitrd(rootfs);
  const env = { DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C.UTF-8", PATH: SYSTEM_PATH };
  await withBinfmt(arch.qemuUser, async () => {
    await step(
      steps,
      "debootstrap second stage (QEMU user mode)",
      log,
      () => chroot(rootfs, ["/debootstrap/debootstrap", "--second-stage"], env),
    );
    await step(steps, "apt lists and offline archive", log, async () => {
      await emptyArchives(rootfs);
      await chroot(rootfs, ["apt-get", "update", "-qq"], env);
      await chroot(rootfs, ["apt-get", "install", "-qq", "--download-only", ...DOWNLOAD_ONLY], env);
    });
  }, { log });
  await configure(rootfs);
  const kernelVersion = await copyBoot(rootfs, out);
  const systemdVersion = packageVersion(rootfs, "systemd");
  await step(steps, "ext4 disk image", log, async () => {
    const raw = join(out, "disk.img");
    await run("truncate", ["-s", DISK_SIZE, raw]);
    await run("/usr/sbin/mkfs.ext4", ["-q", "-F", "-L", "board", "-d", rootfs, raw]);
    await run("/usr/bin/qemu-img", ["convert", "-O", "qcow2", raw, join(out, "disk.qcow2")]);
    await Deno.remove(raw);
  });
  await Deno.remove(rootfs, { recursive: true });
  const manifest: Manifest = {
    kernelVersion,
    systemdVersion,
    mirror,
    builtAt: new Date().toISOString(),
    buildSeconds: Math.round((performance.now() - started) / 1000),
    steps,
  };
  await Deno.writeTextFile(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

const SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

function chroot(rootfs: string, command: string[], env: Record<string, string>) {
  return run("/usr/bin/env", [
    "-i",
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    "chroot",
    rootfs,
    ...command,
  ]);
}

/**
 * A small initrd: Debian's default (MODULES=most) takes ten minutes to build
 * under emulation; the board needs only the virtio disk and ext4. Written
 * before the second stage, which builds the initrd when it installs the
 * kernel (a hook, not /etc/initramfs-tools/modules, which is a conffile).
 */
async function prepareInitrd(rootfs: string): Promise<void> {
  const conf = join(rootfs, "etc", "initramfs-tools");
  await Deno.mkdir(join(conf, "conf.d"), { recursive: true });
  await Deno.mkdir(join(conf, "hooks"), { recursive: true });
  await Deno.writeTextFile(join(conf, "conf.d", "board.conf"), "MODULES=list\n");
  await Deno.writeTextFile(
    join(conf, "hooks", "board"),
    [
      "#!/bin/sh",
      "# The board's root disk: virtio (PCI on -M virt) and ext4.",
      'case "$1" in prereqs) exit 0 ;; esac',
      ". /usr/share/initramfs-tools/hook-functions",
      `for module in ${INITRD_MODULES.join(" ")}; do force_load "$module"; done`,
      "",
    ].join("\n"),
  );
  await Deno.chmod(join(conf, "hooks", "board"), 0o755);
}

/** Removes the .debs debootstrap left in the apt archive. */
async function emptyArchives(rootfs: string): Promise<void> {
  const archives = join(rootfs, "var", "cache", "apt", "archives");
  for await (const entry of Deno.readDir(archives)) {
    if (entry.name.endsWith(".deb")) await Deno.remove(join(archives, entry.name));
  }
}

/**
 * The board's configuration: host name, fstab, DHCP on the first Ethernet
 * port with systemd-networkd, and root logged in on a second serial line, a
 * virtio console (hvc0): the test's way in, as a factory station's debug
 * cable. The first serial port (ttyAMA0) stays the kernel's console, a log
 * the test only reads.
 */
async function configure(rootfs: string): Promise<void> {
  const write = (path: string, text: string) => Deno.writeTextFile(join(rootfs, path), text);
  await write("etc/hostname", "board\n");
  await write(
    "etc/hosts",
    "127.0.0.1\tlocalhost\n127.0.1.1\tboard\n::1\tlocalhost ip6-localhost ip6-loopback\n",
  );
  await write("etc/fstab", "/dev/vda\t/\text4\trw,errors=remount-ro\t0\t1\n");
  await Deno.mkdir(join(rootfs, "etc/systemd/network"), { recursive: true });
  await write(
    "etc/systemd/network/80-board.network",
    "[Match]\nName=e*\n\n[Network]\nDHCP=ipv4\n",
  );
  const getty = join(rootfs, "etc/systemd/system/serial-getty@hvc0.service.d");
  await Deno.mkdir(getty, { recursive: true });
  await Deno.writeTextFile(
    join(getty, "autologin.conf"),
    "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 - $TERM\n",
  );
  await run("/usr/bin/systemctl", [`--root=${rootfs}`, "enable", "systemd-networkd.service"]);
  await run("/usr/bin/systemctl", [`--root=${rootfs}`, "enable", "serial-getty@hvc0.service"]);
  // A persistent journal: the boot before a power cut can be read after it.
  await Deno.mkdir(join(rootfs, "var/log/journal"), { recursive: true });
}

/** Copies the kernel and initrd out of /boot (QEMU loads them, as a board's boot loader would). */
async function copyBoot(rootfs: string, out: string): Promise<string> {
  const versions = [...Deno.readDirSync(join(rootfs, "lib", "modules"))].map((e) => e.name);
  if (versions.length !== 1) {
    throw new Error(`Expected one kernel in the image, found ${versions}.`);
  }
  const [version] = versions;
  await Deno.copyFile(join(rootfs, "boot", `vmlinuz-${version}`), join(out, "vmlinuz"));
  await Deno.copyFile(join(rootfs, "boot", `initrd.img-${version}`), join(out, "initrd.img"));
  return version;
}

/** The installed version of a package, from dpkg's status file. */
function packageVersion(rootfs: string, name: string): string {
  const status = Deno.readTextFileSync(join(rootfs, "var", "lib", "dpkg", "status"));
  for (const stanza of status.split("\n\n")) {
    if (!new RegExp(`^Package: ${name}$`, "m").test(stanza)) continue;
    const version = /^Version: (.+)$/m.exec(stanza)?.[1];
    if (version) return version;
  }
  throw new Error(`${name} is not installed in the image.`);
}
