/**
 * The logger: Device Client levels, STDOUT or a log file created 0600.
 * Secrets never reach it: callers pass ids and paths, never keys, tokens or PINs.
 *
 * @module
 */
import { appendFileSync, chmodSync, closeSync, constants, openSync } from "node:fs";
import process from "node:process";
import type { LoggingSettings, LogLevel } from "./config/settings.ts";

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
 * errors to stderr so a failing unit shows why in the journal.
 */
export function createLogger(settings: Pick<LoggingSettings, "level" | "type" | "file">): Logger {
  const threshold = ORDER[settings.level];
  let fileReady = false;
  function write(level: LogLevel, message: string): void {
    if (ORDER[level] < threshold) return;
    const line = `${new Date().toISOString()} [${level}] ${message}\n`;
    if (settings.type === "FILE") {
      if (!fileReady) {
        const fd = openSync(
          settings.file,
          constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW,
          0o600,
        );
        closeSync(fd);
        chmodSync(settings.file, 0o600);
        fileReady = true;
      }
      appendFileSync(settings.file, line);
      if (level === "ERROR") process.stderr.write(line);
      return;
    }
    (ORDER[level] >= ORDER.WARN ? process.stderr : process.stdout).write(line);
  }
  return {
    debug: (m) => write("DEBUG", m),
    info: (m) => write("INFO", m),
    warn: (m) => write("WARN", m),
    error: (m) => write("ERROR", m),
  };
}

/** A logger that prints nothing (library use, tests). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
