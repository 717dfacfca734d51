// SPDX-License-Identifier: Apache-2.0
/**
 * Test steps run side by side.
 *
 * @module
 */
import { assertEquals } from "./assert.ts";

/** Runs cases as concurrent steps, `width` at a time; each has its own emulator and home. */
export async function concurrentSteps(
  t: Deno.TestContext,
  cases: { name: string; fn: () => Promise<void> }[],
  width = 3,
): Promise<void> {
  const queue = [...cases];
  const failures: string[] = [];
  async function worker(): Promise<void> {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const ok = await t.step({
        name: next.name,
        fn: next.fn,
        sanitizeOps: false,
        sanitizeResources: false,
        sanitizeExit: false,
      });
      if (!ok) failures.push(next.name);
    }
  }
  await Promise.all(Array.from({ length: width }, worker));
  assertEquals(failures, []);
}
