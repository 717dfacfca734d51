// SPDX-License-Identifier: Apache-2.0
/**
 * The rotation side of a board, as `fleetprov rotate` will meet it, with the
 * code that runs it: the rotation's connection planned from the rotation's
 * own settings (`rotationSettings`, the function the rotation runs with, and
 * provisioning's `claimPlan`): CONNECT as the thing with the device
 * certificate, the create operation of `rotation-key-source` and the rotation
 * template's topics in the device's payload format. That connection is
 * checked against the device certificate's policies: those the provisioning
 * template attaches (inline, or named and given with `--policy`), with the
 * thing's variables resolved, since the device connects as its thing. The
 * rotation template (`--rotation-template`) is linted as the provisioning
 * template is (`lintTemplate`: AWS's checks, parameters the board does not
 * send, RegisterThing with the board's parameters plus `ThingName` and
 * `OldCertificateId`), and the policies it attaches against the rotation's
 * proof, and against the next rotation when they are not the device's.
 *
 * @module
 */
import type { Settings } from "../config/settings.ts";
import { FleetprovError } from "../errors.ts";
import type { ArnScope } from "../policy/mod.ts";
import { type ClaimPlan, claimPlan } from "../provisioning/plan.ts";
import { rotationSettings } from "../rotation/view.ts";
import type { PolicyResource } from "../template/mod.ts";
import type { AccountView } from "./account.ts";
import type { Finding } from "./findings.ts";
import { type ReadDocument, readInput } from "./inputs.ts";
import { checkActions, type Connection } from "./policy_check.ts";
import {
  type CertificatePolicies,
  certificatePolicies,
  checkProof,
  issuedCertificate,
  merged,
  policyFindings,
} from "./proof_check.ts";
import { fixScopeOf } from "./scope.ts";
import { lintTemplate, SAMPLE_CERTIFICATE_ID } from "./template_check.ts";

/** The id lint gives a rotation's new certificate (another than provisioning's). */
export const ROTATED_CERTIFICATE_ID = "1".repeat(64);

/** The thing lint rotates when no provisioning template says which (no `--template`). */
export const SAMPLE_THING_NAME = "fleetprov-thing";

/** The board as provisioning leaves it, when the provisioning template says. */
export interface ProvisionedDevice {
  thingName: string;
  /** The policies the provisioning template attaches: the device certificate's. */
  policies: CertificatePolicies;
  /** The same, as the template names them (to tell whether the rotation template's are others). */
  resources: PolicyResource[];
}

/** What the rotation is checked for. */
export interface RotationLint {
  settings: Settings;
  /** `--rotation-template`: its file, if given. */
  file?: string;
  account: AccountView;
  scope: ArnScope;
  /** What provisioning gives the board, when lint knows it (`--template`). */
  device?: ProvisionedDevice;
}

/** The rotation as lint saw it. */
export interface RotationView extends ClaimPlan {
  templateName: string;
  /** The thing the board rotates: the provisioning template's, else {@linkcode SAMPLE_THING_NAME}. */
  thingName: string;
  thingKnown: boolean;
  /** The parameters its RegisterThing carries. */
  parameters: string[];
  /** The thing the rotation template registers for them, when lint read it. */
  registersThing?: string;
  /** Whether lint read the rotation template (`--rotation-template`). */
  templateChecked: boolean;
  /** The device certificate's policies lint checked the connection against, and those it was not given; undefined: not known (no `--template`). */
  devicePolicies?: PolicyNames;
  /** The policies the rotation template attaches (the new certificate's), when lint read it. */
  newCertificatePolicies?: PolicyNames;
}

/** The policies of a certificate, by name: those lint read, and those it was not given. */
export interface PolicyNames {
  checked: string[];
  unknown: string[];
}

function policyNames(policies: CertificatePolicies): PolicyNames {
  return { checked: policies.attached.map((a) => a.policy.name), unknown: policies.unknown };
}

