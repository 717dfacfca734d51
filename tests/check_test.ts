// SPDX-License-Identifier: Apache-2.0
/** `fleetprov check` / `--dry-run`, `--help` and `--export-default-settings`. */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { chmodSync, existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { runCheckCommand } from "../src/commands/check.ts";
import { EXIT_CODES, exportDefaultSettings, helpText } from "../src/commands/help.ts";
import { loadSettings } from "../src/config/mod.ts";
import { allFlags } from "../src/config/flags.ts";
import { ExitCode } from "../src/errors.ts";
import { writeRuntimeConfig } from "../src/runtime_config/mod.ts";
import { ensureDirectory } from "../src/secure_files/mod.ts";
import {
  BOARD,
  deviceHome,
  type Layout,
  leafCertificate,
  loadOptions,
  makeLayout,
  runFleetprov,
  settingsError,
  withEmulator,
} from "./support/mod.ts";

/** Runs `check` in-process and captures what it prints. */
async function check(layout: Layout, args: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runCheckCommand(args, {
    ...loadOptions(layout),
    stdout: (t) => stdout += t,
    stderr: (t) => stderr += t,
  });
  return { code, stdout, stderr };
}

Deno.test("check: a valid config prints the effective settings and the run plan, exit 0", async () => {
  const layout = await makeLayout();
  const r = await check(layout, [...layout.args, "--thing-name", "claim-1"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stderr, "");
  assertMatch(r.stdout, /^Effective settings:\n/);
  assertMatch(r.stdout, / {2}Endpoint: +abc123-ats\.iot\.us-east-1\.amazonaws\.com:8883\n/);
  assertMatch(r.stdout, new RegExp(` {2}Certificate: +${layout.claimCert}\n`));
  assertMatch(r.stdout, new RegExp(` {2}Root CA: +${layout.rootCa}\n`));
  assertMatch(r.stdout, / {2}Client id: +claim-1\n/);
  assertMatch(r.stdout, / {2}Template name: +BoardTemplate\n/);
  assertMatch(
    r.stdout,
    /A run would: provision: connect to abc123-ats\.iot\.us-east-1\.amazonaws\.com:8883 as client id claim-1 with the claim certificate, CreateKeysAndCertificate/,
  );
  assertMatch(r.stdout, /Nothing was contacted/);
});

Deno.test("check: the plan for each path", async (t) => {
  const layout = await makeLayout();
  const cases: [string, string[], RegExp][] = [
    [
      "keys path",
      layout.args,
      /A run would: provision: .*CreateKeysAndCertificate \(AWS IoT creates the key and certificate\), RegisterThing with template BoardTemplate, write/,
    ],
    [
      "CSR path",
      [
        ...layout.args,
        "--csr-file",
        layout.csr,
        "--device-key",
        layout.deviceKey,
        "--fleet-provisioning-template-parameters",
        '{"SerialNumber":"SN-1"}',
      ],
      new RegExp(
        `CreateCertificateFromCsr with the CSR ${layout.csr} \\(the key stays at ${layout.deviceKey}\\), RegisterThing with template BoardTemplate and parameters SerialNumber,`,
      ),
    ],
    [
      "CSR without device key",
      [...layout.args, "--csr-file", layout.csr],
      /CreateKeysAndCertificate/,
    ],
    [
      "generated key",
      [...layout.args, "--generate-key", "ec-p384"],
      /generate a ec-p384 key and CSR on the device, CreateCertificateFromCsr \(the key never leaves the device\)/,
    ],
    [
      "disabled",
      layout.args.slice(0, 8),
      /A run would: nothing: fleet provisioning is disabled .*; exit 0\./,
    ],
    ["port 443", [...layout.args, "--port", "443"], /Endpoint: +\S+:443 \(ALPN x-amzn-mqtt-ca\)/],
  ];
  for (const [name, args, pattern] of cases) {
    await t.step(name, async () => {
      const r = await check(layout, args);
      assertEquals(r.code, 0, r.stderr);
      assertMatch(r.stdout, pattern);
    });
  }
});

Deno.test("check: already provisioned says so with the thing name", async () => {
  const layout = await makeLayout();
  ensureDirectory(layout.configDir, 0o745);
  writeRuntimeConfig(join(layout.configDir, "aws-iot-device-client-runtime.conf"), {
    cert: layout.claimCert,
    key: layout.claimKey,
    thingName: "board-SN-7",
    deviceConfig: {},
  });
  const r = await check(layout, layout.args);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(
    r.stdout,
    /Runtime config: +.*aws-iot-device-client-runtime\.conf \(provisioned as board-SN-7\)/,
  );
  assertMatch(
    r.stdout,
    /A run would: nothing: already provisioned as thing board-SN-7 \(completed-fp is true in .*\); exit 0\./,
  );
});

Deno.test("check: secrets are redacted and key material is never printed", async () => {
  const layout = await makeLayout();
  const proxy = join(layout.certsDir, "proxy.conf");
  writeFileSync(
    proxy,
    JSON.stringify({
      "http-proxy-enabled": true,
      "http-proxy-host": "10.1.2.3",
      "http-proxy-port": "3128",
      "http-proxy-auth-method": "UserNameAndPassword",
      "http-proxy-username": "proxyuser",
      "http-proxy-password": "Pr0xy-Pa55word",
    }),
  );
  chmodSync(proxy, 0o600);
  const r = await check(layout, [
    ...layout.args,
    "--csr-file",
    layout.csr,
    "--device-key",
    layout.deviceKey,
    "--secure-element-pin",
    "8642097531",
    "--http-proxy-config",
    proxy,
  ]);
  assertEquals(r.code, 0, r.stderr);
  const all = r.stdout + r.stderr;
  assertMatch(
    r.stdout,
    /HTTP proxy: +enabled \(.*proxy\.conf\), 10\.1\.2\.3:3128, auth UserNameAndPassword, user proxyuser, password <redacted>\n/,
  );
  assert(!all.includes("Pr0xy-Pa55word"), "proxy password printed");
  assert(!all.includes("8642097531"), "PIN printed");
  assert(!all.includes("PRIVATE KEY"), "a private key printed");
  for (const file of [layout.claimKey, layout.deviceKey]) {
    for (const line of readFileSync(file, "utf8").split("\n").filter((l) => l.length > 20)) {
      assert(!all.includes(line), "key material printed");
    }
  }
});

/** A case of check against a run: its arguments, exit code, first line and problem count. */
interface CheckCase {
  name: string;
  setup: (l: Layout) => string[];
  code: number;
  pattern: RegExp;
  /** How many problems check counts (one root cause, one problem). */
  problems?: number;
}

const CHECK_CASES: CheckCase[] = [
  {
    name: "permission error",
    setup: (l) => (chmodSync(l.claimKey, 0o644), l.args),
    code: ExitCode.NoPermission,
    pattern: /Private key .* has mode 644; it must be 600/,
    problems: 1,
  },
  {
    name: "config error",
    setup: (l) => [...l.args, "--port", "http"],
    code: ExitCode.Config,
    pattern: /--port is "http"/,
  },
  {
    name: "unknown flag",
    setup: (l) => [...l.args, "--frobnicate", "1"],
    code: ExitCode.Config,
    pattern: /Unknown flag --frobnicate/,
  },
  {
    name: "missing required",
    setup: () => ["--enable-fleet-provisioning", "true"],
    code: ExitCode.Config,
    pattern: /The endpoint is missing/,
  },
  {
    name: "a config file of random bytes: one problem, not one per parser error plus missing keys",
    setup: (l) => {
      const path = join(l.certsDir, "random.conf");
      const bytes = new Uint8Array(3000);
      for (let i = 0, x = 7; i < bytes.length; i++) {
        bytes[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
      }
      writeFileSync(path, bytes, { mode: 0o640 });
      return ["--config-file", path];
    },
    code: ExitCode.Config,
    pattern:
      /Config file \S+random\.conf is not valid JSON: line 1, column 1: .* \(and \d+ more errors? after it\)\./,
    problems: 1,
  },
  {
    name: "a config file the storage cannot read (EIO): 74",
    setup: (l) => {
      const path = join(l.certsDir, "eio.conf");
      symlinkSync("/proc/self/mem", path);
      return ["--config-file", path];
    },
    code: ExitCode.IoError,
    pattern: /Config file \S+eio\.conf cannot be read: the storage reported an I\/O error \(EIO\)/,
    problems: 1,
  },
  ...ROOT_CA_CASES(),
];

/** A certificate that cannot anchor a chain: neither a CA nor self-signed. */
const LEAF = (await leafCertificate("server.example.com")).toString("pem");

/** A root CA a run could not use, written in place of the layout's. */
function ROOT_CA_CASES(): CheckCase[] {
  const replaced = (l: Layout, text: string) => {
    writeFileSync(l.rootCa, text);
    return l.args;
  };
  return [
    {
      name: "a root CA of garbage",
      setup: (l) => replaced(l, "hello, world\n"),
      code: ExitCode.Config,
      pattern: /^fleetprov: Root CA \S+ \(from --root-ca\) holds no PEM certificate/m,
      problems: 1,
    },
    {
      name: "a private key as the root CA",
      setup: (l) => replaced(l, readFileSync(l.claimKey, "utf8")),
      code: ExitCode.Config,
      pattern: /^fleetprov: Root CA \S+ \(from --root-ca\) holds no PEM certificate/m,
      problems: 1,
    },
    {
      name: "a root CA whose armour holds no X.509 certificate",
      setup: (l) =>
        replaced(
          l,
          `${
            readFileSync(l.rootCa, "utf8")
          }-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`,
        ),
      code: ExitCode.Config,
      pattern:
        /^fleetprov: Root CA \S+ \(from --root-ca\): certificate 2 of 2 is not a valid X\.509 certificate\./m,
      problems: 1,
    },
    {
      name: "a leaf certificate (no CA, not self-signed) as the root CA",
      setup: (l) => replaced(l, LEAF),
      code: ExitCode.Config,
      pattern: /^fleetprov: Root CA \S+ \(from --root-ca\) holds no CA certificate/m,
      problems: 1,
    },
    {
      name: "a claim certificate of garbage inside its armour",
      setup: (l) => {
        writeFileSync(
          l.claimCert,
          "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        return l.args;
      },
      code: ExitCode.Config,
      pattern: /^fleetprov: Certificate \S+ \(from --cert\) is not a PEM X\.509 certificate\./m,
      problems: 1,
    },
    {
      name: "a claim key of another certificate",
      setup: (l) => l.args.map((a) => a === l.claimKey ? l.otherKey : a),
      code: ExitCode.Config,
      pattern: /^fleetprov: Private key \S+ does not belong to certificate \S+/m,
      problems: 1,
    },
  ];
}

Deno.test("check: errors and exit codes are those of a run (in-process and the real CLI)", async (t) => {
  for (const c of CHECK_CASES) {
    await t.step(c.name, async () => {
      const layout = await makeLayout();
      const args = c.setup(layout);
      const inProcess = await check(layout, args);
      assertEquals(inProcess.code, c.code, inProcess.stderr);
      assertEquals(inProcess.stdout, "");
      assertMatch(inProcess.stderr, c.pattern);
      assertMatch(inProcess.stderr, new RegExp(`a run would exit with code ${c.code}\\.\\n$`));
      if (c.problems !== undefined) {
        assertMatch(inProcess.stderr, new RegExp(`check: ${c.problems} problem\\(s\\);`));
      }

      const env = { MACHINE_ID: "unused" };
      const viaCheck = await runFleetprov(["check", ...args], { home: layout.home, env });
      const viaRun = await runFleetprov(args, { home: layout.home, env });
      assertEquals(viaCheck.code, c.code, viaCheck.stderr);
      assertEquals(viaRun.code, c.code, viaRun.stderr);
      const errorLines = (text: string) =>
        text.split("\n").filter((l) => l.startsWith("fleetprov: ") && !l.includes("warning"));
      assert(errorLines(viaRun.stderr).length > 0, viaRun.stderr);
      // The same lines, no more, no fewer: check parses what a run parses.
      assertEquals(errorLines(viaCheck.stderr), errorLines(viaRun.stderr));
      if (c.problems !== undefined) assertEquals(errorLines(viaRun.stderr).length, c.problems);
    });
  }
});

Deno.test("--dry-run anywhere on the command line runs check and connects nowhere", async () => {
  const layout = await makeLayout();
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const args = [
      ...layout.args.map((a) => a === "abc123-ats.iot.us-east-1.amazonaws.com" ? "127.0.0.1" : a),
      "--port",
      String(port),
    ];
    for (const variant of [["--dry-run", ...args], [...args, "--dry-run"], ["check", ...args]]) {
      const r = await runFleetprov(variant, { home: layout.home });
      assertEquals(r.code, 0, r.stderr);
      assertMatch(r.stdout, /^Effective settings:/);
      assertMatch(r.stdout, new RegExp(`Endpoint: +127\\.0\\.0\\.1:${port}`));
    }
    const inProcess = await check(layout, args);
    assertEquals(inProcess.code, 0);
    // Sanity: the server does count connections.
    await new Promise<void>((resolve, reject) => {
      const s = Deno.connect({ hostname: "127.0.0.1", port });
      s.then((c) => {
        c.close();
        resolve();
      }, reject);
    });
    await waitFor(() => connections === 1);
    assertEquals(connections, 1, "only the sanity connection reached the endpoint");
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("after a real provisioning, check passes with no warnings and reports the thing", () =>
  withEmulator(BOARD, async (emulator) => {
    const home = deviceHome();
    const args = [
      "--config-file",
      emulator.configPath,
      "--fleet-provisioning-template-parameters",
      '{"SerialNumber": "SN-42"}',
    ];
    const run = await runFleetprov(args, { home });
    assertEquals(run.code, 0, run.stderr);
    const r = await runFleetprov(["check", ...args], { home });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /A run would: nothing: already provisioned as thing board-SN-42/);
    const permissionWarnings = r.stderr.split("\n").filter((l) =>
      /has mode|is owned by/.test(l) && !l.includes(dirname(emulator.configPath))
    );
    assertEquals(permissionWarnings, [], "fleetprov's own files trip its own checks");
  }));

Deno.test("help: usage, subcommands, every flag with its default, exit codes", () => {
  const text = helpText();
  for (const word of ["fleetprov [flags]", "fleetprov check", "fleetprov emulator"]) {
    assert(text.includes(word), word);
  }
  for (const f of allFlags().filter((f) => !f.foreign)) {
    assertMatch(
      text,
      new RegExp(`\\n  ${f.flag}${f.value ? ` ${f.value.replace("|", "\\|")}` : ""}`),
    );
    if (f.default) assert(text.includes(f.default.split(" ")[0]), `${f.flag} default`);
  }
  for (const [code] of EXIT_CODES) assertMatch(text, new RegExp(`\\n  ${code} +\\S`));
  assertEquals(EXIT_CODES.map(([c]) => c), Object.values(ExitCode).sort((a, b) => a - b));
  assertMatch(
    text,
    /RestartPreventExitStatus=1 73 74 77 78 in a systemd unit: those need a person/,
  );
  for (const line of text.split("\n")) assert(line.length <= 100, `long help line: ${line}`);
});

Deno.test("--export-default-settings writes a DC-style config 0640 that loads once filled in", async () => {
  const layout = await makeLayout();
  const path = join(layout.root, "exported.conf");
  exportDefaultSettings(path);
  assertEquals((statSync(path).mode & 0o777).toString(8), "640");
  const exported = JSON.parse(readFileSync(path, "utf8"));
  assertEquals(exported["fleet-provisioning"].enabled, false);
  assertEquals(exported.port, 8883);

  // As exported, the placeholders are refused with one line each.
  const error = await settingsError(() =>
    loadSettings(["--config-file", path], loadOptions(layout))
  );
  assertMatch(
    error.message,
    /"cert" in .* is "<replace_with_certificate_file_path>": it contains '<' '>'/,
  );

  // Filled in, it loads with the documented defaults.
  Object.assign(exported, {
    endpoint: "abc123-ats.iot.us-east-1.amazonaws.com",
    cert: layout.claimCert,
    key: layout.claimKey,
    "root-ca": layout.rootCa,
    "thing-name": "t",
  });
  exported["fleet-provisioning"]["template-name"] = "BoardTemplate";
  writeFileSync(path, JSON.stringify(exported));
  const s = await loadSettings(["--config-file", path], loadOptions(layout));
  assertEquals(s.retry, {
    stepTimeoutMs: 10_000,
    deadlineMs: 300_000,
    baseDelayMs: 1000,
    maxDelayMs: 30_000,
  });
  assertEquals([s.port, s.payloadFormat, s.logging.level, s.logging.type], [
    8883,
    "json",
    "INFO",
    "STDOUT",
  ]);

  // Through the CLI, and into a missing directory.
  const viaCli = join(layout.root, "cli.conf");
  const r = await runFleetprov(["--export-default-settings", viaCli], { home: layout.home });
  assertEquals(r.code, 0, r.stderr);
  assert(existsSync(viaCli));
  const bad = await runFleetprov(
    ["--export-default-settings", join(layout.root, "no", "dir.conf")],
    { home: layout.home },
  );
  assertEquals(bad.code, ExitCode.Config);
  assertMatch(bad.stderr, /directory .*no does not exist; create it first\./);
});
