// SPDX-License-Identifier: Apache-2.0
/**
 * RegisterThing as AWS IoT runs it: the ownership token, the template from
 * the registry (it must exist and be enabled), the pre-provisioning hook
 * (its overrides replace the device's parameters), the template evaluated,
 * checked against the registry (policies, thing types, thing groups and
 * billing groups must exist), then applied.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { policyDocumentError } from "../../policy/mod.ts";
import {
  checkRegistration,
  disabledTemplateError,
  evaluateTemplate,
  mergeThing,
  missingResourceError,
  pseudoParameterValues,
  requiredResources,
  TemplateError,
  type TemplateResult,
  validateParameters,
} from "../../template/mod.ts";
import { untrusted } from "../../text.ts";
import { ARN_PREFIX } from "../defaults.ts";
import { type HookOutcome, MAX_CONCURRENT_HOOKS, parseHookTarget, runHook } from "../hooks/mod.ts";
import type { Registry, TemplateRecord, ThingRecord } from "../registry/mod.ts";
import { type Answer, type Caller, reject, tokenHash } from "./answers.ts";

/** What RegisterThing needs from the emulator. */
export interface RegistrarOptions {
  registry: Registry;
  log: (line: string) => void;
  now: () => number;
  /** The hook's time limit (AWS: 5 s). */
  hookTimeoutMs?: number;
  /** How many hooks may run at once (default {@linkcode MAX_CONCURRENT_HOOKS}). */
  hookConcurrency?: number;
}

/** The rejection of a hook that denied, failed or timed out (AWS documents ACCESS_DENIED). */
const HOOK_REJECTION = { statusCode: 403, errorCode: "ACCESS_DENIED" } as const;

/** Registers things through the registry's templates; keeps each template's parsed body. */
export class ThingRegistrar {
  readonly #o: RegistrarOptions;
  readonly #parsed = new Map<string, { body: string; template: unknown }>();
  #hooksRunning = 0;

  /** Creates the registrar. */
  constructor(options: RegistrarOptions) {
    this.#o = options;
  }

