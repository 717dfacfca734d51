// SPDX-License-Identifier: Apache-2.0
/**
 * The assertion names of Deno's standard library (which is unreachable here),
 * on top of node:assert/strict.
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Asserts that `value` is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message as string);
}

/** Asserts deep strict equality. */
export function assertEquals<T>(
  actual: unknown,
  expected: T,
  message?: string,
): asserts actual is T {
  nodeAssert.deepStrictEqual(actual, expected, message as string);
}

/** Asserts deep strict inequality. */
export function assertNotEquals(actual: unknown, expected: unknown, message?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, message as string);
}

/** Asserts that `text` matches `pattern`. */
export function assertMatch(text: string, pattern: RegExp, message?: string): void {
  nodeAssert.match(text, pattern, message as string);
}

/** Asserts that `fn` throws an error of `type` (when given) and returns it. */
export function assertThrows<T extends Error = Error>(
  fn: () => unknown,
  typeOrPattern?: (abstract new (...args: never[]) => T) | RegExp,
  pattern?: RegExp,
): T {
  const type = typeOrPattern instanceof RegExp ? undefined : typeOrPattern;
  pattern ??= typeOrPattern instanceof RegExp ? typeOrPattern : undefined;
  try {
    fn();
  } catch (error) {
    if (type) nodeAssert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    if (pattern) nodeAssert.match((error as Error).message, pattern);
    return error as T;
  }
  throw new nodeAssert.AssertionError({ message: "expected the function to throw" });
}

/** Asserts that `promise` rejects and returns the error. */
export async function assertRejects(promise: Promise<unknown>, pattern?: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (pattern) nodeAssert.match((error as Error).message, pattern);
    return error as Error;
  }
  throw new nodeAssert.AssertionError({ message: "expected the promise to reject" });
}
