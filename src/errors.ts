// SPDX-License-Identifier: Apache-2.0
/**
 * Error kinds and the process exit codes they map to.
 *
 * @module
 */

/** Process exit codes, documented in the README and `--help`. */
export const ExitCode = {
  /** Provisioned now, or already provisioned. */
  Ok: 0,
  /** The service rejected a request with a final (non-retryable) error. */
  Rejected: 1,
  /** Bad configuration, flags or input files: retrying cannot help. */
  Config: 2,
  /** A file or directory has the wrong mode or owner: retrying cannot help. */
  Permission: 3,
  /** Network failure, timeout or throttling past the deadline: retrying can help. */
  Network: 4,
  /** Another fleetprov instance holds the lock. */
  Locked: 5,
  /** A bug in fleetprov. */
  Internal: 70,
} as const;

/** One of the {@linkcode ExitCode} values. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/** An expected failure: printed as its one-line message, exits with its code. */
export class FleetprovError extends Error {
  /** The process exit code for this failure. */
  readonly exitCode: ExitCodeValue;

  /** Creates an error whose message is a complete sentence naming the culprit. */
  constructor(message: string, exitCode: ExitCodeValue, options?: ErrorOptions) {
    super(message, options);
    this.name = "FleetprovError";
    this.exitCode = exitCode;
  }
}

/** A configuration or input error (exit code 2). */
export function configError(message: string): FleetprovError {
  return new FleetprovError(message, ExitCode.Config);
}
