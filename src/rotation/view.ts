// SPDX-License-Identifier: Apache-2.0
/**
 * A rotation is a provisioning run with other inputs: the device's own
 * certificate instead of the claim (the runtime config already put it in
 * `cert` and `key`), the thing name as client id, the rotation template with
 * the thing name and the old certificate id added to its parameters, and the
 * rotation's key source. This module builds those settings, so the
 * provisioning requests, files and proof serve the rotation unchanged.
 *
 * @module
 */
import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import type { KeyAlgorithm } from "../pki/algorithms.ts";
import { ROTATION_PARAMETERS } from "../protocol/mod.ts";
import type { CurrentIdentity } from "./identity.ts";

/** The key algorithm of a new board key when neither the config nor the current key says one. */
export const DEFAULT_ROTATION_KEY: KeyAlgorithm = "ec-p256";

/**
 * What a rotation needs to know of the identity it replaces: the thing and
 * the certificate id (its parameters), and the key's file (a new board key
 * of the same algorithm; without it, the config's or {@linkcode DEFAULT_ROTATION_KEY}).
 */
export type RotatedIdentity = Pick<CurrentIdentity, "thingName" | "certificateId"> & {
  keyPath?: string;
};

/**
 * The settings a rotation of `identity` runs with. A configuration error
 * (78) when the rotation template is not set or the key source cannot be
 * used; a rotation the journal holds (`pending`) is finished with the
 * template it began with, whatever the settings say now.
 */
export function rotationSettings(
  settings: Settings,
  identity: RotatedIdentity,
  options: { pending?: { templateName: string } } = {},
): Settings {
  const fp = settings.fleetProvisioning;
  const se = settings.secureElement.enabled;
  const templateName = options.pending?.templateName ?? fp.rotationTemplateName;
  if (!templateName) {
    throw new FleetprovError(
      'No rotation template is set: set "fleet-provisioning.rotation-template-name" in the config file or --rotation-template-name (a provisioning template that registers a new certificate for an existing thing).',
      ExitCode.Config,
    );
  }
  if (!options.pending && se && fp.rotationKeySource === "aws") {
    throw new FleetprovError(
      "fleet-provisioning.rotation-key-source is aws, but the key lives in a secure element: use board (a CSR signed inside the token, fleet-provisioning.csr-file).",
      ExitCode.Config,
    );
  }
  if (!options.pending && se && !fp.csrFile) {
    throw new FleetprovError(
      'With a secure element, a rotation needs a CSR signed inside the token: set "fleet-provisioning.csr-file" (--csr-file).',
      ExitCode.Config,
    );
  }
  const board = fp.rotationKeySource === "board";
  return {
    ...settings,
    thingName: identity.thingName,
    clientId: identity.thingName,
    fleetProvisioning: {
      ...fp,
      templateName,
      templateParameters: {
        ...fp.templateParameters,
        [ROTATION_PARAMETERS.thingName]: identity.thingName,
        [ROTATION_PARAMETERS.oldCertificateId]: identity.certificateId,
      },
      // The secure element's CSR (its key stays in the token), else a new key made on the board.
      csrFile: se ? fp.csrFile : undefined,
      deviceKey: undefined,
      generateKey: board && !se && !options.pending
        ? fp.generateKey ??
          (identity.keyPath === undefined ? DEFAULT_ROTATION_KEY : keyAlgorithmOf(identity.keyPath))
        : undefined,
    },
  };
}

/** The algorithm of the current key when fleetprov can make another of its kind. */
function keyAlgorithmOf(path: string): KeyAlgorithm {
  try {
    const key = createPrivateKey({ key: readFileSync(path, "utf8"), format: "pem" });
    const details = key.asymmetricKeyDetails;
    if (key.asymmetricKeyType === "rsa" && details?.modulusLength === 2048) return "rsa-2048";
    if (key.asymmetricKeyType === "ec" && details?.namedCurve === "prime256v1") return "ec-p256";
    if (key.asymmetricKeyType === "ec" && details?.namedCurve === "secp384r1") return "ec-p384";
  } catch {
    // Unreadable here: the TLS handshake with it says what is wrong.
  }
  return DEFAULT_ROTATION_KEY;
}
