// SPDX-License-Identifier: Apache-2.0
/**
 * One evaluator: for each claim policy of tests/lint_corpus/, `fleetprov
 * lint` runs on a board's arguments and the real CLI provisions with the
 * same arguments against the emulator started with that policy, over MQTT
 * 3.1.1 and 5. Each policy lint flags is refused by the emulator at the
 * action lint names first (the same packet and topic, so the same step),
 * and the board fails; each policy lint passes provisions, with no refusal
 * on the way. Over MQTT 5 the board's error line names the packet, the topic
 * and the statement lint adds.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertNotEquals } from "./support/assert.ts";
import {
  boardEmulator,
  deviceArgs,
  deviceHome,
  oneLineError,
  ROOT,
  runFleetprov,
  tempDir,
} from "./support/mod.ts";
import { runLintCommand } from "../src/commands/lint.ts";
import { ExitCode } from "../src/errors.ts";
import type { Finding } from "../src/lint/mod.ts";

const CORPUS = join(ROOT, "tests", "lint_corpus");
const CLIENT_ID = "board-lint-1";
/** Fast enough for three silent timeouts: 1 s per answer. */
const RETRY = [
  "--step-timeout",
  "1",
  "--deadline",
  "20",
  "--retry-base-delay",
  "0.02",
  "--retry-max-delay",
  "0.1",
];

/** An MQTT action as the broker refused it, or as lint names it. */
interface Refusal {
  action: string;
  name: string;
}

interface Case {
  file: string;
  /** The board's own flags. */
  extra: string[];
  /** What lint names first and the emulator refuses first; undefined: it provisions. */
  refused?: Refusal & { step: string; because: RegExp };
}

const CSR = ["--generate-key", "ec-p256"];
const CASES: Case[] = [
  { file: "aws_docs_claim_policy.json", extra: [] },
  { file: "aws_docs_with_csr.json", extra: CSR },
  { file: "aws_docs_with_csr.json", extra: ["--payload-format", "cbor"] },
  {
    file: "subscribe_on_topic.json",
    extra: [],
    refused: {
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create/json/accepted",
      because: /grants iot:Subscribe on topic\/… .*checks iot:Subscribe against topicfilter\/ ARNs/,
    },
  },
  {
    file: "aws_docs_claim_policy.json",
    extra: CSR,
    refused: {
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create-from-csr/json/accepted",
      because: /CreateKeysAndCertificate's topics, but the device uses CreateCertificateFromCsr/,
    },
  },
  {
    file: "json_only.json",
    extra: ["--payload-format", "cbor"],
    refused: {
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create/cbor/accepted",
      because: /the JSON topics, but the device sends CBOR/,
    },
  },
  {
    file: "other_template.json",
    extra: [],
    refused: {
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/provisioning-templates/BoardTemplate/provision/json/accepted",
      because: /template LegacyTemplate's topics, but the device asks for template BoardTemplate/,
    },
  },
  {
    file: "no_receive_on_accepted.json",
    extra: [],
    refused: {
      step: "CreateKeysAndCertificate",
      action: "iot:Receive",
      name: "$aws/certificates/create/json/accepted",
      because:
        /statement 2 covers topic\/\$aws\/certificates\/create\/json\/accepted for iot:Publish but not for iot:Receive/,
    },
  },
  {
    file: "explicit_deny.json",
    extra: [],
    refused: {
      step: "RegisterThing",
      action: "iot:Publish",
      name: "$aws/provisioning-templates/BoardTemplate/provision/json",
      because: /statement 4 \(Sid "NoRegistrationDuringFreeze"\) of .* denies it/,
    },
  },
  {
    file: "misspelt_action.json",
    extra: [],
    refused: {
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create/json/accepted",
      because: /"iot:Subscibe", which is not an AWS IoT action \(did you mean iot:Subscribe\?\)/,
    },
  },
  {
    file: "connect_as_thing.json",
    extra: [],
    refused: {
      step: "connect",
      action: "iot:Connect",
      name: CLIENT_ID,
      because: /\$\{iot:Connection\.Thing\.ThingName\} does not resolve.*no thing attached/,
    },
  },
  {
    file: "mqtt_wildcard.json",
    extra: [],
    refused: {
      step: "subscribe",
      action: "iot:Subscribe",
      name: "$aws/certificates/create/json/accepted",
      because: /MQTT wildcards \+ and # are plain characters in a policy/,
    },
  },
];

