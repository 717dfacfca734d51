// SPDX-License-Identifier: Apache-2.0
/**
 * binfmt_misc for the second stage of debootstrap: ARM programs in a chroot
 * run under QEMU user-mode emulation only when the kernel hands them to it.
 *
 * binfmt_misc is machine-wide, so {@linkcode withBinfmt} changes only what is
 * missing and undoes exactly that: it mounts binfmt_misc if it is not mounted
 * (and unmounts it afterwards if no other entry appeared meanwhile), and
 * registers an entry of its own, named after this process, only when no
 * enabled entry already runs the architecture's programs (and removes it
 * afterwards). The entry is Debian's own (`/usr/lib/binfmt.d/qemu-*.conf`,
 * flags `F`: the interpreter is opened at registration, so it works inside
 * the chroot without copying QEMU there).
 *
 * @module
 */
import { join } from "node:path";
import { run } from "../nspawn.ts";

const BINFMT = "/proc/sys/fs/binfmt_misc";

/** Where qemu-user-static puts its binfmt.d entries. */
const BINFMT_D = "/usr/lib/binfmt.d";

/**
 * The binfmt.d file of a QEMU user-mode architecture: `qemu-<arch>.conf`
 * (Debian) or `qemu-<arch>-static.conf` (some Ubuntu releases).
 */
export function binfmtConf(qemuArch: string): string | undefined {
  for (const name of [`qemu-${qemuArch}.conf`, `qemu-${qemuArch}-static.conf`]) {
    if (exists(join(BINFMT_D, name))) return join(BINFMT_D, name);
  }
  return undefined;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Names of the registered entries (everything but `register` and `status`). */
function entries(): string[] {
  return [...Deno.readDirSync(BINFMT)]
    .map((entry) => entry.name)
    .filter((name) => name !== "register" && name !== "status");
}

/** The `:name:type:offset:magic:mask:interpreter:flags` line of Debian's entry. */
function debianEntry(qemuArch: string): string {
  const conf = binfmtConf(qemuArch);
  if (!conf) {
    throw new Error(
      `${BINFMT_D}/qemu-${qemuArch}.conf is missing: install the Debian package qemu-user-static.`,
    );
  }
  const line = Deno.readTextFileSync(conf).split("\n").find((l) => l.startsWith(":"));
  if (!line) throw new Error(`${conf} holds no binfmt entry.`);
  return line.trim();
}

/**
 * True when an enabled entry already hands this magic to an interpreter it
 * opened at registration (flag F), which is what a chroot needs. An entry
 * without F would look the interpreter up inside the chroot; then this
 * module registers its own, which the kernel tries first (newest first).
 */
function alreadyHandled(magic: string): boolean {
  for (const name of entries()) {
    const text = Deno.readTextFileSync(join(BINFMT, name));
    if (!text.startsWith("enabled")) continue;
    const registered = /^magic ([0-9a-f]+)$/m.exec(text)?.[1];
    const flags = /^flags: ?(\S*)$/m.exec(text)?.[1] ?? "";
    if (registered === magic && flags.includes("F")) return true;
  }
  return false;
}

/** The hex magic of an entry line (`\x7f\x45...`), as binfmt_misc's status files print it. */
function hexMagic(line: string): string {
  const magic = line.split(":")[4];
  return magic.replace(/\\x([0-9a-fA-F]{2})/g, "$1").toLowerCase();
}

/**
 * Runs `fn` with the kernel able to run `qemuArch` ("aarch64", "arm")
 * programs, and leaves binfmt_misc as it found it. `log` hears what changed.
 */
export async function withBinfmt<T>(
  qemuArch: string,
  fn: () => Promise<T>,
  options: { log?: (line: string) => void } = {},
): Promise<T> {
  const log = options.log ?? (() => {});
  const line = debianEntry(qemuArch);
  let mounted = false;
  let registered: string | undefined;
  if (!exists(join(BINFMT, "register"))) {
    await run("mount", ["-t", "binfmt_misc", "binfmt_misc", BINFMT]);
    mounted = true;
    log(`mounted binfmt_misc on ${BINFMT}`);
  }
  try {
    if (!alreadyHandled(hexMagic(line))) {
      registered = `fleetprov-${qemuArch}-${Deno.pid}`;
      const fields = line.split(":");
      fields[1] = registered;
      Deno.writeTextFileSync(join(BINFMT, "register"), fields.join(":"));
      log(`registered binfmt entry ${registered}`);
    }
    return await fn();
  } finally {
    if (registered) {
      Deno.writeTextFileSync(join(BINFMT, registered), "-1");
      log(`removed binfmt entry ${registered}`);
    }
    if (mounted && entries().length === 0) {
      await run("umount", [BINFMT]);
      log(`unmounted binfmt_misc`);
    }
  }
}
