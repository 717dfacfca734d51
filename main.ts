/**
 * fleetprov: AWS IoT Fleet Provisioning client for embedded Linux boards.
 *
 * @module
 */
import process from "node:process";
import { runCli } from "./src/cli.ts";

process.exitCode = await runCli(process.argv.slice(2));
