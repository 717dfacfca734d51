// SPDX-License-Identifier: Apache-2.0
/**
 * Fault injection: rules that make the emulator reject, delay, drop, garble,
 * duplicate or throttle answers (or CONNECTs), and pause points that hold a
 * request at an exact step until a test releases it.
 *
 * @module
 */
import type { Operation } from "../../protocol/mod.ts";

/** What a fault applies to: a provisioning operation or the MQTT CONNECT. */
export type FaultOperation = Operation | "connect";

/** All fault operations, for validation messages. */
export const FAULT_OPERATIONS: readonly FaultOperation[] = [
  "CreateKeysAndCertificate",
  "CreateCertificateFromCsr",
  "RegisterThing",
  "connect",
];

/** One fault rule. Effects of all active rules for a request combine. */
export interface FaultRule {
  operation: FaultOperation;
  /** Let this many matching requests pass untouched first (default 0). */
  skip?: number;
  /** Apply to this many matching requests, then stop (default: every one). */
  times?: number;
  /** Answer with this rejection instead of doing the work (connect: refuse CONNECT). */
  reject?: { statusCode: number; errorCode: string; errorMessage?: string };
  /** CONNACK return code for a refused CONNECT (default 3, server unavailable). */
  returnCode?: number;
  /** Delay the answer (connect: the CONNACK) by this many milliseconds. */
  delayMs?: number;
  /**
   * Close the connection: "request" before doing anything, "before" after the
   * work is done but before answering (answer lost), "after" right after
   * answering. On "connect": "request" hangs up right after CONNECT, without
   * CONNACK (how AWS IoT refuses a certificate over MQTT 3.1.1); "handshake"
   * closes the TCP connection before the TLS handshake (a network failure).
   */
  drop?: "request" | "before" | "after" | "handshake";
  /** Send bytes that are not a valid payload. */
  malformed?: boolean;
  /** Send only the first half of the payload. */
  truncated?: boolean;
  /** Send the answer twice. */
  duplicate?: boolean;
  /** Token bucket: at most `ratePerSecond` (burst `burst`, default the rate); past it 429 ThrottlingException. */
  throttle?: { ratePerSecond: number; burst?: number };
}

/** The combined effects for one request. */
export interface FaultPlan {
  reject?: { statusCode: number; errorCode: string; errorMessage: string };
  returnCode?: number;
  delayMs: number;
  drop?: "request" | "before" | "after" | "handshake";
  malformed: boolean;
  truncated: boolean;
  duplicate: boolean;
  /** Names of the rules that fired, for logs. */
  applied: string[];
}

/** Where a pause holds a request: before the work, or after it but before the answer. */
export type PausePoint = "before" | "after";

/** A pause set by {@linkcode FaultController.pause}. */
export interface PauseHandle {
  /** Resolves when a request first reaches the pause point. */
  reached: Promise<{ clientId: string }>;
  /** Lets every held request continue and removes the pause. */
  release(): void;
}

interface RuleState {
  rule: FaultRule;
  seen: number;
  fired: number;
  tokens: number;
  refilledAt: number;
}

interface Pause {
  operation: FaultOperation;
  point: PausePoint;
  held: (() => void)[];
  reach: (value: { clientId: string }) => void;
  reachedOnce: boolean;
}

/** Holds the fault rules and pauses of one emulator. */
export class FaultController {
  #rules: RuleState[] = [];
  #pauses: Pause[] = [];
  readonly #now: () => number;

  /** Creates a controller with initial rules (validated). */
  constructor(rules: readonly FaultRule[] = [], options: { now?: () => number } = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.add(...rules);
  }

  /** Adds rules (validated; throws naming the bad key). */
  add(...rules: FaultRule[]): void {
    for (const [i, rule] of rules.entries()) {
      validateFaultRule(rule, `fault ${i + 1}`);
      const burst = rule.throttle
        ? rule.throttle.burst ?? Math.max(1, rule.throttle.ratePerSecond)
        : 0;
      this.#rules.push({ rule, seen: 0, fired: 0, tokens: burst, refilledAt: this.#now() });
    }
  }

  /** Removes every rule (pauses stay). */
  clear(): void {
    this.#rules = [];
  }

