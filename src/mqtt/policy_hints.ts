// SPDX-License-Identifier: Apache-2.0
/**
 * What a policy refusal on the board tells the person reading the journal:
 * the packets the broker refused (or closed the connection after), their
 * topics, and the policy statements that would allow them, written as
 * `fleetprov lint` writes its fixes (`add {"Effect":"Allow",…}`). The region
 * comes from the endpoint's name; the account is not known on the board
 * (`*`).
 *
 * @module
 */
import { allowStatement, type ArnScope, type IotAction } from "../policy/arn.ts";

/** The packets a connection sent that the broker had not acknowledged yet. */
export interface SentPackets {
  /** The topic filters of an unacknowledged SUBSCRIBE. */
  subscribe?: readonly string[];
  /** The topic of an unanswered request's PUBLISH. */
  publish?: string;
}

/** `add {…}`: the statement that allows `action` on `names`, as lint prints its fixes. */
export function addStatement(action: IotAction, names: readonly string[], scope: ArnScope): string {
  return `add ${JSON.stringify(allowStatement(action, names, scope))}`;
}

/** "SUBSCRIBE to a, b and PUBLISH to c". */
export function sentText(sent: SentPackets): string {
  const parts: string[] = [];
  if (sent.subscribe?.length) parts.push(`SUBSCRIBE to ${sent.subscribe.join(", ")}`);
  if (sent.publish !== undefined) parts.push(`PUBLISH to ${sent.publish}`);
  return parts.join(" and ");
}

/** The statements that allow every packet of `sent`: "add {…}; add {…}". */
export function allowSent(sent: SentPackets, scope: ArnScope): string {
  const fixes: string[] = [];
  if (sent.subscribe?.length) fixes.push(addStatement("iot:Subscribe", sent.subscribe, scope));
  if (sent.publish !== undefined) fixes.push(addStatement("iot:Publish", [sent.publish], scope));
  return fixes.join("; ");
}

/**
 * The hint for a SUBACK or PUBACK 0x87 Not authorized: which permission
 * `policy` lacks on `name` and the statement that grants it.
 */
export function policyHint(
  policy: string,
  code: number,
  denied: { action: IotAction; name: string; scope: ArnScope },
): string | undefined {
  if (code !== 0x87) return undefined;
  return `${policy} does not allow ${denied.action} on it; ${
    addStatement(denied.action, [denied.name], denied.scope)
  }`;
}

/** Why an answer may never come: AWS IoT drops a delivery the policy does not allow, silently. */
export function receiveHint(policy: string, topic: string, scope: ArnScope): string {
  return `AWS IoT drops an answer without a word when ${policy} lacks iot:Receive on its topic: ${
    addStatement("iot:Receive", [topic], scope)
  }`;
}

/**
 * The hint for a DISCONNECT 0x87 Not authorized that came before `sent` was
 * acknowledged: the packets, and the statements that allow them.
 */
export function disconnectHint(
  policy: string,
  code: number,
  sent: SentPackets,
  scope: ArnScope,
): string | undefined {
  const after = sentText(sent);
  if (!after || code !== 0x87) return undefined;
  return `right after ${after}: ${policy} lacks the permission for one of them; ${
    allowSent(sent, scope)
  }`;
}