/** The rotation's findings (each with phase `rotation`), and its plan unless the config stops it. */
export function lintRotation(lint: RotationLint): { view?: RotationView; findings: Finding[] } {
  const findings: Finding[] = [];
  const read = lint.file === undefined ? undefined : readInput(lint.file, "rotation-template");
  if (read && !read.ok) findings.push(read.finding);
  const document = read?.ok ? read.read : undefined;
  const configured = lint.settings.fleetProvisioning.rotationTemplateName;
  const templateName = configured ?? document?.template?.name;
  if (configured === undefined) findings.push(noRotationTemplate(lint.settings, templateName));
  const planned = templateName === undefined ? undefined : planRotation(lint, templateName);
  if (planned && "problem" in planned) findings.push(planned.problem);
  if (planned && "view" in planned) {
    const { view, settings } = planned;
    if (lint.device) findings.push(...deviceConnection(lint.device.policies, { lint, view }));
    if (document && lint.file !== undefined) {
      findings.push(...rotationTemplate(document, { lint, view, settings, file: lint.file }));
    }
    return { view, findings: findings.map(rotationPhase) };
  }
  return { findings: findings.map(rotationPhase) };
}

function rotationPhase(finding: Finding): Finding {
  return { ...finding, phase: "rotation" };
}

/** The rotation's settings (the run's own function) and its connection's plan; or the config error rotate stops with. */
function planRotation(
  lint: RotationLint,
  templateName: string,
): { view: RotationView; settings: Settings } | { problem: Finding } {
  const fp = lint.settings.fleetProvisioning;
  const thingName = lint.device?.thingName ?? SAMPLE_THING_NAME;
  let settings: Settings;
  try {
    settings = rotationSettings(
      { ...lint.settings, fleetProvisioning: { ...fp, rotationTemplateName: templateName } },
      { thingName, certificateId: SAMPLE_CERTIFICATE_ID },
    );
  } catch (error) {
    if (!(error instanceof FleetprovError)) throw error;
    return {
      problem: {
        severity: "error",
        source: "config",
        ...(lint.settings.configFile ? { file: lint.settings.configFile } : {}),
        message: `fleetprov rotate stops with exit 78: ${error.message.replace(/\.$/, "")}`,
      },
    };
  }
  const policies = lint.device?.policies;
  const view: RotationView = {
    ...claimPlan(settings, thingName),
    templateName,
    thingName,
    thingKnown: lint.device !== undefined,
    parameters: Object.keys(sentByRotation(settings)),
    templateChecked: false,
    ...(policies ? { devicePolicies: policyNames(policies) } : {}),
  };
  return { view, settings };
}

/**
 * The rotation's connection against a certificate's policies, as the thing
 * (its variables resolve). Its CONNECT is the proof's (the same policies, the
 * same client id), checked there already.
 */
function deviceConnection(
  policies: CertificatePolicies,
  rotation: {
    lint: RotationLint;
    view: RotationView;
    next?: { thingName: string; connection: Connection; certificateId: string };
  },
): Finding[] {
  const { lint, view, next } = rotation;
  const thingName = next?.thingName ?? view.thingName;
  return checkActions({
    policies: policies.attached,
    unknown: policies.unknown,
    owner: policies.owner,
    actions: view.actions.filter((a) => a.packet !== "CONNECT"),
    context: {
      variables: {
        clientId: thingName,
        thingName,
        certificate: issuedCertificate(next?.certificateId ?? SAMPLE_CERTIFICATE_ID),
      },
      scope: lint.scope,
    },
    fixScope: fixScopeOf(merged(policies.attached), lint.scope),
    mqttVersion: lint.settings.mqttVersion,
    device: {
      format: lint.settings.payloadFormat,
      createOperation: view.createOperation,
      templateName: view.templateName,
      rotation: true,
    },
    connection: next?.connection ?? "rotation",
  });
}

/**
 * The rotation template with the template code: AWS's checks, the board's
 * parameters, RegisterThing; then the policies it attaches against the
 * rotation's proof, and against the next rotation when they are not the
 * device's.
 */