  /** The rules with how many requests each saw and fired on. */
  rules(): { rule: FaultRule; seen: number; fired: number }[] {
    return this.#rules.map(({ rule, seen, fired }) => ({
      rule: structuredClone(rule),
      seen,
      fired,
    }));
  }

  /**
   * Whether a new TCP connection is to be closed before its TLS handshake
   * (a "connect" rule with drop "handshake" fires; consumed like any rule).
   */
  dropsHandshake(): boolean {
    let drop = false;
    for (const state of this.#rules) {
      const rule = state.rule;
      if (rule.operation !== "connect" || rule.drop !== "handshake") continue;
      state.seen++;
      if (state.seen <= (rule.skip ?? 0)) continue;
      if (rule.times !== undefined && state.fired >= rule.times) continue;
      state.fired++;
      drop = true;
    }
    return drop;
  }

  /** Computes (and consumes) the effects for one request of `operation`. */
  plan(operation: FaultOperation): FaultPlan {
    const plan: FaultPlan = {
      delayMs: 0,
      malformed: false,
      truncated: false,
      duplicate: false,
      applied: [],
    };
    for (const state of this.#rules) {
      const rule = state.rule;
      if (rule.operation !== operation || rule.drop === "handshake") continue;
      state.seen++;
      if (rule.throttle) {
        if (this.#take(state)) continue;
        state.fired++;
        plan.reject ??= {
          statusCode: 429,
          errorCode: "ThrottlingException",
          errorMessage: "Rate exceeded.",
        };
        plan.applied.push("throttle");
        continue;
      }
      if (state.seen <= (rule.skip ?? 0)) continue;
      if (rule.times !== undefined && state.fired >= rule.times) continue;
      state.fired++;
      if (rule.reject) {
        plan.reject ??= {
          statusCode: rule.reject.statusCode,
          errorCode: rule.reject.errorCode,
          errorMessage: rule.reject.errorMessage ?? `Injected fault: ${rule.reject.errorCode}.`,
        };
        plan.applied.push(`reject ${rule.reject.statusCode} ${rule.reject.errorCode}`);
      }
      if (rule.returnCode !== undefined) plan.returnCode ??= rule.returnCode;
      if (rule.delayMs) {
        plan.delayMs += rule.delayMs;
        plan.applied.push(`delay ${rule.delayMs} ms`);
      }
      if (rule.drop) {
        plan.drop ??= rule.drop;
        plan.applied.push(`drop ${rule.drop}`);
      }
      if (rule.malformed) plan.applied.push("malformed");
      if (rule.truncated) plan.applied.push("truncated");
      if (rule.duplicate) plan.applied.push("duplicate");
      plan.malformed ||= rule.malformed ?? false;
      plan.truncated ||= rule.truncated ?? false;
      plan.duplicate ||= rule.duplicate ?? false;
    }
    return plan;
  }

  /**
   * Holds every request of `operation` at `point` until `release()`.
   * "before": on arrival, before any work. "after": the work is done (e.g. the
   * certificate exists), the answer not yet sent. For "connect": before or
   * after the certificate checks, before the CONNACK.
   */
  pause(operation: FaultOperation, point: PausePoint): PauseHandle {
    if (!FAULT_OPERATIONS.includes(operation)) {
      throw new Error(
        `pause: unknown operation ${operation}; use one of ${FAULT_OPERATIONS.join(", ")}.`,
      );
    }
    let reach!: (value: { clientId: string }) => void;
    const reached = new Promise<{ clientId: string }>((resolve) => (reach = resolve));
    const pause: Pause = { operation, point, held: [], reach, reachedOnce: false };
    this.#pauses.push(pause);
    return {
      reached,
      release: () => {
        this.#pauses = this.#pauses.filter((p) => p !== pause);
        for (const resume of pause.held.splice(0)) resume();
      },
    };
  }

  /** Waits at a pause point if a pause is set there (emulator internal). */
  checkpoint(
    operation: FaultOperation,
    point: PausePoint,
    clientId: string,
  ): Promise<void> | undefined {
    const pause = this.#pauses.find((p) => p.operation === operation && p.point === point);
    if (!pause) return undefined;
    return new Promise<void>((resolve) => {
      pause.held.push(resolve);
      pause.reach({ clientId });
    });
  }

  /** Releases every pause (on close). */
  releaseAll(): void {
    for (const pause of this.#pauses.splice(0)) for (const resume of pause.held.splice(0)) resume();
  }

  #take(state: RuleState): boolean {
    const { ratePerSecond } = state.rule.throttle!;
    const burst = state.rule.throttle!.burst ?? Math.max(1, ratePerSecond);
    const now = this.#now();
    state.tokens = Math.min(
      burst,
      state.tokens + ((now - state.refilledAt) / 1000) * ratePerSecond,
    );
    state.refilledAt = now;
    if (state.tokens >= 1) {
      state.tokens -= 1;
      return true;
    }
    return false;
  }
}

