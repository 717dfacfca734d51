// SPDX-License-Identifier: Apache-2.0
/**
 * Skipping a test whose prerequisite is missing here, loudly, and never in CI:
 * `.ci/run` sets the switches below, and under a switch a skip is a failure.
 * `.ci/run` also fails a run that reports any ignored test.
 *
 * @module
 */

/** The switches CI sets; each turns the skips of its kind into failures. */
export type RequireSwitch =
  | "FLEETPROV_REQUIRE_TOOLS"
  | "FLEETPROV_REQUIRE_QEMU"
  | "FLEETPROV_REQUIRE_YOCTO";

/** True when `name` is set to 1 (CI). */
export function required(name: RequireSwitch): boolean {
  return Deno.env.get(name) === "1";
}

/**
 * Whether the tests that need something are skipped: `missing` says why they
 * cannot run (undefined: they can). A skip prints its reason; under the switch
 * `require` it throws instead, failing the test file.
 */
export function skipWhenMissing(
  missing: string | undefined,
  options: { require: RequireSwitch; what: string },
): boolean {
  if (missing === undefined) return false;
  if (required(options.require)) {
    throw new Error(`${options.require}=1, but ${options.what} cannot run: ${missing}`);
  }
  console.error(`\n*** SKIPPING ${options.what}: ${missing} ***\n`);
  return true;
}
