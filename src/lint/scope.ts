// SPDX-License-Identifier: Apache-2.0
/**
 * Regions and accounts in a policy's ARNs. Lint knows the region from the
 * endpoint's name (or `--region`) and the account only from `--account`;
 * what it does not know it does not check, but a field that cannot be a
 * region or an account at all (`aws-region`, `aws-account-id`, copied from
 * the documentation) matches nothing on AWS and is a warning. The fix
 * statements name the known region and account, else the one the policy's
 * own ARNs agree on, else `*`.
 *
 * @module
 */
import { type ArnScope, isAccountId, type ParsedPolicy } from "../policy/mod.ts";
import type { Finding, FindingSource } from "./findings.ts";

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/** The ARN fields of every resource of the policy, with their statement. */
function arnFields(policy: ParsedPolicy) {
  return policy.statements.flatMap((statement) =>
    statement.resources.map((resource) => {
      const [arn, partition, , region, account] = resource.split(":");
      return arn === "arn" && account !== undefined
        ? { statement, resource, partition, region, account }
        : undefined;
    }).filter((f) => f !== undefined)
  );
}

/** The scope the fix statements name: known fields, else the policy's own if it has one value. */
export function fixScopeOf(policy: ParsedPolicy, scope: ArnScope): ArnScope {
  const fields = arnFields(policy);
  const common = (pick: (f: (typeof fields)[number]) => string, valid: (v: string) => boolean) => {
    const values = new Set(fields.map(pick).filter((v) => !/[*?$]/.test(v) && valid(v)));
    return values.size === 1 ? [...values][0] : undefined;
  };
  const region = scope.region ?? common((f) => f.region, (v) => REGION.test(v));
  const account = scope.account ?? common((f) => f.account, isAccountId);
  const partition = scope.partition ?? common((f) => f.partition, (v) => /^aws(-[a-z]+)*$/.test(v));
  return {
    ...(partition ? { partition } : {}),
    ...(region ? { region } : {}),
    ...(account ? { account } : {}),
  };
}

/** A region or account field that cannot match on AWS, where lint cannot check it itself. */
export function scopeWarnings(
  policy: ParsedPolicy,
  scope: ArnScope,
  where: { source: FindingSource; file: string } = { source: "claim-policy", file: policy.name },
): Finding[] {
  const out: Finding[] = [];
  const warned = new Set<string>();
  for (const { statement, resource, region, account } of arnFields(policy)) {
    const problems: string[] = [];
    if (scope.region === undefined && !/[*?$]/.test(region) && !REGION.test(region)) {
      problems.push(`region ${JSON.stringify(region)}, which is not an AWS region`);
    }
    if (scope.account === undefined && !/[*?$]/.test(account) && !isAccountId(account)) {
      problems.push(`account ${JSON.stringify(account)}, which is not an AWS account id`);
    }
    const key = `${statement.index} ${problems.join()}`;
    if (problems.length === 0 || warned.has(key)) continue;
    warned.add(key);
    out.push({
      severity: "warning",
      source: where.source,
      file: where.file,
      statement: { index: statement.index, ...(statement.sid ? { sid: statement.sid } : {}) },
      message: `statement ${statement.index} names ${problems.join(" and ")} (${
        JSON.stringify(resource)
      }): on AWS it matches nothing, but lint checks a region or an account only when it knows it (from the endpoint, --region, --account)`,
      fix: "use the region of the endpoint and your 12-digit account id, or *",
    });
  }
  return out;
}
