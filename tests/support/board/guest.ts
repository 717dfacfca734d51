// SPDX-License-Identifier: Apache-2.0
/**
 * What a board says about itself, read from the guest's side: systemd's view
 * of the units, fleetprov's journal, and the files on the board's disk
 * (copied out over the serial console with tar while it runs, or read from
 * the disk image after a power cut, as the board's next mount will see it).
 * Then the checks of those files: nothing empty or cut short, the runtime
 * config consistent with the files it names.
 *
 * @module
 */
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { join } from "node:path";
import type { StatusReport } from "../../../src/commands/status.ts";
import { run } from "../nspawn.ts";
import { listFiles, modeOf } from "../fs.ts";
import type { Board } from "./machine.ts";

/** fleetprov's state directory on the board (the unit's HOME is /root). */
export const STATE_DIR = "/root/.aws-iot-device-client";
/** The runtime config, the Device Client's view. */
export const RUNTIME_CONFIG = `${STATE_DIR}/aws-iot-device-client-runtime.conf`;
/** fleetprov's journal. */
export const JOURNAL = `${STATE_DIR}/fleetprov-journal.json`;

/** The config file the .deb's units name (README "Debian packages"). */
export const CONFIG_FILE = "/etc/fleetprov/fleetprov.conf";
/** The rotation journal, and after a rotation its record (README "Rotation"). */
export const ROTATION_JOURNAL = `${STATE_DIR}/fleetprov-rotation.json`;

/** `fleetprov status --output json` as run on the board, with the board's clock around it. */
export interface BoardStatusRun {
  code: number;
  report: StatusReport;
  stderr: string;
  /** The board's clock (epoch seconds) just before and just after. */
  clock: [number, number];
}

/**
 * `fleetprov status --config-file /etc/fleetprov/fleetprov.conf --output
 * json` in root's shell on the board (HOME=/root, as the units have it).
 */
export async function statusOn(board: Board): Promise<BoardStatusRun> {
  const result = await board.sh(
    `date -u +%s; fleetprov status --config-file ${CONFIG_FILE} --output json; r=$?; ` +
      "date -u +%s; exit $r",
  );
  const lines = result.text.trim().split("\n");
  if (lines.length !== 3) {
    throw new Error(`fleetprov status printed more than one line:\n${result.text}${result.stderr}`);
  }
  return {
    code: result.code,
    report: JSON.parse(lines[1]),
    stderr: result.stderr,
    clock: [Number(lines[0]), Number(lines[2])],
  };
}

/** `systemctl show` of a unit, property by property. */
export type Unit = Record<string, string>;

/** One entry of `journalctl -o json`. */
export type JournalEntry = Record<string, unknown>;

/** `systemctl show UNIT` on the board. */
export async function unit(board: Board, name: string): Promise<Unit> {
  const text = await board.check(`systemctl show ${name}`);
  const properties: Unit = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) properties[line.slice(0, at)] = line.slice(at + 1);
  }
  return properties;
}

/** This boot's (or, with `boot` -1, the previous boot's) journal entries of fleetprov.service. */
export async function journal(board: Board, boot = 0): Promise<JournalEntry[]> {
  const text = await board.check(
    `journalctl --no-pager -o json -b ${boot} -u fleetprov.service`,
  );
  return text.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
}

/** The text of an entry's MESSAGE (journald gives bytes as an array). */
export function messageOf(entry: JournalEntry): string {
  const value = entry.MESSAGE;
  if (Array.isArray(value)) return new TextDecoder().decode(new Uint8Array(value as number[]));
  return typeof value === "string" ? value : "";
}

/** fleetprov's own lines in journal entries. */
export function fleetprovLines(entries: JournalEntry[]): string[] {
  return entries.filter((e) => e.SYSLOG_IDENTIFIER === "fleetprov").map(messageOf);
}

/**
 * Waits on the board until fleetprov-provisioned.target is active; fails
 * (with fleetprov's journal) if fleetprov.service fails for good first, or if
 * a run of fleetprov that exited 0 still left the unit failed (then the
 * target never comes, however often systemd restarts it).
 */
export async function waitProvisioned(board: Board, timeoutMs = 420_000): Promise<void> {
  const show = (property: string) => `"$(systemctl show -P ${property} fleetprov.service)"`;
  const result = await board.sh(
    "until systemctl -q is-active fleetprov-provisioned.target; do " +
      `test ${show("ActiveState")} = failed && exit 1; ` +
      `test ${show("ExecMainStatus")} = 0 && test ${show("Result")} != success && exit 2; ` +
      "sleep 0.5; done",
    { timeoutMs },
  );
  if (result.code !== 0) {
    const service = await unit(board, "fleetprov.service");
    const entries = await journal(board);
    throw new Error(
      `fleetprov.service ${
        result.code === 1 ? "failed" : "ran fleetprov successfully but the unit failed"
      } on the board (Result=${service.Result}, ExecMainStatus=${service.ExecMainStatus}):\n` +
        entries.map(messageOf).join("\n"),
    );
  }
}

/**
 * Copies fleetprov's state directory and /etc/fleetprov off the running
 * board (tar over the console) into `dir`, modes and owners kept; returns
 * `dir`, the board's `/` as far as these files go.
 */
