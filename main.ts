// SPDX-License-Identifier: Apache-2.0
/**
 * fleetprov: AWS IoT Fleet Provisioning client for embedded Linux boards.
 *
 * @module
 */
import process from "node:process";
import { runCli } from "./src/cli.ts";

runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
