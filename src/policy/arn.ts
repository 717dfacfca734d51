// SPDX-License-Identifier: Apache-2.0
/**
 * AWS IoT resource ARNs: `arn:PARTITION:iot:REGION:ACCOUNT:TYPE/NAME`
 * ("Action resources" in the AWS IoT developer guide), the resource type each
 * MQTT action is checked against, and the region an endpoint name gives away.
 *
 * @module
 */

/** The MQTT actions a provisioning device performs. */
export type IotAction = "iot:Connect" | "iot:Publish" | "iot:Subscribe" | "iot:Receive";

/**
 * What is known of the account a policy lives in. A field left undefined is
 * not checked: a statement's region or account then matches whatever it says.
 */
export interface ArnScope {
  /** `aws`, `aws-cn`, `aws-us-gov`. */
  partition?: string;
  /** e.g. `eu-west-1`, from the endpoint name. */
  region?: string;
  /** 12 digits. */
  account?: string;
}

/** The resource types of the MQTT actions ("Action resources"). */
export const RESOURCE_TYPE: Record<IotAction, "client" | "topic" | "topicfilter"> = {
  "iot:Connect": "client",
  "iot:Publish": "topic",
  "iot:Receive": "topic",
  "iot:Subscribe": "topicfilter",
};

/** Resource types AWS IoT policies name (data plane). */
export const KNOWN_RESOURCE_TYPES: readonly string[] = [
  "client",
  "topic",
  "topicfilter",
  "thing",
  "rolealias",
  "thinggroup",
];

/** `client/ID`, `topic/NAME` or `topicfilter/FILTER`: the resource part of the ARN checked. */
export function resourceOf(action: IotAction, name: string): string {
  return `${RESOURCE_TYPE[action]}/${name}`;
}

/**
 * The full ARN of a resource in `scope`; an unknown partition is `aws`, an
 * unknown region or account `*` (a statement that works as written).
 */
export function arnOf(resource: string, scope: ArnScope = {}): string {
  return `arn:${scope.partition ?? "aws"}:iot:${scope.region ?? "*"}:${
    scope.account ?? "*"
  }:${resource}`;
}

/** The fields of an ARN, or undefined when `text` is not `arn:` with six colon-separated fields. */
export interface ArnFields {
  partition: string;
  service: string;
  region: string;
  account: string;
  resource: string;
}

/** Splits an ARN into its fields; the resource keeps any colons of its own. */
export function splitArn(text: string): ArnFields | undefined {
  const parts = text.split(":");
  if (parts[0] !== "arn" || parts.length < 6) return undefined;
  return {
    partition: parts[1],
    service: parts[2],
    region: parts[3],
    account: parts[4],
    resource: parts.slice(5).join(":"),
  };
}

const ENDPOINT = /\.iot\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(\.cn)?\.?$/i;

/**
 * The partition and region of an AWS IoT endpoint name
 * (`abc123-ats.iot.eu-west-1.amazonaws.com`), or undefined for another name
 * (a custom domain, `localhost`).
 */
export function scopeOfEndpoint(endpoint: string): ArnScope | undefined {
  const m = ENDPOINT.exec(endpoint);
  if (!m) return undefined;
  const region = m[1].toLowerCase();
  const partition = m[2] ? "aws-cn" : region.startsWith("us-gov-") ? "aws-us-gov" : "aws";
  return { partition, region };
}

/** Whether `account` is an AWS account id (12 digits). */
export function isAccountId(account: string): boolean {
  return /^\d{12}$/.test(account);
}

/** A statement that allows one action on some resources. */
export interface AllowStatement {
  Effect: "Allow";
  Action: string;
  Resource: string | string[];
}

/** The statement that allows `action` on each of `names`, in `scope` (unknown region, account: `*`). */
export function allowStatement(
  action: IotAction,
  names: readonly string[],
  scope: ArnScope = {},
): AllowStatement {
  const arns = names.map((name) => arnOf(resourceOf(action, name), scope));
  return { Effect: "Allow", Action: action, Resource: arns.length === 1 ? arns[0] : arns };
}
