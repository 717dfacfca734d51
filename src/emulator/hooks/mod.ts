// SPDX-License-Identifier: Apache-2.0
/**
 * Pre-provisioning hooks: the payload AWS IoT sends the Lambda function
 * (`claimCertificateId`, `certificateId`, `certificatePem`, `templateArn`,
 * `clientId`, `parameters`), sent to a local command or an HTTP endpoint,
 * and its answer (`allowProvisioning`, `parameterOverrides`) judged as AWS
 * documents it. Every answer is untrusted: capped, parsed, checked; a hook
 * that fails, times out or answers garbage is a failure, never a crash.
 *
 * @module
 */
import { runCommand, type TransportResult } from "./command.ts";
import { postJson } from "./http.ts";
import { rotationDenial, type RotationLookup } from "./rotation_check.ts";
import type { HookTarget } from "./target.ts";

export { type HookTarget, MAX_TARGET_CHARS, parseHookTarget } from "./target.ts";
export { ROTATION_CHECK_ARN, type RotationLookup } from "./rotation_check.ts";

/** AWS's limit: the hook must answer within 5 seconds, or the request fails. */
export const DEFAULT_HOOK_TIMEOUT_MS = 5000;

/**
 * At most this many hooks run at once (commands started, HTTP requests
 * open); a RegisterThing past it is throttled (429 ThrottlingException, which
 * devices retry), so a boot storm cannot start a process per device.
 */
export const MAX_CONCURRENT_HOOKS = 32;

/** The largest hook answer the emulator reads; more is a failed hook. */
export const MAX_HOOK_ANSWER_BYTES = 64 * 1024;

/** What the hook gets: exactly the fields AWS sends the Lambda function. */
export interface HookPayload {
  claimCertificateId: string;
  certificateId: string;
  certificatePem: string;
  templateArn: string;
  clientId: string;
  parameters: Record<string, string>;
}

/** How a hook decided: allowed (with overrides), denied, or failed (no usable answer). */
export type HookOutcome =
  | { verdict: "allowed"; parameterOverrides: Record<string, string> }
  | { verdict: "denied" | "failed"; reason: string };

/**
 * Runs the hook at `target` with `payload`; never throws. The rotation check
 * reads `registry` (what a Lambda function would ask the control plane).
 */
export async function runHook(
  target: HookTarget,
  payload: HookPayload,
  options: { timeoutMs?: number; registry?: RotationLookup } = {},
): Promise<HookOutcome> {
  if (target.kind === "rotation-check") {
    if (!options.registry) return { verdict: "failed", reason: "it has no registry to read" };
    const denial = rotationDenial(payload, options.registry);
    return denial === undefined
      ? { verdict: "allowed", parameterOverrides: {} }
      : { verdict: "denied", reason: denial };
  }
  const limits = {
    timeoutMs: options.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS,
    maxBytes: MAX_HOOK_ANSWER_BYTES,
  };
  const input = JSON.stringify(payload);
  let result: TransportResult;
  try {
    result = target.kind === "file"
      ? await runCommand(target.path, input, limits)
      : await postJson(target.url, input, limits);
  } catch (error) {
    result = { ok: false, reason: (error as Error).message };
  }
  return result.ok ? judgeAnswer(result.text) : { verdict: "failed", reason: result.reason };
}

/**
 * Judges a hook's answer. Allowed when `allowProvisioning` is true (the
 * docs' examples), "true" (the docs' note) or 1 (what users report works);
 * anything else, or none, denies. `parameterOverrides`, when present, must be
 * an object of strings; an answer that is not a JSON object is a failure.
 */
export function judgeAnswer(text: string): HookOutcome {
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return { verdict: "failed", reason: "its answer is not JSON" };
  }
  if (typeof answer !== "object" || answer === null || Array.isArray(answer)) {
    return { verdict: "failed", reason: "its answer is not a JSON object" };
  }
  const { allowProvisioning, parameterOverrides } = answer as Record<string, unknown>;
  const overrides = parameterOverrides ?? {};
  if (
    typeof overrides !== "object" || Array.isArray(overrides) ||
    !Object.values(overrides).every((v) => typeof v === "string")
  ) {
    return { verdict: "failed", reason: "its parameterOverrides is not an object of strings" };
  }
  const allowed = allowProvisioning === true || allowProvisioning === 1 ||
    (typeof allowProvisioning === "string" && allowProvisioning.toLowerCase() === "true");
  if (!allowed) {
    return {
      verdict: "denied",
      reason: allowProvisioning === undefined
        ? "its answer has no allowProvisioning"
        : "it did not allow provisioning",
    };
  }
  return { verdict: "allowed", parameterOverrides: overrides as Record<string, string> };
}
