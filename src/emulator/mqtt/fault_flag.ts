// SPDX-License-Identifier: Apache-2.0
/**
 * The compact flag form of a fault rule, `--fault OPERATION:key=value,...`.
 *
 * @module
 */
import { type FaultRule, validateFaultRule } from "./faults.ts";

/**
 * Parses the compact flag form `OPERATION:key=value,...`, e.g.
 * `RegisterThing:reject=503:ServiceUnavailable,times=2`,
 * `CreateKeysAndCertificate:delay=1500`, `connect:drop=request,times=1`,
 * `RegisterThing:throttle=5`, `RegisterThing:duplicate`.
 */
export function parseFaultFlag(text: string): FaultRule {
  const colon = text.indexOf(":");
  const operation = colon < 0 ? text : text.slice(0, colon);
  const rule: Record<string, unknown> = { operation };
  const body = colon < 0 ? "" : text.slice(colon + 1);
  for (const item of body.split(",").filter((s) => s !== "")) {
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? undefined : item.slice(eq + 1);
    const number = (v: string | undefined) => {
      if (v === undefined || !/^\d+(\.\d+)?$/.test(v)) {
        throw new Error(`--fault ${text}: ${key} needs a number, e.g. ${key}=2.`);
      }
      return Number(v);
    };
    switch (key) {
      case "skip":
      case "times":
      case "returnCode":
        rule[key] = number(value);
        break;
      case "delay":
        rule.delayMs = number(value);
        break;
      case "drop":
        rule.drop = value;
        break;
      case "malformed":
      case "truncated":
      case "duplicate":
        rule[key] = true;
        break;
      case "throttle": {
        const [rate, burst] = (value ?? "").split(":");
        rule.throttle = { ratePerSecond: number(rate), ...(burst ? { burst: number(burst) } : {}) };
        break;
      }
      case "reject": {
        const [status, code, ...message] = (value ?? "").split(":");
        rule.reject = {
          statusCode: number(status),
          errorCode: code ?? "",
          ...(message.length ? { errorMessage: message.join(":") } : {}),
        };
        break;
      }
      default:
        throw new Error(
          `--fault ${text}: unknown key "${key}" (skip, times, reject=STATUS:CODE[:MESSAGE], delay=MS, drop=request|before|after|handshake, malformed, truncated, duplicate, throttle=RATE[:BURST], returnCode).`,
        );
    }
  }
  validateFaultRule(rule, `--fault ${text}`);
  return rule;
}
