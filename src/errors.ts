// SPDX-License-Identifier: Apache-2.0
/**
 * Error kinds and the process exit codes they map to: the `sysexits.h` values
 * systemd names in the journal, and the Device Client's 1 for a rejection.
 *
 * @module
 */

/**
 * Process exit codes, documented in the README, `--help` and the systemd unit.
 * The rule: a failure that time (or a fix in the cloud) can heal gets
 * {@linkcode ExitCode.TempFail}, which systemd retries; one that needs a person
 * on the board gets a code in the unit's `RestartPreventExitStatus=`.
 */
export const ExitCode = {
  /** Provisioned now, already provisioned, or nothing to do. */
  Ok: 0,
  /** AWS IoT rejected a request with a final error (Device Client compatible): no restart. */
  Rejected: 1,
  /** EX_SOFTWARE: a bug in fleetprov, never an OS condition. Restarted. */
  Software: 70,
  /** EX_CANTCREAT: cannot write (read-only file system, path not writable): needs a person. */
  CantCreate: 73,
  /** EX_IOERR: the storage reported an I/O error (EIO): needs a person. */
  IoError: 74,
  /**
   * EX_TEMPFAIL: network, timeout, throttling or 5xx past the deadline, clock
   * not plausible, disk full or over quota, lock held, stopped by SIGTERM.
   * systemd restarts it.
   */
  TempFail: 75,
  /** EX_NOPERM: a file or directory has the wrong mode or owner; EACCES/EPERM: needs a person. */
  NoPermission: 77,
  /** EX_CONFIG: configuration, flags or input files are wrong: needs a person. */
  Config: 78,
} as const;

/** One of the {@linkcode ExitCode} values. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/** The exit codes systemd must not restart (the unit's `RestartPreventExitStatus=`). */
export const NO_RESTART_EXIT_CODES: readonly ExitCodeValue[] = [
  ExitCode.Rejected,
  ExitCode.CantCreate,
  ExitCode.IoError,
  ExitCode.NoPermission,
  ExitCode.Config,
];

/** Marks fleetprov's own errors, across copies of this module (src/embedded.ts loads a second one). */
const FLEETPROV_ERROR = Symbol.for("fleetprov.FleetprovError");

/** An expected failure: printed as its one-line message, exits with its code. */
export class FleetprovError extends Error {
  /**
   * `instanceof FleetprovError` holds for one thrown by another copy of this
   * class too (the emulator's, embedded in the binary); subclasses test as usual.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== FleetprovError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && FLEETPROV_ERROR in value;
  }

  /** The brand {@linkcode FleetprovError}'s `instanceof` looks for. */
  readonly [FLEETPROV_ERROR] = true;
  /** The process exit code for this failure. */
  readonly exitCode: ExitCodeValue;
  /** A short machine-readable cause (`clock`, `disk-full`, ...), for the `--output json` line. */
  readonly kind?: string;
  /**
   * The problems this failure reports, one line each (a load of the settings
   * finds several at once); `[message]` for a single one. A line never holds a
   * newline of its own: printers escape what a path or value carries.
   */
  readonly problems: readonly string[];

  /** Creates an error whose message is a complete sentence naming the culprit. */
  constructor(
    message: string,
    exitCode: ExitCodeValue,
    options?: ErrorOptions & { kind?: string; problems?: readonly string[] },
  ) {
    super(message, options);
    this.name = "FleetprovError";
    this.exitCode = exitCode;
    this.problems = options?.problems ?? [message];
    if (options?.kind !== undefined) this.kind = options.kind;
  }
}

/** A configuration or input error (exit code 78). */
export function configError(message: string): FleetprovError {
  return new FleetprovError(message, ExitCode.Config);
}

/** The OS conditions on a file fleetprov reads or writes: exit code, wording, advice. */
const OS_CONDITIONS: Record<string, OsCondition> = {
  ENOSPC: {
    code: ExitCode.TempFail,
    kind: "disk-full",
    what: "no space left on the device",
    advice: "free space there; systemd retries (exit 75)",
  },
  EDQUOT: {
    code: ExitCode.TempFail,
    kind: "disk-full",
    what: "the disk quota is exceeded",
    advice: "free space or raise the quota; systemd retries (exit 75)",
  },
  EROFS: {
    code: ExitCode.CantCreate,
    kind: "read-only",
    what: "the file system is read-only",
    advice:
      "fleetprov keeps its state under $HOME/.aws-iot-device-client: point HOME to a writable persistent partition (systemd: Environment=HOME=/var/lib/fleetprov, the same HOME for the Device Client; the lock's directory is LOCK_FILE_PATH)",
  },
  EACCES: {
    code: ExitCode.NoPermission,
    kind: "permission",
    what: "permission denied",
    advice: "check the owner and mode of that path and of its directory",
  },
  EPERM: {
    code: ExitCode.NoPermission,
    kind: "permission",
    what: "operation not permitted",
    advice: "check the owner and mode of that path and of its directory",
  },
  EIO: {
    code: ExitCode.IoError,
    kind: "io-error",
    what: "the storage reported an I/O error",
    advice: "check the storage (dmesg) and repair the file system",
  },
};

/** How fleetprov words an OS condition: its exit code, kind, what it means and the advice. */
export interface OsCondition {
  code: ExitCodeValue;
  kind: string;
  what: string;
  advice: string;
}

/** The OS condition of an error code (ENOSPC, EDQUOT, EROFS, EACCES, EPERM, EIO), or undefined. */
export function osCondition(errorCode: unknown): OsCondition | undefined {
  return typeof errorCode === "string" ? OS_CONDITIONS[errorCode] : undefined;
}

/** Options of {@linkcode osFailure}. */
export interface OsFailureOptions {
  /** The path when the error does not carry one. */
  path?: string;
  /** A sentence appended to the message (e.g. what the journal kept). */
  note?: string;
  /** What fleetprov was doing (default: from the failed system call, else "write"). */
  action?: "read" | "write";
}

/**
 * The one-line failure for an OS condition on a file (ENOSPC, EDQUOT, EROFS,
 * EACCES, EPERM, EIO), naming the path and the condition, with the exit code
 * that says whether time can heal it; undefined for any other error. An OS
 * condition is never exit 70.
 */
export function osFailure(
  error: unknown,
  options: OsFailureOptions = {},
): FleetprovError | undefined {
  const errno = error as NodeJS.ErrnoException & { dest?: string };
  const condition = osCondition(errno?.code);
  if (!condition) return undefined;
  const path = errno.path ?? options.path ?? "a file of fleetprov's";
  const verb = options.action ??
    (errno.syscall === "read" || errno.syscall === "stat" || errno.syscall === "lstat"
      ? "read"
      : "write");
  return new FleetprovError(
    `Cannot ${verb} ${path}: ${condition.what} (${errno.code}); ${condition.advice}.${
      options.note ? ` ${options.note}` : ""
    }`,
    condition.code,
    { cause: error, kind: condition.kind },
  );
}
