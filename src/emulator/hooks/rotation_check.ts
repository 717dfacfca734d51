// SPDX-License-Identifier: Apache-2.0
/**
 * The emulator's own pre-provisioning hook for certificate rotation, in
 * place of the Lambda function a fleet deploys for its rotation template. A
 * rotation template trusts the parameters the device sends, and AWS IoT
 * checks none of them: without a hook, a device could register a new
 * certificate for any thing it names. The hook input's `claimCertificateId`
 * is the certificate of the connection that asked, which during a rotation is
 * the device's current certificate, so the hook can check what the template
 * cannot: that this certificate is `OldCertificateId`, is ACTIVE, and is
 * attached to `ThingName` (so the thing exists: a rotation never creates
 * one).
 *
 * Templates name it by an ARN of the emulator's account, as a template on
 * AWS names its Lambda function; no other Lambda ARN is accepted.
 *
 * @module
 */
import { ROTATION_PARAMETERS } from "../../protocol/rotation.ts";
import type { CertificateRecord } from "../registry/mod.ts";

/** The ARN that names the emulator's rotation check as a template's hook. */
export const ROTATION_CHECK_ARN =
  "arn:aws:lambda:us-east-1:123456789012:function:FleetprovRotationCheck";

/** What the check reads of the registry: certificates and things. */
export interface RotationLookup {
  peekCertificate(certificateId: string): Readonly<CertificateRecord> | undefined;
  thing(thingName: string): unknown;
}

/** The hook input's fields the check reads. */
export interface RotationRequest {
  claimCertificateId: string;
  parameters: Record<string, string>;
}

/**
 * Judges a rotation's RegisterThing: `undefined` allows it; otherwise the
 * reason it is denied (for the emulator's log; the device gets ACCESS_DENIED).
 */
export function rotationDenial(
  request: RotationRequest,
  registry: RotationLookup,
): string | undefined {
  const { claimCertificateId: asking, parameters } = request;
  const thingName = parameters[ROTATION_PARAMETERS.thingName];
  const oldId = parameters[ROTATION_PARAMETERS.oldCertificateId];
  if (!thingName || !oldId) {
    return `a rotation needs the parameters ${ROTATION_PARAMETERS.thingName} and ${ROTATION_PARAMETERS.oldCertificateId}`;
  }
  if (oldId !== asking) {
    return `the asking certificate ${asking} is not ${ROTATION_PARAMETERS.oldCertificateId} ${oldId}`;
  }
  const certificate = registry.peekCertificate(asking);
  if (!certificate || certificate.status !== "ACTIVE") {
    return `the asking certificate ${asking} is not ACTIVE`;
  }
  if (registry.thing(thingName) === undefined) {
    return `thing ${thingName} does not exist (a rotation creates no thing)`;
  }
  if (!certificate.thingNames.includes(thingName)) {
    return `the asking certificate ${asking} is not attached to thing ${thingName}`;
  }
  return undefined;
}
