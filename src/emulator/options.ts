// SPDX-License-Identifier: Apache-2.0
/**
 * What `startEmulator` takes and gives: its options (each checked before
 * anything starts, with every template problem named) and the running
 * emulator.
 *
 * @module
 */
import { checkPolicyDocument } from "../policy/mod.ts";
import { checkServerName } from "./ca.ts";
import type { EmulatorEvents } from "./events.ts";
import type { OperationCounters } from "./mqtt/broker.ts";
import type { FaultController, FaultOperation, FaultRule } from "./mqtt/faults.ts";
import type { KeyType } from "./mqtt/keys.ts";
import type { RegistryView } from "./registry/mod.ts";
import { checkStartTemplate, type TemplateDefinition } from "./templates.ts";

/** Options of `startEmulator`. */
export interface EmulatorOptions {
  /** Created 0745 if missing (secrets inside stay 0700/0600); CA, claim, registry and config persist here. */
  stateDir: string;
  /** Listen address, default "127.0.0.1". */
  host?: string;
  /**
   * Names the server certificate is valid for besides localhost, 127.0.0.1
   * and ::1: DNS names or IP addresses, e.g. the name a board under QEMU
   * resolves to 10.0.2.2. A kept certificate that lacks one is issued again.
   */
  serverNames?: string[];
  /** Listen port, default 8883; 0 picks a free port. */
  port?: number;
  /** Name of the default template (created at start), default "FleetprovTemplate". */
  templateName?: string;
  /** The default template's body, default the Device Client's sample template. */
  template?: unknown;
  /** The default template's pre-provisioning hook: `file:/path/to/command` or `http(s)://…`. */
  preProvisioningHook?: string;
  /**
   * More templates created (or replaced) at start, by name, beside the default
   * one; templates created through the control plane persist on their own.
   */
  templates?: Record<string, TemplateDefinition>;
  /** A pre-provisioning hook's time limit in ms, default 5000 (AWS's). */
  hookTimeoutMs?: number;
  /** How many pre-provisioning hooks may run at once, default 32; past it RegisterThing is throttled. */
  hookConcurrency?: number;
  /** Ownership token lifetime in ms, default 3 600 000 (1 hour). */
  tokenLifetimeMs?: number;
  /** Extra named policies; "FPCertPolicy" (the Device Client sample) exists by default. */
  policies?: Record<string, unknown>;
  /**
   * The claim certificate's policy (AWS IoT policy JSON). Default: the policy
   * of the AWS docs, iot:Connect plus the provisioning topics of `templateName`.
   */
  claimPolicy?: unknown;
  /**
   * Key pairs CreateKeysAndCertificate hands out: "rsa-2048" (default, as AWS
   * IoT) or "ec-p256" (cheap to generate: storms and benchmarks).
   */
  keyType?: KeyType;
  /** Key pairs generated ahead (default 2; 0 generates each on demand). */
  keyPoolSize?: number;
  /**
   * TLS ALPN: "require" refuses connections that do not negotiate
   * `x-amzn-mqtt-ca` (as AWS IoT on port 443); "optional" accepts both.
   * Default: "require" on port 443, else "optional".
   */
  alpn?: "require" | "optional";
  /** Fault rules active from the start (more via `emulator.faults.add`). */
  faults?: FaultRule[];
  /** The control plane's port (AWS IoT's REST API over HTTP); 0 picks one; absent: none. */
  controlPort?: number;
  /** The control plane's address, default "127.0.0.1" (it accepts any credentials). */
  controlHost?: string;
  /**
   * Let control-plane requests set `file:` hooks (commands the emulator runs).
   * Off by default: the control plane accepts any credentials, so whoever
   * reaches it could run commands as the emulator's user. Hooks given as
   * options (`preProvisioningHook`, `templates`) need no permission.
   */
  allowCommandHooks?: boolean;
  /** Log sink, one line per call; default silent. */
  log?: (line: string) => void;
}

/** A running emulator. */
export interface Emulator {
  host: string;
  port: number;
  /** The endpoint devices use (the server certificate is valid for it). */
  endpoint: "localhost";
  /** The CA certificate (PEM) that issued the server and device certificates. */
  caCertPem: string;
  /** Root CA copy for devices: `<stateDir>/claim/root-ca.pem` (0644 in a 0700 dir). */
  caPath: string;
  /** The claim certificate (0644) and key (0600), registered ACTIVE. */
  claim: { certPath: string; keyPath: string; certificateId: string };
  /** `<stateDir>/device-client.conf`: a config file fleetprov can use as is. */
  configPath: string;
  /** The control plane, when `controlPort` was given: `url` is the AWS CLI's `--endpoint-url`. */
  control?: { host: string; port: number; url: string };
  /** Live registry (read-only view). */
  registry: RegistryView;
  /** Events (connect, request, answer, dropped, violation, disconnect). */
  events: EmulatorEvents;
  /** Requests and answers counted per operation, and CONNECTs under "connect" (live). */
  counters: Record<FaultOperation, OperationCounters>;
  /** Fault injection: add/clear rules, pause at a step. */
  faults: FaultController;
  /**
   * Issues and registers (ACTIVE, claim policy) another claim certificate for
   * a public key the emulator never sees the private half of, e.g. a key in a
   * device's secure element. `publicKeyPem` is a PEM SubjectPublicKeyInfo.
   */
  issueClaimCertificate(publicKeyPem: string): { certificatePem: string; certificateId: string };
  /** Stops listening, disconnects everyone, writes the registry. */
  close(): Promise<void>;
}

/** Checks the options before anything starts; throws a sentence naming the bad one. */
export function validateOptions(
  options: EmulatorOptions,
  resolved: { templates: Record<string, TemplateDefinition>; claimPolicy: unknown },
): void {
  for (const [name, definition] of Object.entries(resolved.templates)) {
    checkStartTemplate(name, definition);
  }
  for (const name of options.serverNames ?? []) checkServerName(name);
  const tokenLifetimeMs = options.tokenLifetimeMs ?? 3_600_000;
  if (!Number.isFinite(tokenLifetimeMs) || tokenLifetimeMs < 0) {
    throw new Error(`tokenLifetimeMs must be a number >= 0, not ${tokenLifetimeMs}.`);
  }
  const hookTimeoutMs = options.hookTimeoutMs;
  if (hookTimeoutMs !== undefined && !(Number.isInteger(hookTimeoutMs) && hookTimeoutMs > 0)) {
    throw new Error(
      `hookTimeoutMs must be a whole number of milliseconds > 0, not ${hookTimeoutMs}.`,
    );
  }
  const hookConcurrency = options.hookConcurrency;
  if (
    hookConcurrency !== undefined && !(Number.isInteger(hookConcurrency) && hookConcurrency > 0)
  ) {
    throw new Error(`hookConcurrency must be a whole number > 0, not ${hookConcurrency}.`);
  }
  checkPolicyDocument(resolved.claimPolicy, "The claim policy");
  if (options.alpn !== undefined && options.alpn !== "require" && options.alpn !== "optional") {
    throw new Error(`alpn must be "require" or "optional", not ${JSON.stringify(options.alpn)}.`);
  }
}
