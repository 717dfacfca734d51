/**
 * Command dispatch: `fleetprov [flags]` provisions, `fleetprov check` (or
 * `--dry-run`) validates, `fleetprov emulator` runs the local AWS IoT
 * fleet-provisioning emulator. Expected failures print one line each and
 * exit with their documented code; nothing prints a stack trace.
 *
 * @module
 */
import process from "node:process";
import { ExitCode, FleetprovError, osFailure } from "./errors.ts";
import { escapeControls } from "./text.ts";
import { VERSION } from "./version.ts";

/** Runs fleetprov with `args` (argv without the program) and returns the exit code. */
export async function runCli(args: string[]): Promise<number> {
  try {
    if (args.includes("--version")) {
      process.stdout.write(`fleetprov ${VERSION}\n`);
      return ExitCode.Ok;
    }
    if (args[0] === "emulator") {
      const { runEmulatorCommand } = await import("./commands/emulator.ts");
      return await runEmulatorCommand(args.slice(1));
    }
    if (args.includes("--help") || args.includes("-h")) {
      const { helpText } = await import("./commands/help.ts");
      process.stdout.write(helpText());
      return ExitCode.Ok;
    }
    const exportIndex = args.indexOf("--export-default-settings");
    if (exportIndex >= 0) {
      const path = args[exportIndex + 1];
      if (!path || path.startsWith("--")) {
        throw new FleetprovError(
          "--export-default-settings needs a file path, e.g. --export-default-settings ./fleetprov.conf.",
          ExitCode.Config,
        );
      }
      const { exportDefaultSettings } = await import("./commands/help.ts");
      exportDefaultSettings(path);
      process.stdout.write(`Wrote the default settings to ${path}.\n`);
      return ExitCode.Ok;
    }
    if (args[0] === "check" || args.includes("--dry-run")) {
      const { runCheckCommand } = await import("./commands/check.ts");
      return await runCheckCommand(
        args.filter((arg, i) => arg !== "--dry-run" && !(i === 0 && arg === "check")),
      );
    }
    const { runProvisionCommand } = await import("./commands/provision.ts");
    return await runProvisionCommand(args);
  } catch (caught) {
    // An OS condition (full disk, read-only file system, EACCES, EIO) is never exit 70.
    const error = osFailure(caught) ?? caught;
    if (error instanceof FleetprovError) {
      for (const line of error.message.split("\n")) {
        process.stderr.write(`fleetprov: ${escapeControls(line)}\n`);
      }
      return error.exitCode;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(
      `fleetprov: internal error (please report it): ${escapeControls(message)}\n`,
    );
    if (process.env.FLEETPROV_DEBUG) process.stderr.write(`${(error as Error).stack}\n`);
    return ExitCode.Software;
  }
}