export async function copyOff(board: Board, dir: string): Promise<string> {
  const result = await board.sh(
    `cd / && tar -cf - --ignore-failed-read ${STATE_DIR.slice(1)} etc/fleetprov 2>/dev/null`,
  );
  await Deno.mkdir(dir, { recursive: true });
  const tar = join(dir, "..", `${dir.split("/").pop()}.tar`);
  await Deno.writeFile(tar, result.bytes);
  await run("tar", ["-xpf", tar, "--numeric-owner", "-C", dir]);
  await Deno.remove(tar);
  return dir;
}

/**
 * fleetprov's state directory as the board's next mount will see it, read
 * from its disk image after a power cut: the image converted to raw, its
 * ext4 journal replayed (`e2fsck -E journal_only`, what the kernel does at
 * mount), the directory dumped with debugfs. Returns `dir` as the board's
 * `/`, and e2fsck's output.
 */
export async function readDisk(disk: string, dir: string): Promise<string> {
  const raw = `${dir}.raw`;
  await run("/usr/bin/qemu-img", ["convert", "-O", "raw", disk, raw]);
  try {
    const fsck = await run("/usr/sbin/e2fsck", ["-y", "-E", "journal_only", raw], {
      allowFailure: true,
    });
    if (fsck.code > 1) throw new Error(`e2fsck ${raw} exited ${fsck.code}: ${fsck.stdout}`);
    const root = join(dir, STATE_DIR.slice(1, STATE_DIR.lastIndexOf("/")));
    await Deno.mkdir(root, { recursive: true });
    await run("/usr/sbin/debugfs", ["-R", `rdump ${STATE_DIR} ${root}`, raw]);
  } finally {
    await Deno.remove(raw);
  }
  return dir;
}

/** A temporary file of an atomic write (`.name.<pid>-<time>-<n>.tmp`). */
export function isTemporary(file: string): boolean {
  return /(^|\/)\.[^/]*\.tmp$/.test(file);
}

/**
 * Problems with the state files under `root` (a copy of the board's `/`):
 * an empty file, a certificate or key that does not parse (cut short), a
 * runtime config or journal that is not JSON. Temporary files of atomic
 * writes are not read by anyone and are left out. Returns one line per
 * problem; none is what a board that fsyncs what it renames must show.
 */
export function damagedFiles(root: string): string[] {
  const dir = join(root, STATE_DIR);
  const problems: string[] = [];
  for (const file of listFiles(dir)) {
    if (isTemporary(file)) continue;
    const path = join(dir, file);
    const text = Deno.readTextFileSync(path);
    if (text.length === 0) {
      problems.push(`${file} is empty`);
      continue;
    }
    try {
      if (file.endsWith(".crt")) new X509Certificate(text);
      else if (file.endsWith(".key")) createPrivateKey(text);
      else if (file.endsWith(".conf") || file.endsWith(".json")) JSON.parse(text);
      else problems.push(`${file} is not a file fleetprov writes`);
      if (/\.(crt|key)$/.test(file) && !/-----END [A-Z ]+-----\n$/.test(text)) {
        problems.push(`${file} does not end with its PEM footer`);
      }
    } catch (error) {
      problems.push(`${file} is cut short or damaged (${(error as Error).message})`);
    }
  }
  return problems;
}

/** The runtime config under `root`, when there is one. */
export function runtimeConfigIn(root: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(join(root, RUNTIME_CONFIG)))["runtime-config"];
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Checks that the runtime config under `root` is the Device Client's view of
 * a provisioned board and agrees with the files: completed-fp true, the
 * certificate and key it names present, complete, with their modes, the key
 * the certificate's. Returns the thing name and the certificate's id
 * (SHA-256 of its DER, as AWS IoT's).
 */
export function provisionedState(root: string): { thingName: string; certificateId: string } {
  const config = runtimeConfigIn(root);
  if (!config) throw new Error(`No runtime config on the board (${RUNTIME_CONFIG}).`);
  const problems: string[] = [];
  if (config["completed-fp"] !== true) problems.push("completed-fp is not true");
  const certPath = join(root, String(config.cert));
  const keyPath = join(root, String(config.key));
  const cert = new X509Certificate(Deno.readTextFileSync(certPath));
  const key = createPrivateKey(Deno.readTextFileSync(keyPath));
  if (!cert.checkPrivateKey(key)) problems.push(`${config.key} is not the key of ${config.cert}`);
  for (const [path, mode] of [[certPath, "644"], [keyPath, "600"]]) {
    if (modeOf(path) !== mode) problems.push(`${path.slice(root.length)} has mode ${modeOf(path)}`);
  }
  if (modeOf(join(root, RUNTIME_CONFIG)) !== "640") problems.push("runtime config not 0640");
  if (modeOf(join(root, STATE_DIR, "keys")) !== "700") problems.push("keys/ not 0700");
  if (problems.length > 0) throw new Error(`The board's files disagree: ${problems.join("; ")}`);
  return {
    thingName: String(config["thing-name"]),
    certificateId: createHash("sha256").update(cert.raw).digest("hex"),
  };
}
