// SPDX-License-Identifier: Apache-2.0
/**
 * Pre-provisioning hooks on their own: real commands (shell scripts in a
 * process group of their own) and a real HTTP server, answering well, badly,
 * slowly, endlessly, or not at all.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertThrows } from "./support/assert.ts";
import {
  DEFAULT_HOOK_TIMEOUT_MS,
  type HookPayload,
  judgeAnswer,
  MAX_HOOK_ANSWER_BYTES,
  parseHookTarget,
  ROTATION_CHECK_ARN,
  runHook,
} from "../src/emulator/hooks/mod.ts";
import { tempDir } from "./support/mod.ts";

const PAYLOAD: HookPayload = {
  claimCertificateId: "a".repeat(64),
  certificateId: "b".repeat(64),
  certificatePem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
  templateArn: "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/T",
  clientId: "board-1",
  parameters: { SerialNumber: "SN-1" },
};

/** Writes an executable shell script; returns its file: target. */
function script(body: string): string {
  const path = join(tempDir("fleetprov-hook-"), "hook.sh");
  Deno.writeTextFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  Deno.chmodSync(path, 0o755);
  return `file:${path}`;
}

/** Runs a file: hook with `body` as its script. */
function command(body: string, timeoutMs = 10_000) {
  return runHook(parseHookTarget(script(body)), PAYLOAD, { timeoutMs });
}

/** Whether process `pid` still exists (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

/** Waits (up to 10 s, polling) until `pid` is gone; returns whether it went. */
async function gone(pid: number): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return !alive(pid);
}

Deno.test("hooks: AWS's limits and the emulator's cap are pinned (5 s, 64 KiB)", () => {
  assertEquals(DEFAULT_HOOK_TIMEOUT_MS, 5000);
  assertEquals(MAX_HOOK_ANSWER_BYTES, 65_536);
});

