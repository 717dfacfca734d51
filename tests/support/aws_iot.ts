// SPDX-License-Identifier: Apache-2.0
/**
 * AWS's own control-plane clients against the emulator: the AWS CLI v2
 * (Debian's awscli 2.9 at /usr/bin/aws, not the pyenv 1.x that may come first
 * on PATH) and the AWS SDK for JavaScript v3 (`@aws-sdk/client-iot`,
 * installed into `.cache/` with `npm ci` from the lock in `tests/aws_sdk_iot/`
 * and run under the Node.js the build pins). Both get throwaway credentials
 * and no user configuration.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type AwsSdk, installFromLock } from "./aws_sdk.ts";
import { ROOT, tempDir } from "./fs.ts";

/** Debian's AWS CLI v2, or the one FLEETPROV_AWS_CLI names (not the `aws` first on PATH). */
export const AWS_CLI = Deno.env.get("FLEETPROV_AWS_CLI") || "/usr/bin/aws";

/** The @aws-sdk/client-iot version the tests run (pinned in tests/aws_sdk_iot/). */
export const IOT_SDK_VERSION = "3.1178.0";

const IOT_SDK_DIR = join(ROOT, "tests", "aws_sdk_iot");

/** The environment of a control-plane client: any credentials, no config files, no pager. */
export function awsEnv(): Record<string, string> {
  const home = tempDir("fleetprov-aws-home-");
  return {
    HOME: home,
    PATH: "/usr/local/bin:/usr/bin:/bin",
    AWS_ACCESS_KEY_ID: "AKIDEMULATOR",
    AWS_SECRET_ACCESS_KEY: "any-secret-works",
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_CONFIG_FILE: join(home, "no-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, "no-credentials"),
    AWS_PAGER: "",
    AWS_EC2_METADATA_DISABLED: "true",
  };
}

/** Why the AWS CLI cannot run here, or undefined (tests skip on it with skipWhenMissing). */
export function awsCliMissing(): string | undefined {
  if (existsSync(AWS_CLI)) return undefined;
  return `${AWS_CLI} is missing: apt-get install awscli (the AWS CLI v2).`;
}

/** What one `aws` run printed: exit code, output, and stdout parsed when it is JSON. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  // deno-lint-ignore no-explicit-any
  json: any;
}

/** Runs `aws iot <args> --endpoint-url <endpoint>` with {@linkcode awsEnv}. */
export async function awsIot(cli: string, endpoint: string, args: string[]): Promise<CliResult> {
  const output = await new Deno.Command(cli, {
    args: ["iot", ...args, "--endpoint-url", endpoint, "--output", "json"],
    env: awsEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  let json: unknown;
  try {
    json = stdout.trim() ? JSON.parse(stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { code: output.code, stdout, stderr: new TextDecoder().decode(output.stderr), json };
}

let installed: Promise<AwsSdk> | undefined;

/**
 * Installs @aws-sdk/client-iot once per test process (again only when its
 * lock changed); tests skip on `awsSdkMissing()` first.
 */
export function iotSdk(): Promise<AwsSdk> {
  installed ??= installFromLock(
    IOT_SDK_DIR,
    join(ROOT, ".cache", `aws-sdk-client-iot-${IOT_SDK_VERSION}`),
    `@aws-sdk/client-iot ${IOT_SDK_VERSION}`,
  );
  return installed;
}

/** One step's outcome: the command's output, or the exception's name, status and message. */
export interface IotSdkStep {
  op: string;
  ok: boolean;
  // deno-lint-ignore no-explicit-any
  output?: any;
  name?: string;
  status?: number;
  message?: string;
}

/** Runs `steps` (`{op: "DescribeCertificate", input}`) with an IoTClient pointed at `endpoint`. */
export async function runIotSdk(
  sdk: AwsSdk,
  endpoint: string,
  steps: { op: string; input?: Record<string, unknown> }[],
): Promise<IotSdkStep[]> {
  const { stdout } = await runScript(sdk, { endpoint, steps });
  return stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

/** Sends `count` identical requests one after another; resolves with their latencies (ms). */
export async function benchIotSdk(
  sdk: AwsSdk,
  endpoint: string,
  bench: { op: string; input?: Record<string, unknown>; count: number },
): Promise<number[]> {
  const { stdout } = await runScript(sdk, { endpoint, bench });
  return JSON.parse(stdout.trim().split("\n").pop()!).latencies;
}

async function runScript(sdk: AwsSdk, args: unknown): Promise<{ stdout: string }> {
  const output = await new Deno.Command(sdk.node, {
    args: [join(IOT_SDK_DIR, "control_plane.cjs"), JSON.stringify(args)],
    env: { NODE_PATH: sdk.nodePath, AWS_EC2_METADATA_DISABLED: "true" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`control_plane.cjs failed:\n${new TextDecoder().decode(output.stderr)}`);
  }
  return { stdout: new TextDecoder().decode(output.stdout) };
}
