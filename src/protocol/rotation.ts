// SPDX-License-Identifier: Apache-2.0
/**
 * Certificate rotation's vocabulary, shared by the device (`fleetprov
 * rotate`) and the emulator's rotation template: the template parameters a
 * rotation's RegisterThing carries besides the configured ones, and the
 * template name the emulator's default setup serves.
 *
 * @module
 */

/** The rotation template's name in the emulator's default setup (and its device config). */
export const DEFAULT_ROTATION_TEMPLATE_NAME = "FleetprovRotationTemplate";

/**
 * Template parameters of a rotation's RegisterThing, besides
 * `fleet-provisioning.template-parameters` (they win over a configured
 * parameter of the same name): the thing whose certificate is replaced, as
 * the runtime config names it, and the id of the certificate it replaces (a
 * pre-provisioning hook or the backend can check the two belong together
 * and retire the old one once the new one has connected).
 */
export const ROTATION_PARAMETERS = {
  thingName: "ThingName",
  oldCertificateId: "OldCertificateId",
} as const;
