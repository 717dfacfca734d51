// SPDX-License-Identifier: Apache-2.0
/**
 * What the benchmarks share: medians, GNU time, and the emulator of a release
 * binary in its own process.
 *
 * @module
 */
import { join } from "node:path";

/** GNU time (Debian package `time`): its `%M` is the kernel's peak RSS of the child. */
export const TIME = "/usr/bin/time";

/** The median of `values` (the mean of the middle two for an even count). */
export function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** An emulator running in its own process. */
export interface BinaryEmulator {
  /** The device config it wrote (endpoint localhost, its port, the claim files). */
  config: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts `binary emulator` in its own process with its state in `stateDir`;
 * resolves once it listens. `keyType` defaults to the emulator's (RSA 2048, as AWS).
 */
export async function startBinaryEmulator(
  binary: string,
  options: { stateDir: string; keyType?: string },
): Promise<BinaryEmulator> {
  const child = new Deno.Command(binary, {
    args: [
      "emulator",
      "--state-dir",
      options.stateDir,
      "--port",
      "0",
      ...(options.keyType ? ["--key-type", options.keyType] : []),
    ],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let listening: RegExpExecArray | null = null;
  while (!(listening = /^listening: \S+:(\d+)$/m.exec(text))) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the emulator exited before listening: ${text}`);
    text += value;
  }
  return {
    config: join(options.stateDir, "device-client.conf"),
    port: Number(listening[1]),
    async stop() {
      child.kill("SIGTERM");
      while (!(await reader.read()).done) { /* drain */ }
      await child.status;
    },
  };
}
