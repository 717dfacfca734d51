// SPDX-License-Identifier: Apache-2.0
/**
 * Where a pre-provisioning hook runs. AWS takes a Lambda function's ARN in
 * `preProvisioningHook.targetArn`; the emulator, which runs no Lambda, takes
 * a local command (`file:/abs/path`, or the URL form `file:///abs/path`) or
 * an HTTP endpoint (`http://host:port/path`, `https://…`) in its place, or
 * the ARN of its own rotation check (`rotation_check.ts`), the one Lambda
 * function it plays itself.
 *
 * @module
 */
import { isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";
import { ROTATION_CHECK_ARN } from "./rotation_check.ts";

/**
 * A hook target: a command run with the payload on stdin, a URL the payload
 * is POSTed to, or the emulator's own rotation check.
 */
export type HookTarget =
  | { kind: "file"; path: string; text: string }
  | { kind: "http"; url: URL; text: string }
  | { kind: "rotation-check"; text: string };

/** AWS's limit on `targetArn`, in characters. */
export const MAX_TARGET_CHARS = 2048;

/** Parses a hook target; throws a sentence naming it and the forms the emulator takes. */
export function parseHookTarget(text: string): HookTarget {
  const forms = "file:/absolute/path/to/command or http(s)://host:port/path";
  if (text.length === 0 || text.length > MAX_TARGET_CHARS) {
    throw new Error(`The hook target must be 1 to ${MAX_TARGET_CHARS} characters (${forms}).`);
  }
  const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
  if (text === ROTATION_CHECK_ARN) return { kind: "rotation-check", text };
  if (text.startsWith("arn:")) {
    throw new Error(
      `The hook target ${shown} is an ARN: the emulator cannot invoke a Lambda function; give it ${forms} that answers as your Lambda would (or ${ROTATION_CHECK_ARN}, the emulator's own rotation check).`,
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`The hook target ${shown} is not a URL; give ${forms}.`);
  }
  if (url.protocol === "file:") {
    if (url.host !== "" && url.host !== "localhost") {
      throw new Error(`The hook target ${shown} names host ${url.host}; a file: command is local.`);
    }
    const path = fileURLToPath(url);
    if (!isAbsolute(path) || url.search || url.hash) {
      throw new Error(`The hook target ${shown} must be an absolute path (file:/path/to/command).`);
    }
    return { kind: "file", path, text };
  }
  if (url.protocol === "http:" || url.protocol === "https:") {
    if (url.username || url.password) {
      throw new Error(`The hook target ${shown} carries credentials; the emulator sends none.`);
    }
    return { kind: "http", url, text };
  }
  throw new Error(`The hook target ${shown} has scheme ${url.protocol}; give ${forms}.`);
}
