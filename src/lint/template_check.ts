// SPDX-License-Identifier: Apache-2.0
/**
 * A provisioning template against the device, with the one template code the
 * emulator runs (src/template/): first what AWS refuses the template for at
 * CreateProvisioningTemplate (`checkTemplate`, every problem, each a finding
 * naming its key path); then what only this device decides: the AWS CLI's
 * facts (another name than the device asks for, disabled, not a fleet
 * provisioning template), declared parameters without a `Default` the device
 * does not send, RegisterThing evaluated with the device's parameters and
 * checked as the emulator checks it (the certificate resource, inline policy
 * documents), a template without a thing (AWS registers none; the board needs
 * its name), and the resources it names that must exist in the account.
 * A pre-provisioning hook may supply parameters (`parameterOverrides`): then a
 * missing one is a warning.
 *
 * @module
 */
import { policyDocumentError } from "../policy/mod.ts";
import {
  checkRegistration,
  checkTemplate,
  createCommand,
  disabledTemplateError,
  evaluateTemplate,
  PSEUDO_PARAMETERS,
  pseudoParameterValues,
  requiredResources,
  resourceLabel,
  TemplateError,
  type TemplateFinding,
  type TemplateResult,
  validateParameters,
} from "../template/mod.ts";
import { type AccountView, existence, listingCommand } from "./account.ts";
import type { Finding } from "./findings.ts";
import type { ReadDocument } from "./inputs.ts";

/** The certificate id lint registers (AWS's are 64 hex digits). */
export const SAMPLE_CERTIFICATE_ID = "0".repeat(64);

/** What the template is checked for. */
export interface TemplateLint {
  read: ReadDocument;
  file: string;
  /** The provisioning template (default), or the rotation template. */
  source?: "template" | "rotation-template";
  /** The template the device asks for (fleet-provisioning.template-name, or rotation-template-name). */
  templateName: string;
  /** The parameters the device sends, with their values (placeholders where the board collects them). */
  sent: Record<string, string>;
  /** What lint was told of the account (`--policy`, `--inventory`). */
  account: AccountView;
  /** The id of the certificate RegisterThing registers (default {@linkcode SAMPLE_CERTIFICATE_ID}). */
  certificateId?: string;
}

/** The findings, and what RegisterThing makes for this device when the template gets that far. */
export interface TemplateOutcome {
  findings: Finding[];
  result?: TemplateResult;
}

type Found = Omit<Finding, "source" | "file">;

/** Every finding of the template, in the order AWS and the board meet them. */
export function lintTemplate(lint: TemplateLint): TemplateOutcome {
  const { read, file } = lint;
  const finding = (f: Found): Finding => ({ source: lint.source ?? "template", file, ...f });
  const findings = describedFacts(lint).map(finding);
  const refused = checkTemplate({
    name: read.template?.name ?? lint.templateName,
    body: read.text,
    policyDocument: (document) => policyDocumentError(document, "The policy document"),
  });
  if (refused.length > 0) {
    return { findings: [...findings, ...refused.map((r) => finding(creationFinding(r)))] };
  }
  const template = read.document as Record<string, unknown>;
  const missing = missingParameters(template, lint);
  findings.push(...missing.map(finding));
  if (missing.length > 0) return { findings };
  const registered = register(template, {
    sent: lint.sent,
    certificateId: lint.certificateId ?? SAMPLE_CERTIFICATE_ID,
  });
  if ("refusal" in registered) return { findings: [...findings, finding(registered.refusal)] };
  const { result } = registered;
  if (!result.thing) findings.push(finding(NO_THING));
  findings.push(...resourceFindings(result, lint.account).map(finding));
  return { findings, result };
}

/** A problem AWS refuses the template for: one line with its key path and the fix. */
function creationFinding(refused: TemplateFinding): Found {
  return {
    severity: "error",
    step: "CreateProvisioningTemplate",
    path: refused.path,
    message: `${refused.path}: ${
      refused.message.replace(/\.$/, "")
    }; AWS refuses the template at CreateProvisioningTemplate (and so does the emulator)`,
    ...(refused.fix ? { fix: refused.fix.replace(/\.$/, "") } : {}),
  };
}

/** What `aws iot describe-provisioning-template` said: name, enabled, type. */
function describedFacts(lint: TemplateLint): Found[] {
  const facts = lint.read.template;
  if (!facts) return [];
  const name = facts.name ?? lint.templateName;
  const setting = lint.source === "rotation-template" ? "rotation-template-name" : "template-name";
  const out: Found[] = [];
  if (facts.name !== undefined && facts.name !== lint.templateName) {
    out.push({
      severity: "error",
      path: "templateName",
      step: "RegisterThing",
      rejection: { statusCode: 404, errorCode: "ResourceNotFound" },
      message: `is template ${
        JSON.stringify(facts.name)
      }, but the device asks for ${lint.templateName}: RegisterThing fails with 404 ResourceNotFound unless that template exists too`,
      fix:
        `set fleet-provisioning.${setting} to ${facts.name}, or lint the template named ${lint.templateName}`,
    });
  }
  if (facts.enabled === false) {
    const disabled = disabledTemplateError(name);
    out.push({
      severity: "error",
      path: "enabled",
      step: "RegisterThing",
      rejection: { statusCode: disabled.statusCode, errorCode: disabled.errorCode },
      message:
        `is disabled (enabled: false): RegisterThing is rejected (AWS documents no code; the emulator answers ${disabled.statusCode} ${disabled.errorCode})`,
      fix: `aws iot update-provisioning-template --template-name ${name} --enabled`,
    });
  }
  if (facts.type !== undefined && facts.type !== "FLEET_PROVISIONING") {
    out.push({
      severity: "error",
      path: "type",
      message:
        `is a ${facts.type} template, not FLEET_PROVISIONING: RegisterThing over MQTT needs a fleet provisioning template`,
      fix: "create the template with --type FLEET_PROVISIONING (the default)",
    });
  }
  return out;
}