/** The corpus file with the emulator's region, account and template in place of the docs'. */
function policyFor(file: string): { path: string; document: unknown } {
  const text = readFileSync(join(CORPUS, file), "utf8")
    .replaceAll("aws-region", "us-east-1")
    .replaceAll("aws-account-id", "123456789012")
    .replaceAll("templateName", "BoardTemplate");
  const path = join(tempDir("fleetprov-lint-"), file);
  writeFileSync(path, text);
  return { path, document: JSON.parse(text) };
}

/** Runs lint in this process on the board's arguments; its JSON report. */
async function lint(args: string[], home: string) {
  let output = "";
  const code = await runLintCommand(args, { json: true, stdout: (t) => (output += t), home });
  const report = JSON.parse(output) as { exitCode: number; findings: Finding[] };
  assertEquals(report.exitCode, code);
  return report;
}

for (const c of CASES) {
  const label = `${c.file}${c.extra.length ? ` (${c.extra.join(" ")})` : ""}`;
  Deno.test(`lint agrees with the emulator: ${label} ${c.refused ? "is refused at " + c.refused.step : "provisions"}`, async () => {
    const policy = policyFor(c.file);
    const emulator = await boardEmulator({ claimPolicy: policy.document, keyType: "ec-p256" });
    try {
      const refusals: Refusal[] = [];
      emulator.events.on("violation", (e) => refusals.push({ action: e.action, name: e.name }));
      emulator.events.on("connect", (e) => {
        if (!e.accepted && /iot:Connect/.test(e.reason ?? "")) {
          refusals.push({ action: "iot:Connect", name: e.clientId });
        }
      });
      const args = deviceArgs(emulator, {
        serial: "SN-LINT",
        extra: ["--client-id", CLIENT_ID, ...c.extra],
        retry: RETRY,
      });
      const report = await lint([...args, "--claim-policy", policy.path], deviceHome());
      const errors = report.findings.filter((f) => f.severity === "error");
      if (!c.refused) assertEquals(errors, [], JSON.stringify(errors, null, 2));
      else {
        assertEquals(report.exitCode, ExitCode.Config);
        const first = errors[0];
        assertEquals(
          { step: first.step, action: first.action, name: first.name },
          { step: c.refused.step, action: c.refused.action, name: c.refused.name },
        );
        assertMatch(first.message, c.refused.because);
        if (first.add) assertEquals(first.add.Action, c.refused.action);
        else assertMatch(first.fix ?? "", /^narrow statement \d+ .* so it does not cover arn:/);
      }
      for (const version of ["3.1.1", "5"]) {
        refusals.length = 0;
        const result = await runFleetprov([...args, "--mqtt-version", version], {
          home: deviceHome(),
        });
        const output = result.stdout + result.stderr;
        if (!c.refused) {
          assertEquals(result.code, ExitCode.Ok, `MQTT ${version}: ${output}`);
          assertEquals(refusals, [], `MQTT ${version}`);
          continue;
        }
        assertNotEquals(result.code, ExitCode.Ok, `MQTT ${version}: ${output}`);
        assert(refusals.length > 0, `MQTT ${version}: the emulator refused nothing:\n${output}`);
        assertEquals(
          refusals[0],
          { action: c.refused.action, name: c.refused.name },
          `MQTT ${version}`,
        );
        if (version === "5" && c.refused.action !== "iot:Receive") {
          // The board's line names a packet lint flags, its topic, and the statement lint adds
          // (with * for the region and account the board cannot know). Which of the refused
          // packets the board meets first is the broker's order: any of lint's errors will do.
          const line = oneLineError(result, true);
          const named = errors.filter((f) => f.action !== "iot:Connect").some((f) => {
            const type = f.action === "iot:Subscribe" ? "topicfilter" : "topic";
            const statement =
              `"Action":"${f.action}","Resource":"arn:aws:iot:*:*:${type}/${f.name}"`;
            return line.includes(` for ${f.name}: `) && line.includes(statement);
          });
          assert(named || c.refused.action === "iot:Connect", line);
        }
      }
    } finally {
      await emulator.close();
    }
  });
}