const RULE_KEYS = new Set([
  "operation",
  "skip",
  "times",
  "reject",
  "returnCode",
  "delayMs",
  "drop",
  "malformed",
  "truncated",
  "duplicate",
  "throttle",
]);

/** Checks one rule; throws an error naming `where` and the bad key. */
export function validateFaultRule(rule: unknown, where: string): asserts rule is FaultRule {
  if (typeof rule !== "object" || rule === null || Array.isArray(rule)) {
    throw new Error(
      `${where} must be an object like {"operation": "RegisterThing", "times": 1, ...}.`,
    );
  }
  const r = rule as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (!RULE_KEYS.has(key)) {
      throw new Error(
        `${where} has unknown key "${key}"; known keys: ${[...RULE_KEYS].join(", ")}.`,
      );
    }
  }
  if (!FAULT_OPERATIONS.includes(r.operation as FaultOperation)) {
    throw new Error(`${where}: "operation" must be one of ${FAULT_OPERATIONS.join(", ")}.`);
  }
  for (const key of ["skip", "times", "delayMs", "returnCode"]) {
    if (r[key] !== undefined && !(Number.isInteger(r[key]) && (r[key] as number) >= 0)) {
      throw new Error(`${where}: "${key}" must be an integer >= 0.`);
    }
  }
  if (
    r.returnCode !== undefined && ((r.returnCode as number) < 1 || (r.returnCode as number) > 5)
  ) {
    throw new Error(`${where}: "returnCode" must be a CONNACK refusal code 1-5.`);
  }
  if (r.reject !== undefined) {
    const reject = r.reject as Record<string, unknown>;
    if (
      typeof reject !== "object" || reject === null || !Number.isInteger(reject.statusCode) ||
      typeof reject.errorCode !== "string" || reject.errorCode === "" ||
      (reject.errorMessage !== undefined && typeof reject.errorMessage !== "string")
    ) {
      throw new Error(
        `${where}: "reject" must be {"statusCode": 503, "errorCode": "ServiceUnavailable", "errorMessage"?: "..."}.`,
      );
    }
  }
  if (r.drop === "handshake" && r.operation !== "connect") {
    throw new Error(`${where}: "drop": "handshake" applies to "connect" only.`);
  }
  if (
    r.drop !== undefined && !["request", "before", "after", "handshake"].includes(r.drop as string)
  ) {
    throw new Error(`${where}: "drop" must be "request", "before", "after" or "handshake".`);
  }
  for (const key of ["malformed", "truncated", "duplicate"]) {
    if (r[key] !== undefined && typeof r[key] !== "boolean") {
      throw new Error(`${where}: "${key}" must be true or false.`);
    }
  }
  if (r.throttle !== undefined) {
    const t = r.throttle as Record<string, unknown>;
    if (
      typeof t !== "object" || t === null || typeof t.ratePerSecond !== "number" ||
      !(t.ratePerSecond > 0) ||
      (t.burst !== undefined && !(Number.isInteger(t.burst) && (t.burst as number) >= 1))
    ) {
      throw new Error(
        `${where}: "throttle" must be {"ratePerSecond": 5, "burst"?: 5} with a rate > 0.`,
      );
    }
  }
}

/**
 * Parses a faults file's JSON: an array of rules or `{"faults": [...]}`.
 * Throws an error naming `source` and the bad rule.
 */
export function parseFaults(json: unknown, source: string): FaultRule[] {
  const list = Array.isArray(json) ? json : (json as { faults?: unknown } | null)?.faults;
  if (!Array.isArray(list)) {
    throw new Error(`${source} must hold a JSON array of fault rules or {"faults": [...]}.`);
  }
  list.forEach((rule, i) => validateFaultRule(rule, `${source}: fault ${i + 1}`));
  return list as FaultRule[];
}