  /** Answers one RegisterThing for `templateName` (from its topic). */
  async register(
    body: Record<string, unknown>,
    request: { templateName: string; caller: Caller },
  ): Promise<Answer> {
    const { templateName, caller } = request;
    const owned = this.#ownedCertificate(body.certificateOwnershipToken, caller);
    if ("accepted" in owned) return owned;
    const template = this.#o.registry.peekTemplate(templateName);
    if (!template) {
      return reject(
        404,
        "ResourceNotFound",
        `Provisioning template ${templateName} does not exist.`,
      );
    }
    if (!template.enabled) {
      const disabled = disabledTemplateError(templateName);
      return reject(disabled.statusCode, disabled.errorCode, disabled.message);
    }
    try {
      let parameters = validateParameters(body.parameters);
      if (template.preProvisioningHook) {
        const hooked = await this.#hook(template, { ...owned, parameters, caller });
        if (hooked.rejection) return hooked.rejection;
        parameters = validateParameters({ ...parameters, ...hooked.overrides });
        // The token may have expired or been used while the hook ran.
        const still = this.#ownedCertificate(body.certificateOwnershipToken, caller);
        if ("accepted" in still) return still;
      }
      const result = evaluateTemplate(this.#template(template), {
        parameters,
        pseudoParameters: pseudoParameterValues(owned.certificateId),
      });
      this.#check(result, owned.certificateId);
      return this.#apply(result, { certificateId: owned.certificateId, templateName });
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      this.#o.log(`RegisterThing rejected for ${caller.clientId}: ${error.message}`);
      return reject(error.statusCode, error.errorCode, error.message);
    }
  }

  /** The certificate a token owns, or the rejection AWS gives for a bad token. */
  #ownedCertificate(token: unknown, caller: Caller): Answer | { certificateId: string } {
    if (typeof token !== "string" || token === "") {
      return reject(
        400,
        "InvalidCertificateOwnershipToken",
        "Certificate ownership token cannot be empty.",
      );
    }
    const hash = tokenHash(token);
    const registry = this.#o.registry;
    let record = registry.token(hash);
    if (record && record.expiresAt <= this.#o.now()) {
      registry.expireToken(hash);
      record = undefined;
    }
    if (
      !record || record.claimCertificateId !== caller.certificateId ||
      !registry.peekCertificate(record.certificateId)
    ) {
      return reject(
        400,
        "InvalidCertificateOwnershipToken",
        "Certificate ownership token is invalid or has expired.",
      );
    }
    return { certificateId: record.certificateId };
  }

  /** Runs the template's hook; returns its overrides, or the rejection. */
  async #hook(
    template: TemplateRecord,
    request: { certificateId: string; parameters: Record<string, string>; caller: Caller },
  ): Promise<{ rejection?: Answer; overrides?: Record<string, string> }> {
    const { certificateId, parameters, caller } = request;
    const targetArn = template.preProvisioningHook!.targetArn;
    const limit = this.#o.hookConcurrency ?? MAX_CONCURRENT_HOOKS;
    if (this.#hooksRunning >= limit) {
      this.#o.log(
        `pre-provisioning hook ${untrusted(targetArn, { maxChars: 80 })} throttled ` +
          `RegisterThing for ${caller.clientId}: ${limit} hooks already running`,
      );
      return { rejection: reject(429, "ThrottlingException", "Rate exceeded.") };
    }
    this.#hooksRunning++;
    let outcome: HookOutcome;
    try {
      outcome = await runHook(parseHookTarget(targetArn), {
        claimCertificateId: caller.certificateId,
        certificateId,
        certificatePem: this.#o.registry.peekCertificate(certificateId)?.certificatePem ?? "",
        templateArn: `${ARN_PREFIX}provisioningtemplate/${template.templateName}`,
        clientId: caller.clientId,
        parameters,
      }, { timeoutMs: this.#o.hookTimeoutMs, registry: this.#o.registry });
    } catch (error) {
      outcome = { verdict: "failed", reason: (error as Error).message };
    } finally {
      this.#hooksRunning--;
    }
    if (outcome.verdict === "allowed") return { overrides: outcome.parameterOverrides };
    this.#o.log(
      `pre-provisioning hook ${
        untrusted(targetArn, { maxChars: 80 })
      } ${outcome.verdict} RegisterThing for ${caller.clientId}: ${untrusted(outcome.reason)}`,
    );
    const message = outcome.verdict === "denied"
      ? "The pre-provisioning hook did not allow provisioning."
      : outcome.reason.startsWith("did not answer within")
      ? `The pre-provisioning hook ${outcome.reason}.`
      : "The pre-provisioning hook failed.";
    return { rejection: reject(HOOK_REJECTION.statusCode, HOOK_REJECTION.errorCode, message) };
  }

  /** The template's parsed body (parsed once per body). */
  #template(record: Readonly<TemplateRecord>): unknown {
    const cached = this.#parsed.get(record.templateName);
    if (cached?.body === record.templateBody) return cached.template;
    const template = JSON.parse(record.templateBody);
    this.#parsed.set(record.templateName, { body: record.templateBody, template });
    return template;
  }

  /** Validates the template's result against the registry before changing anything. */
  #check(result: TemplateResult, certificateId: string): void {
    checkRegistration(result, certificateId);
    for (const policy of result.policies) {
      if (!("policyDocument" in policy)) continue;
      const refused = policyDocumentError(policy.policyDocument, "The template's PolicyDocument");
      if (refused !== undefined) throw new TemplateError("ResourceRegistrationFailure", refused);
    }
    const registry = this.#o.registry;
    for (const resource of requiredResources(result)) {
      const exists = resource.kind === "policies"
        ? registry.hasPolicy(resource.name)
        : registry.hasCatalog(resource.kind, resource.name);
      if (!exists) throw missingResourceError(resource);
    }
    const existing = result.thing && registry.thing(result.thing.thingName);
    if (existing) mergeThing(existing, result.thing!);
  }

  #apply(result: TemplateResult, request: { certificateId: string; templateName: string }): Answer {
    const { certificateId, templateName } = request;
    const registry = this.#o.registry;
    if (result.thing) {
      const existing = registry.thing(result.thing.thingName);
      const thing: ThingRecord = existing ? mergeThing(existing, result.thing) : {
        thingName: result.thing.thingName,
        attributes: result.thing.attributes ?? {},
        thingTypeName: result.thing.thingTypeName,
        thingGroups: [...new Set(result.thing.thingGroups ?? [])],
        billingGroup: result.thing.billingGroup,
        principals: [],
        createdAt: new Date(this.#o.now()).toISOString(),
        version: 1,
      };
      registry.putThing(thing);
      registry.attachThing(certificateId, thing.thingName);
    }
    for (const policy of result.policies) {
      let name: string;
      if ("policyName" in policy) {
        name = policy.policyName;
      } else {
        // AWS: PolicyName "defaults to a hash of the policy document".
        const text = JSON.stringify(policy.policyDocument);
        name = `${templateName}-${createHash("sha256").update(text).digest("hex").slice(0, 16)}`;
        registry.putPolicy(name, policy.policyDocument, text);
      }
      registry.attachPolicy(certificateId, name);
    }
    registry.setStatus(certificateId, result.certificate!.status);
    const thingName = result.thing?.thingName ?? "";
    this.#o.log(
      `registered certificate ${certificateId} as ${result.certificate?.status}` +
        (thingName ? ` for thing ${thingName}` : ""),
    );
    return { accepted: true, body: { thingName, deviceConfiguration: result.deviceConfiguration } };
  }
}
