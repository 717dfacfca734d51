// SPDX-License-Identifier: Apache-2.0
/**
 * Writing to stdout and stderr without building Node's stream objects: the
 * text goes to the file descriptor with write(2), synchronously, as
 * `process.stdout` itself writes on Linux to files, pipes and terminals.
 * Building `process.stdout` for a pipe or a socket (systemd's journal) loads
 * Node's net and stream modules, which the already-provisioned boot never
 * needs otherwise. A reader that closed the pipe (EPIPE, `fleetprov ... |
 * head`) drops what it no longer reads; a non-blocking descriptor that is
 * full (EAGAIN) hands the rest to the stream, which queues it.
 *
 * @module
 */
import { writeSync } from "node:fs";
import process from "node:process";

const encoder = new TextEncoder();
/** Descriptors whose writes go through the stream from now on (after EAGAIN). */
const viaStream = new Set<number>();

function write(fd: 1 | 2, text: string): void {
  const stream = fd === 1 ? () => process.stdout : () => process.stderr;
  if (viaStream.has(fd)) {
    stream().write(text);
    return;
  }
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EPIPE") return;
      if (code !== "EAGAIN") throw error;
      viaStream.add(fd);
      const rest = stream();
      rest.on("error", () => {}); // EPIPE later: dropped, as above
      rest.write(bytes.subarray(offset));
      return;
    }
  }
}

/** Writes `text` to stdout. */
export function writeStdout(text: string): void {
  write(1, text);
}

/** Writes `text` to stderr. */
export function writeStderr(text: string): void {
  write(2, text);
}
