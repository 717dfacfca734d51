// SPDX-License-Identifier: Apache-2.0
/**
 * A local AWS IoT fleet provisioning endpoint for tests, demos and CI: the
 * MQTT side (`mqtt/`: mutual TLS broker, the provisioning API), the control
 * plane over HTTP (`control_plane/`: AWS IoT's REST API, a subset), the
 * pre-provisioning hooks (`hooks/`), and what they share: the registry
 * (`registry/`), the CA, the templates, the defaults.
 *
 * @example
 * ```ts
 * const emulator = await startEmulator({ stateDir: "/tmp/fp", port: 0, controlPort: 0 });
 * // fleetprov --config-file emulator.configPath
 * // aws iot list-things --endpoint-url emulator.control.url
 * await emulator.close();
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { ensureDirectory, sweepTemporaries } from "../secure_files/mod.ts";
import { CertificateAuthority, serverCertificate } from "./ca.ts";
import { type RunningControlPlane, startControlPlane } from "./control_plane/mod.ts";
import {
  claimPolicy,
  DEFAULT_ROTATION_TEMPLATE_NAME,
  DEFAULT_TEMPLATE_NAME,
  ROTATION_CHECK_ARN,
  rotationTemplate,
  sampleTemplate,
} from "./defaults.ts";
import { EmulatorEvents } from "./events.ts";
import { type RunningBroker, startBroker } from "./mqtt/broker.ts";
import { FaultController } from "./mqtt/faults.ts";
import { KeyPool } from "./mqtt/keys.ts";
import { ProvisioningService } from "./mqtt/service.ts";
import type { Registry } from "./registry/mod.ts";
import { type Emulator, type EmulatorOptions, validateOptions } from "./options.ts";
import {
  claimFiles,
  issueClaimCertificate,
  openRegistry,
  writeDeviceConfig,
} from "./state_files.ts";
import { installTemplates, type TemplateDefinition } from "./templates.ts";

export type { Emulator, EmulatorOptions } from "./options.ts";
export type { OperationCounters } from "./mqtt/broker.ts";
export type { EmulatorEventMap, EmulatorEventName } from "./events.ts";
export { EmulatorEvents } from "./events.ts";
export { parseFaultFlag } from "./mqtt/fault_flag.ts";
export {
  FaultController,
  type FaultOperation,
  type FaultRule,
  parseFaults,
  type PauseHandle,
  type PausePoint,
} from "./mqtt/faults.ts";
export type {
  CatalogKind,
  CatalogRecord,
  CertificateRecord,
  CertificateStatus,
  RegistryView,
  TemplateRecord,
  ThingRecord,
} from "./registry/mod.ts";
export {
  claimPolicy,
  DEFAULT_ROTATION_TEMPLATE_NAME,
  DEFAULT_TEMPLATE_NAME,
  deviceClientCertPolicy,
  fpCertPolicy,
  ROTATION_CHECK_ARN,
  rotationTemplate,
  sampleTemplate,
} from "./defaults.ts";
export { KEY_TYPES, type KeyType } from "./mqtt/keys.ts";
export { checkPolicyDocument } from "../policy/mod.ts";
export {
  DEFAULT_HOOK_TIMEOUT_MS,
  MAX_CONCURRENT_HOOKS,
  MAX_HOOK_ANSWER_BYTES,
  parseHookTarget,
} from "./hooks/mod.ts";
export { MAX_REQUEST_BYTES } from "./control_plane/mod.ts";
export { checkStartTemplate, type TemplateDefinition } from "./templates.ts";
export { checkServerName } from "./ca.ts";

/** Starts the emulator; resolves once it listens and the config file is written. */
export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  const stateDir = options.stateDir;
  const host = options.host ?? "127.0.0.1";
  const templateName = options.templateName ?? DEFAULT_TEMPLATE_NAME;
  const log = options.log ?? (() => {});
  const claimPolicyDocument = options.claimPolicy ?? claimPolicy(templateName);
  const templates = startTemplates(options, templateName);
  validateOptions(options, { templates, claimPolicy: claimPolicyDocument });
  const faults = new FaultController(options.faults ?? []);

  prepareStateDir(stateDir);
  const ca = await CertificateAuthority.loadOrCreate(join(stateDir, "ca"));
  const server = await serverCertificate(ca, join(stateDir, "ca"), options.serverNames ?? []);
  const registry = openRegistry(join(stateDir, "registry.json"), {
    claimPolicy: claimPolicyDocument,
    policies: options.policies,
  });
  installTemplates(registry, templates);
  const claim = await claimFiles(ca, registry, join(stateDir, "claim"));
  registry.flush();

  const events = new EmulatorEvents();
  const keys = new KeyPool(options.keyType ?? "rsa-2048", options.keyPoolSize ?? 2);
  const { broker, control } = await startServers(options, {
    ca,
    server,
    registry,
    events,
    faults,
    keys,
    log,
  });
  const configPath = writeDeviceConfig(join(stateDir, "device-client.conf"), {
    port: broker.port,
    claim,
    templateName,
    rotationTemplateName: DEFAULT_ROTATION_TEMPLATE_NAME in templates
      ? DEFAULT_ROTATION_TEMPLATE_NAME
      : undefined,
  });
  log(`listening on ${host}:${broker.port}; device config ${configPath}`);

  let closing: Promise<void> | undefined;
  return {
    host,
    port: broker.port,
    endpoint: "localhost",
    caCertPem: ca.certPem,
    caPath: claim.caPath,
    claim: { certPath: claim.certPath, keyPath: claim.keyPath, certificateId: claim.certificateId },
    configPath,
    control: control && {
      host: control.host,
      port: control.port,
      url: `http://${
        control.host.includes(":") ? `[${control.host}]` : control.host
      }:${control.port}`,
    },
    registry,
    events,
    counters: broker.counters,
    faults,
    issueClaimCertificate: (publicKeyPem) => issueClaimCertificate(ca, registry, publicKeyPem),
    close() {
      closing ??= Promise.all([broker.close(), keys.close(), control?.close()])
        .finally(() => registry.flush())
        .then(() => {});
      return closing;
    },
  };
}

