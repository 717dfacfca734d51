// SPDX-License-Identifier: Apache-2.0
/**
 * One emulated board under full-system QEMU (TCG): its Debian kernel and
 * initrd, its disk (a qcow2 overlay), QEMU user networking (the host is
 * 10.0.2.2), its serial console (ttyAMA0: the kernel's, systemd's and, when
 * asked, the journal's lines, which the test reads), and a second serial
 * line (a virtio console, hvc0, on a Unix socket) where root is logged in.
 * The test runs commands on that line: each command's stdout and stderr come
 * back base64-encoded between markers the typed line cannot contain.
 *
 * A power cut is {@linkcode Board.kill}: SIGKILL to QEMU. The disk is opened
 * with cache=writethrough: a write the guest's kernel has sent to the disk is
 * in the image file when the guest sees it complete, so what a power cut
 * loses is exactly what was still in the guest's own page cache.
 *
 * @module
 */
import { join } from "node:path";
import type { BoardImage } from "./image.ts";

/** How a board boots. */
export interface BootOptions {
  /** Its disk: a qcow2 overlay (never the cached image itself). */
  disk: string;
  /** A read-only raw disk attached as /dev/vdb (factory media). */
  media?: string;
  /** Its Ethernet address (also its identity: the test's boards share one emulator). */
  mac: string;
  /** No RTC: the guest's RTC reads 1970-01-01 (else the host's time). */
  noRtc?: boolean;
  /** Words added to the kernel command line. */
  cmdline?: string[];
  /** Where the console is copied (for a failure's message). */
  consoleLog: string;
}

/** The result of a command run on the board's shell. */
export interface ShellResult {
  code: number;
  /** What it wrote on stdout, as bytes. */
  bytes: Uint8Array;
  /** The same, as text. */
  text: string;
  /** What it wrote on stderr. */
  stderr: string;
}

/** Milliseconds a shell command may take on a loaded machine under TCG. */
const COMMAND_TIMEOUT_MS = 180_000;

/** Text that keeps arriving, and waits for patterns in it. */
class Transcript {
  text = "";
  readonly #waiters = new Set<
    { pattern: RegExp; from: number; resolve: (m: RegExpExecArray) => void }
  >();

  append(text: string): void {
    this.text += text;
    for (const waiter of [...this.#waiters]) {
      const match = waiter.pattern.exec(this.text.slice(waiter.from));
      if (match) {
        this.#waiters.delete(waiter);
        waiter.resolve(match);
      }
    }
  }

  /** Resolves with the first match of `pattern` after offset `from`, or rejects with `fail()`'s error. */
  wait(
    pattern: RegExp,
    options: {
      from: number;
      timeoutMs: number;
      exited: Promise<unknown>;
      fail: (why: string) => Error;
    },
  ): Promise<RegExpExecArray> {
    const found = pattern.exec(this.text.slice(options.from));
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      let settled = false;
      const waiter = {
        pattern,
        from: options.from,
        resolve: (match: RegExpExecArray) => {
          settled = true;
          clearTimeout(timer);
          resolve(match);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        settled = true;
        reject(options.fail(`Timed out after ${options.timeoutMs / 1000} s`));
      }, options.timeoutMs);
      options.exited.then(() => {
        if (settled) return;
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        reject(options.fail("QEMU exited"));
      });
      this.#waiters.add(waiter);
    });
  }
}

/** A running board. */
export class Board {
  /** performance.now() when QEMU was started. */
  readonly startedAt: number;
  readonly consoleLog: string;
  readonly #process: Deno.ChildProcess;
  readonly #exited: Promise<Deno.CommandStatus>;
  readonly #log: Deno.FsFile;
  readonly #console = new Transcript();
  readonly #shell = new Transcript();
  readonly #socketPath: string;
  #socket: Promise<Deno.UnixConn>;
  #commands = 0;
  #stderr = "";
  #done = false;