function rotationTemplate(
  read: ReadDocument,
  rotation: { lint: RotationLint; view: RotationView; settings: Settings; file: string },
): Finding[] {
  const { lint, view, settings, file } = rotation;
  view.templateChecked = true;
  const outcome = lintTemplate({
    read,
    file,
    source: "rotation-template",
    templateName: view.templateName,
    sent: sentByRotation(settings),
    account: lint.account,
    certificateId: ROTATED_CERTIFICATE_ID,
  });
  const findings = [...outcome.findings];
  if (read.template && !read.template.hook) findings.push(noHook(file));
  const thing = outcome.result?.thing;
  if (!outcome.result || !thing) return findings;
  view.registersThing = thing.thingName;
  if (lint.device && thing.thingName !== view.thingName) {
    findings.push(anotherThing(file, { registers: thing.thingName, rotates: view.thingName }));
  }
  const policies = certificatePolicies(outcome.result, {
    account: lint.account,
    owner: { source: "rotation-template", file },
  });
  view.newCertificatePolicies = policyNames(policies);
  findings.push(...policyFindings(policies, lint.scope));
  findings.push(...checkProof({
    thingName: thing.thingName,
    policies,
    scope: lint.scope,
    mqttVersion: lint.settings.mqttVersion,
    certificateId: ROTATED_CERTIFICATE_ID,
    rotation: true,
  }));
  if (lint.device && !samePolicies(lint.device.resources, outcome.result.policies)) {
    findings.push(
      ...deviceConnection(policies, {
        lint,
        view,
        next: {
          thingName: thing.thingName,
          connection: "next-rotation",
          certificateId: ROTATED_CERTIFICATE_ID,
        },
      }),
    );
  }
  return findings;
}

/** Whether two templates attach the same policies (by name, or the same inline documents). */
function samePolicies(a: readonly PolicyResource[], b: readonly PolicyResource[]): boolean {
  const key = (resources: readonly PolicyResource[]) =>
    JSON.stringify(
      resources.map((r) =>
        "policyName" in r ? `name ${r.policyName}` : `document ${JSON.stringify(r.policyDocument)}`
      ).sort(),
    );
  return key(a) === key(b);
}

/** A rotation template given, but the config names none: rotate stops at once. */
function noRotationTemplate(settings: Settings, name: string | undefined): Finding {
  return {
    severity: "error",
    source: "config",
    ...(settings.configFile ? { file: settings.configFile } : {}),
    message:
      "names no rotation template (fleet-provisioning.rotation-template-name): fleetprov rotate stops with exit 78 before it connects",
    fix: `set fleet-provisioning.rotation-template-name to ${
      name ?? "the rotation template's name"
    } (--rotation-template-name)`,
  };
}

/** describe-provisioning-template says the rotation template has no hook. */
function noHook(file: string): Finding {
  return {
    severity: "warning",
    source: "rotation-template",
    file,
    path: "preProvisioningHook",
    message:
      "has no pre-provisioning hook: AWS IoT checks none of the parameters a device sends, so a device certificate its policy lets publish to the template's topics can put a new certificate on any thing it names as ThingName, another board's too",
    fix:
      "give it a hook that checks the asking certificate (the hook input's claimCertificateId) is OldCertificateId, ACTIVE and attached to ThingName (README, Rotation): aws iot update-provisioning-template --pre-provisioning-hook targetArn=ARN",
  };
}

/** The rotation template registers another thing than the one the board rotates. */
function anotherThing(file: string, things: { registers: string; rotates: string }): Finding {
  return {
    severity: "warning",
    source: "rotation-template",
    file,
    path: "$.Resources",
    step: "RegisterThing",
    message:
      `registers thing ${things.registers} for this board, not the thing it rotates (${things.rotates}, its ThingName): AWS IoT creates or updates ${things.registers}, and the board becomes that thing (the runtime config's thing-name) while ${things.rotates} keeps the old certificate`,
    fix: 'name the thing from the ThingName parameter: "ThingName": {"Ref": "ThingName"}',
  };
}

/**
 * What a rotation's RegisterThing carries: the configured parameters and the
 * rotation's own (`settings` are the rotation's). Never the system
 * information: `rotate` runs on a provisioned board, which collects none.
 */
function sentByRotation(settings: Settings): Record<string, string> {
  return settings.fleetProvisioning.templateParameters;
}