/**
 * Creates the state dir, 0745 (what the Device Client wants for the directory
 * of a config file; the secrets inside stay in 0700 directories and 0600
 * files), and sweeps the temporary files an emulator killed mid-write left.
 */
function prepareStateDir(stateDir: string): void {
  ensureDirectory(stateDir, 0o745);
  for (const dir of [stateDir, join(stateDir, "ca"), join(stateDir, "claim")]) {
    sweepTemporaries(dir);
  }
}

/** The MQTT broker (with the provisioning service) and, when asked for, the control plane. */
async function startServers(
  options: EmulatorOptions,
  shared: {
    ca: CertificateAuthority;
    server: { certPem: string; keyPem: string };
    registry: Registry;
    events: EmulatorEvents;
    faults: FaultController;
    keys: KeyPool;
    log: (line: string) => void;
  },
): Promise<{ broker: RunningBroker; control?: RunningControlPlane }> {
  const { ca, server, registry, events, faults, keys, log } = shared;
  const service = new ProvisioningService({
    registry,
    ca,
    keys,
    tokenLifetimeMs: options.tokenLifetimeMs ?? 3_600_000,
    hookTimeoutMs: options.hookTimeoutMs,
    hookConcurrency: options.hookConcurrency,
    log,
  });
  const port = options.port ?? 8883;
  const broker = await startBroker({
    host: options.host ?? "127.0.0.1",
    port,
    alpn: options.alpn ?? (port === 443 ? "require" : "optional"),
    serverCertPem: server.certPem,
    serverKeyPem: server.keyPem,
    ca,
    registry,
    service,
    events,
    faults,
    log,
  }).catch(async (error) => {
    await keys.close();
    throw error;
  });
  if (options.controlPort === undefined) return { broker };
  const control = await startControlPlane({
    host: options.controlHost ?? "127.0.0.1",
    port: options.controlPort,
    registry,
    log,
    disconnectCertificate: (id) => broker.disconnectCertificate(id),
    endpoint: { host: "localhost", port: broker.port },
    allowCommandHooks: options.allowCommandHooks ?? false,
  }).catch(async (error) => {
    await Promise.all([broker.close(), keys.close()]);
    throw error;
  });
  return { broker, control };
}

/**
 * The templates created at start: the rotation template (unless the default
 * template takes its name), the default one, then those of
 * `options.templates` (which may replace either).
 */
function startTemplates(
  options: EmulatorOptions,
  templateName: string,
): Record<string, TemplateDefinition> {
  return {
    [DEFAULT_ROTATION_TEMPLATE_NAME]: {
      template: rotationTemplate(),
      preProvisioningHook: ROTATION_CHECK_ARN,
      description:
        "fleetprov rotate: a new certificate for the device's own thing (ThingName), checked by the emulator's rotation hook",
    },
    [templateName]: {
      template: options.template ?? sampleTemplate(),
      preProvisioningHook: options.preProvisioningHook,
    },
    ...options.templates,
  };
}
