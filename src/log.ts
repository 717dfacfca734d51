// SPDX-License-Identifier: Apache-2.0
/**
 * The logger: Device Client levels, STDOUT or a log file created 0600.
 * Secrets never reach it: callers pass ids and paths, never keys, tokens or PINs.
 *
 * @module
 */
import { constants, fchmodSync, openSync, writeSync } from "node:fs";
import type { LoggingSettings, LogLevel } from "./config/settings.ts";
import { ExitCode, FleetprovError, osFailure } from "./errors.ts";
import { writeStderr, writeStdout } from "./output.ts";
import { escapeControls } from "./text.ts";

const ORDER: Record<LogLevel, number> = { DEBUG: 0, INFO: 1, WARN: 2, ERROR: 3 };

/** A leveled logger. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * Creates a logger. STDOUT sends DEBUG/INFO to stdout and WARN/ERROR to stderr;
 * FILE appends every line to the log file (created 0600) and still prints
 * errors to stderr so a failing unit shows why in the journal. With
 * `stdoutToStderr` (`--output json`), STDOUT's DEBUG/INFO lines go to stderr.
 */
export function createLogger(
  settings: Pick<LoggingSettings, "level" | "type" | "file">,
  options: { stdoutToStderr?: boolean } = {},
): Logger {
  const threshold = ORDER[settings.level];
  // Opened now, so a bad path fails before any request, and kept open, so a
  // link planted later is never followed.
  const fd = settings.type === "FILE" ? openLogFile(settings.file) : undefined;
  function write(level: LogLevel, message: string): void {
    if (ORDER[level] < threshold) return;
    // Server text is escaped where it enters a message; this is the last line of defence.
    const line = `${new Date().toISOString()} [${level}] ${escapeControls(message)}\n`;
    if (fd !== undefined) {
      writeSync(fd, line);
      if (level === "ERROR") writeStderr(line);
      return;
    }
    const toStderr = ORDER[level] >= ORDER.WARN || options.stdoutToStderr;
    (toStderr ? writeStderr : writeStdout)(line);
  }
  return {
    debug: (m) => write("DEBUG", m),
    info: (m) => write("INFO", m),
    warn: (m) => write("WARN", m),
    error: (m) => write("ERROR", m),
  };
}

/** Opens (creating 0600) the log file for appending; never through a symbolic link. */
function openLogFile(path: string): number {
  let fd: number;
  try {
    fd = openSync(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW,
      0o600,
    );
  } catch (error) {
    const os = osFailure(error, { path });
    if (os) throw os;
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ELOOP"
      ? "it is a symbolic link, and fleetprov never writes through one"
      : code === "EISDIR"
      ? "it is a directory"
      : code === "ENOENT"
      ? "its directory does not exist"
      : `${code}`;
    throw new FleetprovError(
      `Cannot open the log file ${path} (logging.file / --log-file): ${why}; give another path.`,
      ExitCode.Config,
    );
  }
  try {
    fchmodSync(fd, 0o600);
  } catch (error) {
    throw osFailure(error, { path }) ?? error;
  }
  return fd;
}

/** A logger that prints nothing (library use, tests). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
