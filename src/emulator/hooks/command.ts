// SPDX-License-Identifier: Apache-2.0
/**
 * A `file:` hook: the command runs in a process group of its own with the
 * payload on stdin; its stdout is the answer. It costs the emulator nothing
 * beyond its request: stdout is capped (more is a failure, and the group is
 * killed), stderr is drained and only its start kept for the log, and at the
 * time limit the whole group (children included) is killed with SIGKILL and
 * the request fails without waiting for the pipes.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import process from "node:process";

/** How a transport ended: the answer's text, or why there is none. */
export type TransportResult = { ok: true; text: string } | { ok: false; reason: string };

/** Bytes of the hook's stderr kept for the emulator's log. */
const STDERR_KEPT_BYTES = 512;

/** Runs `path` with `input` on stdin; resolves with its stdout or why it failed. */
export function runCommand(
  path: string,
  input: string,
  limits: { timeoutMs: number; maxBytes: number },
): Promise<TransportResult> {
  return new Promise((resolve) => {
    const child = spawn(path, [], { stdio: ["pipe", "pipe", "pipe"], detached: true });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let stderr = "";
    let done = false;
    const finish = (result: TransportResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      killGroup(child.pid);
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ ok: false, reason: `did not answer within ${limits.timeoutMs} ms` }),
      limits.timeoutMs,
    );
    child.on(
      "error",
      (error: NodeJS.ErrnoException) =>
        finish({ ok: false, reason: `cannot be run (${error.code ?? error.message})` }),
    );
    child.stdin.on("error", () => {}); // a hook that does not read its input: EPIPE
    child.stdin.end(input);
    child.stdout.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limits.maxBytes) {
        finish({ ok: false, reason: `wrote more than ${limits.maxBytes} bytes` });
      } else chunks.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      if (stderr.length < STDERR_KEPT_BYTES) {
        stderr += chunk.toString("utf8", 0, STDERR_KEPT_BYTES - stderr.length);
      }
    });
    child.on("exit", (code, signal) => {
      if (code === 0) return; // its answer is complete once stdout closes
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      finish({ ok: false, reason: stderr ? `${how}: ${stderr.trim()}` : how });
    });
    child.on("close", (code) => {
      if (code === 0) finish({ ok: true, text: Buffer.concat(chunks).toString("utf8") });
    });
  });
}

/** Kills a hook's process group (it and anything it started); gone already is fine. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch { /* already gone */ }
}
