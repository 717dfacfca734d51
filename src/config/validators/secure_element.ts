// SPDX-License-Identifier: Apache-2.0
/**
 * Checks of the secure element settings: what a PKCS#11 token needs (the
 * library and the PIN) and what it rules out (a key imported or generated
 * outside the token).
 *
 * @module
 */
import { RULES } from "../permissions.ts";
import type { LoadContext } from "../problems.ts";
import type { SettingValues } from "../reader.ts";
import { checkPermissions } from "./paths.ts";

/** Checks the secure element's settings when it is enabled. */
export function checkSecureElement(
  values: SettingValues,
  options: { provisioned: boolean },
  context: LoadContext,
): void {
  if (!values.value<boolean>("secure-element.enabled")) return;
  const problems = context.problems;
  const library = values.entry("secure-element.pkcs11-lib");
  if (!library) {
    problems.error(
      `The PKCS#11 library is missing: set "secure-element.pkcs11-lib" or --pkcs11-lib (required when the secure element is enabled).`,
    );
  } else checkPermissions(library.value, RULES.pkcs11Lib, library.origin, context);
  if (!values.entry("secure-element.secure-element-pin")) {
    problems.error(
      `The secure element PIN is missing: set "secure-element.secure-element-pin" or --secure-element-pin (required when the secure element is enabled).`,
    );
  }
  const seOrigin = values.origin("secure-element.enabled");
  if (
    values.value<boolean>("fleet-provisioning.enabled") && !options.provisioned &&
    !values.entry("fleet-provisioning.csr-file")
  ) {
    problems.error(
      `${seOrigin} is true, so provisioning must use a CSR signed inside the token: set "fleet-provisioning.csr-file" or --csr-file (fleetprov never imports a private key into a secure element).`,
    );
  }
  if (values.entry("fleet-provisioning.generate-key")) {
    problems.error(
      `${
        values.origin("fleet-provisioning.generate-key")
      } cannot be used with a secure element (${seOrigin}): the key must be created inside the token; give its CSR with --csr-file.`,
    );
  }
  const engine = values.entry("secure-element.openssl-engine");
  if (engine) checkPermissions(engine.value, RULES.pkcs11Lib, engine.origin, context);
}
