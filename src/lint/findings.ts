// SPDX-License-Identifier: Apache-2.0
/**
 * What lint reports: findings, each an error (a board with this config would
 * fail to provision) or a warning (it would provision, but something is
 * likely not as meant), naming the file, the statement or key, and the fix;
 * as one line of text each, or together as one JSON object.
 *
 * @module
 */
import type { AllowStatement, IotAction } from "../policy/mod.ts";
import type { PlanStep } from "../provisioning/plan.ts";
import { escapeControls } from "../text.ts";

/**
 * Where a finding comes from: the config, the claim policy, the template, the
 * rotation template, a policy of the account a template attaches
 * (`--policy`), a listing of the account (`--inventory`).
 */
export type FindingSource =
  | "config"
  | "claim-policy"
  | "template"
  | "rotation-template"
  | "policy"
  | "inventory";

/**
 * Where the board (or the factory's setup) meets the problem: a step of the
 * claim connection, the proof connection with the new certificate (`proof`),
 * or AWS's CreateProvisioningTemplate, which refuses the template itself.
 */
export type LintStep = PlanStep | "CreateProvisioningTemplate";

/** One problem lint found. */
export interface Finding {
  severity: "error" | "warning";
  source: FindingSource;
  /** The file it is in (the config file, the policy, the template). */
  file?: string;
  /** A key path in the template (`Parameters.SerialNumber`) or the document. */
  path?: string;
  /** The policy statement it is about (1-based index, Sid). */
  statement?: { index: number; sid?: string };
  /** Where the board fails: a step of its connections, or CreateProvisioningTemplate. */
  step?: LintStep;
  /** `rotation`: `fleetprov rotate` meets it (its connection with the device certificate, its template, its proof), not provisioning. */
  phase?: "rotation";
  /** The rejection RegisterThing answers with (AWS's status and error code), when lint predicts one. */
  rejection?: { statusCode: number; errorCode: string };
  packet?: string;
  action?: IotAction;
  /** The topic, topic filter or client id. */
  name?: string;
  /** The full resource ARN checked. */
  resource?: string;
  /** The finding, as a sentence. */
  message: string;
  /** The fix, in words. */
  fix?: string;
  /** The policy statement to add, when that is the fix. */
  add?: AllowStatement;
}

const SOURCE_NAMES: Record<FindingSource, string> = {
  "config": "config",
  "claim-policy": "claim policy",
  "template": "template",
  "rotation-template": "rotation template",
  "policy": "policy",
  "inventory": "inventory",
};

/** "error: claim policy claim.json: MESSAGE; FIX." */
export function findingLine(finding: Finding): string {
  const where = `${SOURCE_NAMES[finding.source]}${finding.file ? ` ${finding.file}` : ""}`;
  const fix = finding.fix ? ` Fix: ${sentence(finding.fix)}` : "";
  return escapeControls(`${finding.severity}: ${where}: ${sentence(finding.message)}${fix}`);
}

/** `text` ending with one full stop: messages taken from elsewhere (config errors) have theirs. */
function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** Errors first, in the order found (the order the board would meet them), then warnings. */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  return [
    ...findings.filter((f) => f.severity === "error"),
    ...findings.filter((f) => f.severity === "warning"),
  ];
}
