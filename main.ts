/**
 * fleetprov: AWS IoT Fleet Provisioning client for embedded Linux boards.
 *
 * @module
 */
import { VERSION } from "./src/version.ts";

if (process.argv.includes("--version")) {
  console.log(`fleetprov ${VERSION}`);
}
