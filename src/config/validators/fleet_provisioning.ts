// SPDX-License-Identifier: Apache-2.0
/**
 * Checks of the fleet provisioning settings: the template name, timeouts
 * against each other, the CSR and device key (or a key generated on the
 * board), and the template parameters the run will send.
 *
 * @module
 */
import { statSync } from "node:fs";
import { TEMPLATE_NAME_PATTERN } from "../../protocol/limits.ts";
import { RULES } from "../permissions.ts";
import type { LoadContext, Located } from "../problems.ts";
import type { SettingValues } from "../reader.ts";
import { collectSystemInformation } from "../system_info.ts";
import type { Entry } from "../schema.ts";
import { checkPermissions, parsePrivateKey, readPem } from "./paths.ts";
import { describe } from "../problems.ts";

/** Largest CSR file accepted (spec §3). */
export const MAX_CSR_BYTES = 2000;

/** `fleet-provisioning.template-name`: an AWS IoT provisioning template name. */
export function templateName(entry: Entry<string>): string | undefined {
  if (TEMPLATE_NAME_PATTERN.test(entry.value)) return undefined;
  return `${entry.origin} is ${
    describe(entry.value)
  }; expected 1 to 36 letters, digits, '-' or '_' (an AWS IoT provisioning template name).`;
}

/** The retry delays and the step timeout against the deadline. */
export function checkTimes(values: SettingValues, context: LoadContext): void {
  const stepTimeout = values.value<number>("fleet-provisioning.step-timeout")!;
  const deadline = values.value<number>("fleet-provisioning.deadline")!;
  const baseDelay = values.value<number>("fleet-provisioning.retry-base-delay")!;
  const maxDelay = values.value<number>("fleet-provisioning.retry-max-delay")!;
  if (maxDelay < baseDelay) {
    context.problems.error(
      `The retry max delay (${maxDelay} s) is smaller than the retry base delay (${baseDelay} s); set --retry-max-delay to ${baseDelay} or more.`,
    );
  }
  if (stepTimeout > deadline) {
    context.problems.error(
      `The step timeout (${stepTimeout} s) is longer than the deadline (${deadline} s); set --deadline to ${stepTimeout} or more.`,
    );
  }
}

/** The template name is required when fleet provisioning is enabled. */
export function checkTemplateNameGiven(values: SettingValues, context: LoadContext): void {
  const key = "fleet-provisioning.template-name";
  if (
    values.value<boolean>("fleet-provisioning.enabled") && !values.entry(key) && !values.given(key)
  ) {
    context.problems.error(
      `The template name is missing: set "fleet-provisioning.template-name" in the config file or --fleet-provisioning-template-name (required when fleet provisioning is enabled).`,
    );
  }
}

/**
 * Where the new certificate's key comes from: a CSR and its device key
 * (checked unless the device is provisioned already), or a key generated on
 * the board, never both.
 */
export async function checkKeySource(
  values: SettingValues,
  options: { provisioned: boolean; secureElement: boolean },
  context: LoadContext,
): Promise<void> {
  const problems = context.problems;
  const csr = path(values, "fleet-provisioning.csr-file");
  const deviceKey = path(values, "fleet-provisioning.device-key");
  if (values.entry("fleet-provisioning.generate-key") && csr) {
    problems.error(
      `${csr.origin} and ${
        values.origin("fleet-provisioning.generate-key")
      } are both set; choose one: a CSR made elsewhere, or a key and CSR generated on the board.`,
    );
  }
  if (options.provisioned) return;
  if (csr && checkPermissions(csr.path, RULES.csr, csr.origin, context)) {
    const problem = csrProblem(csr.path);
    if (problem) problems.error(`CSR ${csr.path} (from ${csr.origin}) ${problem}.`);
  }
  if (
    deviceKey && checkPermissions(deviceKey.path, RULES.privateKey, deviceKey.origin, context) &&
    !(await parsePrivateKey(deviceKey.path))
  ) {
    problems.error(
      `Device key ${deviceKey.path} (from ${deviceKey.origin}) is not an unencrypted PEM private key.`,
    );
  }
  if (csr && !deviceKey && !options.secureElement) {
    problems.warn(
      `${csr.origin} is set without a device key, so the CSR is not used: the certificate and key are created by AWS IoT (CreateKeysAndCertificate), as the Device Client does.`,
    );
  }
  if (deviceKey && !csr) {
    problems.warn(`${deviceKey.origin} is set without a CSR file; it is ignored.`);
  }
}

/**
 * The parameters RegisterThing will carry: the system information (when
 * `collect-system-information` is on and the device is not provisioned)
 * overridden by the user's values.
 */
export async function templateParameters(
  values: SettingValues,
  options: { provisioned: boolean; claimCertPem?: string },
  context: LoadContext,
): Promise<{ parameters: Record<string, string>; systemParameters?: Record<string, string> }> {
  const user = values.value<Record<string, string>>("fleet-provisioning.template-parameters");
  let systemParameters: Record<string, string> | undefined;
  if (
    values.value<boolean>("fleet-provisioning.collect-system-information") && !options.provisioned
  ) {
    const collected = await collectSystemInformation(options.claimCertPem);
    systemParameters = collected.parameters;
    for (const note of collected.notes) context.problems.warn(note);
  }
  return { parameters: { ...systemParameters, ...user }, systemParameters };
}

function path(values: SettingValues, key: string): Located | undefined {
  const entry = values.entry(key);
  return entry && { path: entry.value, origin: entry.origin };
}

function csrProblem(path: string): string | undefined {
  const size = statSync(path).size;
  if (size > MAX_CSR_BYTES) {
    return `is ${size} bytes; AWS IoT accepts CSR files of at most ${MAX_CSR_BYTES} bytes`;
  }
  const text = readPem(path) ?? "";
  if (!/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(text)) {
    return "is not a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)";
  }
  return undefined;
}