  private constructor(process: Deno.ChildProcess, consoleLog: string, socketPath: string) {
    this.startedAt = performance.now();
    this.consoleLog = consoleLog;
    this.#socketPath = socketPath;
    this.#process = process;
    this.#log = Deno.openSync(consoleLog, { create: true, append: true });
    this.#exited = process.status.then((status) => {
      this.#done = true;
      return status;
    });
    this.#read(process.stdout, (text) => {
      this.#console.append(text);
      try {
        this.#log.writeSync(new TextEncoder().encode(text));
      } catch { /* closed */ }
    });
    this.#read(process.stderr, (text) => this.#stderr += text);
    this.#socket = this.#connect();
  }

  /** Starts QEMU for `image` with `options`. */
  static boot(image: BoardImage, options: BootOptions): Board {
    const { arch } = image;
    const cmdline = ["root=/dev/vda", "rw", "console=ttyAMA0", "quiet", ...(options.cmdline ?? [])];
    const socketPath = `${options.consoleLog.replace(/\.log$/, "")}.shell`;
    const args = [
      ...["-M", "virt", "-cpu", arch.cpu, "-smp", "2", "-m", "1024"],
      ...["-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot"],
      ...["-kernel", image.kernel, "-initrd", image.initrd, "-append", cmdline.join(" ")],
      ...["-drive", `file=${options.disk},format=qcow2,if=virtio,cache=writethrough`],
      ...(options.media
        ? ["-drive", `file=${options.media},format=raw,if=virtio,readonly=on`]
        : []),
      ...["-netdev", "user,id=n0", "-device", `virtio-net-device,netdev=n0,mac=${options.mac}`],
      ...["-rtc", options.noRtc ? "base=1970-01-01T00:00:00" : "base=utc"],
      // The shell's line: a virtio console (hvc0 on the board) on a Unix socket.
      ...["-device", "virtio-serial-device"],
      ...["-chardev", `socket,id=shell,path=${socketPath},server=on,wait=off`],
      ...["-device", "virtconsole,chardev=shell"],
    ];
    Deno.writeTextFileSync(options.consoleLog, `# ${arch.qemuSystem} ${args.join(" ")}\n`, {
      append: true,
    });
    // setpriv execs QEMU with a parent-death signal: a test run that is killed
    // (CI's timeout, ^C) takes its boards with it instead of leaving them running.
    const process = new Deno.Command("/usr/bin/setpriv", {
      args: ["--pdeathsig", "KILL", "--", arch.qemuSystem, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new Board(process, options.consoleLog, socketPath);
  }

  /** Seconds since QEMU started. */
  elapsed(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  /** Connects to the shell's socket once QEMU has made it. */
  async #connect(): Promise<Deno.UnixConn> {
    const deadline = Date.now() + 30_000;
    while (true) {
      try {
        const conn = await Deno.connect({ transport: "unix", path: this.#socketPath });
        this.#read(conn.readable, (text) => this.#shell.append(text));
        return conn;
      } catch (error) {
        if (this.#done || Date.now() > deadline) {
          throw this.#failure(`Cannot connect to ${this.#socketPath} (${error})`);
        }
        // QEMU creates the socket while it starts; try again shortly.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  async #read(stream: ReadableStream<Uint8Array>, sink: (text: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) sink(decoder.decode(chunk, { stream: true }));
    } catch { /* QEMU killed */ }
  }

  /**
   * Waits until the console shows `pattern` (searched from offset `from`),
   * for at most `timeoutMs`; fails early if QEMU exits.
   */
  waitForConsole(
    pattern: RegExp,
    what: string,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<RegExpExecArray> {
    return this.#console.wait(pattern, {
      from: options.from ?? 0,
      timeoutMs: options.timeoutMs ?? COMMAND_TIMEOUT_MS,
      exited: this.#exited,
      fail: (why) => this.#failure(`${why} waiting for ${what} on the console`),
    });
  }

  #failure(message: string): Error {
    return new Error(
      `${message}; console log ${this.consoleLog}; QEMU stderr: ${this.#stderr.trim()}\n` +
        `--- console (last 3000 characters) ---\n${this.#console.text.slice(-3000)}\n` +
        `--- shell (last 1000 characters) ---\n${this.#shell.text.slice(-1000)}`,
    );
  }

  async #type(text: string): Promise<void> {
    const conn = await this.#socket;
    const bytes = new TextEncoder().encode(text);
    for (let written = 0; written < bytes.length;) {
      written += await conn.write(bytes.subarray(written));
    }
  }

  /**
   * Waits for root's automatic login on the shell's line, then replaces the
   * login shell with a plain `sh` without echo (no line editing to redraw
   * the typed commands).
   */
  async login(): Promise<void> {
    await this.#socket;
    await this.#shell.wait(/root@board:~# /, {
      from: 0,
      timeoutMs: 300_000,
      exited: this.#exited,
      fail: (why) => this.#failure(`${why} waiting for root's shell on hvc0`),
    });
    await this.#type("stty -echo; exec /bin/sh\n");
    await this.sh("true");
  }

  /**
   * Runs `command` (one line of sh) on the board; returns its exit code, its
   * stdout (bytes and text) and its stderr.
   */
  async sh(command: string, options: { timeoutMs?: number } = {}): Promise<ShellResult> {
    const n = ++this.#commands;
    const from = this.#shell.text.length;
    const out = `/run/board-test.${n}`;
    await this.#type(
      `(${command}) >${out}.out 2>${out}.err; r=$?; echo "@@B$((${n}))@@"; ` +
        `base64 -w0 ${out}.out; echo; base64 -w0 ${out}.err; echo; ` +
        `echo "@@E$((${n}))@@$r"; rm -f ${out}.out ${out}.err\n`,
    );
    const match = await this.#shell.wait(
      new RegExp(
        `@@B${n}@@\\r?\\n([A-Za-z0-9+/=]*)\\r?\\n([A-Za-z0-9+/=]*)\\r?\\n@@E${n}@@(\\d+)\\r?\\n`,
      ),
      {
        from,
        timeoutMs: options.timeoutMs ?? COMMAND_TIMEOUT_MS,
        exited: this.#exited,
        fail: (why) => this.#failure(`${why} waiting for the output of: ${command}`),
      },
    );
    const bytes = decodeBase64(match[1]);
    return {
      code: Number(match[3]),
      bytes,
      text: new TextDecoder().decode(bytes),
      stderr: new TextDecoder().decode(decodeBase64(match[2])),
    };
  }

  /** Runs `command` and fails unless it exits 0; returns its stdout. */
  async check(command: string, options: { timeoutMs?: number } = {}): Promise<string> {
    const result = await this.sh(command, options);
    if (result.code !== 0) {
      throw this.#failure(
        `On the board, \`${command}\` exited ${result.code}:\n${result.text}${result.stderr}`,
      );
    }
    return result.text;
  }

  /** A power cut: SIGKILL to QEMU, then waits for it to be gone. */
  async kill(): Promise<void> {
    if (!this.#done) {
      try {
        this.#process.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await this.#exited;
    await this.#close();
  }

  /** A clean shutdown (`systemctl poweroff`), then waits for QEMU to exit. */
  async poweroff(): Promise<void> {
    await this.#type("systemctl poweroff\n");
    const timer = setTimeout(() => {
      try {
        this.#process.kill("SIGKILL");
      } catch { /* gone */ }
    }, COMMAND_TIMEOUT_MS);
    const status = await this.#exited;
    clearTimeout(timer);
    await this.#close();
    if (!status.success) throw this.#failure(`QEMU exited ${status.code} at poweroff`);
  }

  async #close(): Promise<void> {
    try {
      (await this.#socket).close();
    } catch { /* closed or never opened */ }
    try {
      this.#log.close();
    } catch { /* closed */ }
    await Deno.remove(this.#socketPath).catch(() => {});
  }
}

function decodeBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** A qcow2 overlay of `backing` at `path`: the board writes there, `backing` stays as it was. */
export async function overlay(backing: string, path: string): Promise<string> {
  const result = await new Deno.Command("/usr/bin/qemu-img", {
    args: ["create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!result.success) {
    throw new Error(`qemu-img create ${path} failed: ${new TextDecoder().decode(result.stderr)}`);
  }
  return path;
}

/** A raw ext4 image holding the files of `dir` (the factory media), made without mounting. */
export async function mediaImage(dir: string, path: string): Promise<string> {
  const size = 64 * 1024 * 1024 + [...Deno.readDirSync(dir)].reduce(
    (sum, entry) => sum + Deno.statSync(join(dir, entry.name)).size,
    0,
  );
  Deno.writeFileSync(path, new Uint8Array());
  Deno.truncateSync(path, size);
  const result = await new Deno.Command("/usr/sbin/mkfs.ext4", {
    args: ["-q", "-F", "-L", "factory", "-d", dir, path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!result.success) {
    throw new Error(`mkfs.ext4 ${path} failed: ${new TextDecoder().decode(result.stderr)}`);
  }
  return path;
}
