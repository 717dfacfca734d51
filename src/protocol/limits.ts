// SPDX-License-Identifier: Apache-2.0
/**
 * Limits AWS IoT applies to the provisioning API (spec §1), shared by the
 * device's checks and the emulator's.
 *
 * @module
 */

/** Longest template parameter name, in characters. */
export const MAX_PARAMETER_KEY_LENGTH = 2048;
/** Longest template parameter value, in characters. */
export const MAX_PARAMETER_VALUE_LENGTH = 4096;
/** Longest thing name (and MQTT client id) AWS IoT accepts, in bytes. */
export const MAX_THING_NAME_BYTES = 128;
/** The characters a thing name may contain. */
export const THING_NAME_PATTERN = /^[a-zA-Z0-9:_-]+$/;
/** A provisioning template name: 1 to 36 letters, digits, '-' or '_'. */
export const TEMPLATE_NAME_PATTERN = /^[0-9A-Za-z_-]{1,36}$/;
/** Largest answer fleetprov accepts (a certificate and key are ~3 KiB). */
export const MAX_ANSWER_BYTES = 64 * 1024;