Deno.test("hooks: targets are file: commands or http(s): URLs; a Lambda ARN is refused with the fix", () => {
  assertEquals(parseHookTarget("file:/usr/local/bin/hook"), {
    kind: "file",
    path: "/usr/local/bin/hook",
    text: "file:/usr/local/bin/hook",
  });
  assertEquals(parseHookTarget("file:///opt/my%20hook").kind, "file");
  assertEquals((parseHookTarget("file:///opt/my%20hook") as { path: string }).path, "/opt/my hook");
  assertEquals(parseHookTarget("http://127.0.0.1:9000/hook").kind, "http");
  assertEquals(parseHookTarget("https://hooks.example/x").kind, "http");
  // The one function the emulator plays itself.
  assertEquals(parseHookTarget(ROTATION_CHECK_ARN), {
    kind: "rotation-check",
    text: "arn:aws:lambda:us-east-1:123456789012:function:FleetprovRotationCheck",
  });
  for (
    const [target, pattern] of [
      [
        "arn:aws:lambda:us-east-1:123456789012:function:hook",
        /cannot invoke a Lambda function; .*\(or arn:aws:lambda:us-east-1:123456789012:function:FleetprovRotationCheck, the emulator's own rotation check\)/,
      ],
      ["file://remote-host/bin/hook", /names host remote-host/],
      ["ftp://x/hook", /scheme ftp:/],
      ["http://user:secret@127.0.0.1/hook", /carries credentials/],
      ["hook.sh", /is not a URL/],
      ["", /1 to 2048 characters/],
      [`http://x/${"a".repeat(2048)}`, /1 to 2048 characters/],
    ] as const
  ) {
    assertThrows(() => parseHookTarget(target), Error, pattern);
  }
});

Deno.test('hooks: answers are judged as AWS documents them (true, "true" and 1 allow; else deny; garbage fails)', () => {
  for (const allow of [true, "true", "TRUE", 1]) {
    assertEquals(judgeAnswer(JSON.stringify({ allowProvisioning: allow })), {
      verdict: "allowed",
      parameterOverrides: {},
    });
  }
  for (const deny of [false, "false", 0, "yes", null]) {
    assertEquals(judgeAnswer(JSON.stringify({ allowProvisioning: deny })).verdict, "denied");
  }
  assertEquals(judgeAnswer("{}").verdict, "denied");
  assertEquals(
    judgeAnswer('{"allowProvisioning": true, "parameterOverrides": {"Location": "Seattle"}}'),
    { verdict: "allowed", parameterOverrides: { Location: "Seattle" } },
  );
  for (
    const garbage of [
      "not json",
      "[]",
      "null",
      '"true"',
      '{"allowProvisioning": true, "parameterOverrides": {"n": 1}}',
      '{"allowProvisioning": true, "parameterOverrides": ["a"]}',
    ]
  ) {
    assertEquals(judgeAnswer(garbage).verdict, "failed", garbage);
  }
});

Deno.test("hooks: a command gets exactly the payload on stdin and answers on stdout", async () => {
  const dir = tempDir("fleetprov-hook-in-");
  const outcome = await command(
    `cat > ${dir}/stdin.json; echo '{"allowProvisioning": true, "parameterOverrides": {"Location": "Lab"}}'`,
  );
  assertEquals(outcome, { verdict: "allowed", parameterOverrides: { Location: "Lab" } });
  assertEquals(JSON.parse(Deno.readTextFileSync(`${dir}/stdin.json`)), PAYLOAD);
});

Deno.test("hooks: a command that exits non-zero, is missing or cannot run fails, with its status", async () => {
  const failed = await command("echo '{\"allowProvisioning\": true}'; echo oops >&2; exit 3");
  assertEquals(failed.verdict, "failed");
  assertMatch((failed as { reason: string }).reason, /exited with status 3: oops/);
  const missing = await runHook(parseHookTarget("file:/nonexistent/hook"), PAYLOAD);
  assertMatch((missing as { reason: string }).reason, /cannot be run \(ENOENT\)/);
  const path = join(tempDir("fleetprov-hook-"), "not-executable");
  Deno.writeTextFileSync(path, "#!/bin/sh\necho '{}'\n", { mode: 0o644 });
  const denied = await runHook(parseHookTarget(`file:${path}`), PAYLOAD);
  assertMatch((denied as { reason: string }).reason, /cannot be run \(EACCES\)/);
  // A hook that reads nothing (its stdin closes under it) still answers.
  assertEquals((await command('echo \'{"allowProvisioning": "true"}\'')).verdict, "allowed");
});

Deno.test("hooks: a command that hangs is killed at the limit, with everything it started", async () => {
  const dir = tempDir("fleetprov-hook-hang-");
  const started = Date.now();
  const outcome = await command(`sleep 60 & echo $! > ${dir}/child.pid; wait`, 300);
  const elapsed = Date.now() - started;
  assertEquals(outcome, { verdict: "failed", reason: "did not answer within 300 ms" });
  assert(elapsed >= 300 && elapsed < 5000, `answered after ${elapsed} ms`);
  const child = Number(Deno.readTextFileSync(`${dir}/child.pid`));
  assert(await gone(child), `the hook's child ${child} was killed with its group`);
});

Deno.test("hooks: a command that floods stdout fails at 64 KiB and is killed; 64 KiB exactly is read", async () => {
  const dir = tempDir("fleetprov-hook-flood-");
  const flood = await command(`echo $$ > ${dir}/pid; exec yes`);
  assertEquals(flood, { verdict: "failed", reason: "wrote more than 65536 bytes" });
  assert(await gone(Number(Deno.readTextFileSync(`${dir}/pid`))), "the flooding hook was killed");
  const head = '{"allowProvisioning": true, "parameterOverrides": {"pad": "';
  const exact = head + "x".repeat(MAX_HOOK_ANSWER_BYTES - head.length - 3) + '"}}';
  assertEquals(exact.length, MAX_HOOK_ANSWER_BYTES);
  const answerPath = join(dir, "answer.json");
  Deno.writeTextFileSync(answerPath, exact);
  assertEquals((await command(`cat ${answerPath}`)).verdict, "allowed");
  Deno.writeTextFileSync(answerPath, exact + " ");
  assertEquals((await command(`cat ${answerPath}`)).verdict, "failed");
});

Deno.test("hooks: an HTTP hook gets the payload as a JSON POST; bad statuses, garbage, floods and hangs fail", async () => {
  const seen: unknown[] = [];
  const hung: (() => void)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/allow") {
      seen.push({
        method: request.method,
        type: request.headers.get("content-type"),
        body: await request.json(),
      });
      return Response.json({ allowProvisioning: true, parameterOverrides: { Location: "Web" } });
    }
    await request.body?.cancel();
    if (path === "/deny") return Response.json({ allowProvisioning: false });
    if (path === "/error") return new Response("boom", { status: 500 });
    if (path === "/redirect") return Response.redirect("http://127.0.0.1:1/allow", 302);
    if (path === "/garbage") return new Response("<html>");
    if (path === "/flood") return new Response("x".repeat(MAX_HOOK_ANSWER_BYTES + 1));
    return await new Promise<Response>((resolve) => hung.push(() => resolve(new Response("{}"))));
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const run = (path: string, timeoutMs = 10_000) =>
    runHook(parseHookTarget(`${base}${path}`), PAYLOAD, { timeoutMs });
  try {
    assertEquals(await run("/allow"), {
      verdict: "allowed",
      parameterOverrides: { Location: "Web" },
    });
    assertEquals(seen, [{ method: "POST", type: "application/json", body: PAYLOAD }]);
    assertEquals((await run("/deny")).verdict, "denied");
    assertEquals(await run("/error"), { verdict: "failed", reason: "answered HTTP 500" });
    assertEquals(await run("/redirect"), { verdict: "failed", reason: "answered HTTP 302" });
    assertEquals(await run("/garbage"), { verdict: "failed", reason: "its answer is not JSON" });
    assertEquals(await run("/flood"), {
      verdict: "failed",
      reason: "answered more than 65536 bytes",
    });
    assertEquals(await run("/hang", 300), {
      verdict: "failed",
      reason: "did not answer within 300 ms",
    });
    const refused = await runHook(parseHookTarget("http://127.0.0.1:1/x"), PAYLOAD);
    assertMatch((refused as { reason: string }).reason, /request failed \(ECONNREFUSED\)/);
  } finally {
    for (const release of hung) release();
    await server.shutdown();
  }
});