/** Declared parameters without a Default that the device does not send (AWS fills its pseudo parameters). */
function missingParameters(template: Record<string, unknown>, lint: TemplateLint): Found[] {
  const hook = lint.read.template?.hook === true;
  const sentList = Object.keys(lint.sent).join(", ") || "none";
  const declared = isObject(template.Parameters) ? template.Parameters : {};
  const out: Found[] = [];
  for (const [name, spec] of Object.entries(declared)) {
    if (Object.hasOwn(lint.sent, name) || PSEUDO_PARAMETERS.includes(name)) continue;
    if (isObject(spec) && spec.Default !== undefined) continue;
    out.push({
      severity: hook ? "warning" : "error",
      path: `Parameters.${name}`,
      step: "RegisterThing",
      rejection: { statusCode: 400, errorCode: "InvalidParameters" },
      message:
        `declares ${name} without a "Default" and the device does not send it (it sends: ${sentList}): RegisterThing is rejected with 400 InvalidParameters${
          hook ? " unless the pre-provisioning hook's parameterOverrides supplies it" : ""
        }`,
      fix: `send it: add ${
        JSON.stringify(name)
      } to fleet-provisioning.template-parameters (--fleet-provisioning-template-parameters), or give Parameters.${name} a "Default"`,
    });
  }
  return out;
}

/**
 * RegisterThing as the emulator runs it for this device's parameters, up to
 * the registry: the evaluation, the certificate resource, the inline policy
 * documents. Its rejection, or what it registers.
 */
function register(
  template: Record<string, unknown>,
  device: { sent: Record<string, string>; certificateId: string },
): { result: TemplateResult } | { refusal: Found } {
  try {
    const result = evaluateTemplate(template, {
      parameters: validateParameters(device.sent),
      pseudoParameters: pseudoParameterValues(device.certificateId),
    });
    checkRegistration(result, device.certificateId);
    for (const policy of result.policies) {
      if (!("policyDocument" in policy)) continue;
      const refused = policyDocumentError(policy.policyDocument, "The template's PolicyDocument");
      if (refused) throw new TemplateError("ResourceRegistrationFailure", refused);
    }
    return { result };
  } catch (error) {
    const message = (error as Error)?.message?.replace(/\.$/, "") ?? String(error);
    if (!(error instanceof TemplateError)) {
      return {
        refusal: {
          severity: "error",
          message:
            `the template engine cannot evaluate it (a fleetprov bug, please report it): ${message}`,
        },
      };
    }
    const { statusCode, errorCode } = error;
    return {
      refusal: {
        severity: "error",
        step: "RegisterThing",
        rejection: { statusCode, errorCode },
        message:
          `RegisterThing is rejected with ${statusCode} ${errorCode} for this device's parameters: ${message}`,
        fix: "correct the template, or the parameters the device sends",
      },
    };
  }
}

/** A template without a thing: AWS accepts it, and the board cannot use the answer. */
const NO_THING: Found = {
  severity: "error",
  path: "$.Resources",
  step: "RegisterThing",
  message:
    "has no AWS::IoT::Thing resource: AWS accepts the template and RegisterThing, but registers no thing and answers without a thing name, which the board needs (the proof connection's client id, thing-name in the runtime config); it fails on the RegisterThing answer, its new certificate already active",
  fix:
    'add a thing named from what each board sends, e.g. "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "SerialNumber"}}}',
};

/** The policies, thing type, billing group and thing groups the template names, against the account. */
function resourceFindings(result: TemplateResult, account: AccountView): Found[] {
  const out: Found[] = [];
  for (const resource of requiredResources(result)) {
    const state = existence(account, resource.kind, resource.name);
    if (state === "exists") continue;
    const what = `names ${
      resourceLabel(resource).replace(/^\w/, (c) => c.toLowerCase())
    } (${resource.property})`;
    if (state === "missing") {
      out.push({
        severity: "error",
        step: "RegisterThing",
        rejection: { statusCode: 400, errorCode: "ResourceRegistrationFailure" },
        message: `${what}, which the account does not have (${
          listingCommand(resource.kind)
        } does not list it): RegisterThing is rejected with 400 ResourceRegistrationFailure`,
        fix: createCommand(resource),
      });
      continue;
    }
    const policy = resource.kind === "policies";
    out.push({
      severity: "warning",
      message:
        `${what}, which must exist in the account, or RegisterThing is rejected with 400 ResourceRegistrationFailure${
          policy ? "; and its document decides whether the new certificate may connect" : ""
        }: lint cannot tell without ${
          policy
            ? `--policy (what aws iot get-policy --policy-name ${resource.name} prints) or `
            : ""
        }--inventory (what ${listingCommand(resource.kind)} prints)`,
      fix: `${createCommand(resource)}, if it does not exist`,
    });
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
