// SPDX-License-Identifier: Apache-2.0
/** Permission and ownership rules of spec §3: each fatal and each warning case, files and directories. */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { chmodSync, chownSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSettings } from "../src/config/mod.ts";
import {
  checkFile,
  checkStats,
  formatMode,
  type PermissionRule,
  RULES,
  type Severity,
} from "../src/config/permissions.ts";
import { ExitCode } from "../src/errors.ts";
import { writeRuntimeConfig } from "../src/runtime_config/mod.ts";
import { ensureDirectory } from "../src/secure_files/mod.ts";
import {
  BOARD,
  configDirOf,
  deviceArgs,
  deviceHome,
  type Layout,
  listFiles,
  loadOptions,
  makeLayout,
  modeOf,
  ROOT,
  runFleetprov,
  runtimeConfigPathOf,
  secureElementFlags,
  settingsError,
  skipWhenMissing,
  withEmulator,
  writeConfig,
} from "./support/mod.ts";

const ME = { uid: 0, user: "root" };

Deno.test("the rule table is spec §3", () => {
  const table = Object.fromEntries(
    Object.values(RULES).map((r: PermissionRule) => [
      r.what,
      [formatMode(r.mode), r.dirMode === undefined ? "-" : formatMode(r.dirMode), r.severity],
    ]),
  );
  assertEquals(table, {
    "private key": ["600", "700", "fatal"],
    "certificate": ["644", "700", "fatal"],
    "root CA": ["644", "700", "fatal"],
    "CSR": ["600", "700", "fatal"],
    "PKCS#11 library": ["640", "700", "fatal"],
    "config file": ["640", "745", "warning"],
    "runtime config": ["640", "745", "warning"],
    "HTTP proxy config": ["600", "-", "warning"],
  });
});

Deno.test("checkStats: a looser mode is reported; the message names file, found, wanted and the fix", async (t) => {
  for (const rule of Object.values(RULES) as PermissionRule[]) {
    await t.step(`${rule.what} ${formatMode(rule.mode)}`, () => {
      assertEquals(checkStats("/d/f", { mode: 0o100000 | rule.mode, uid: 0 }, rule, ME), []);
      for (const wrong of [0o644, 0o664, 0o666, 0o777, 0o4000 | rule.mode]) {
        if (wrong === rule.mode) continue;
        const findings = checkStats("/d/f", { mode: 0o100000 | wrong, uid: 0 }, rule, ME);
        assertEquals(findings.length, 1);
        assertEquals(findings[0].severity, rule.severity);
        assertEquals(findings[0].kind, "permission");
        assertEquals(
          findings[0].message,
          `${rule.what[0].toUpperCase()}${rule.what.slice(1)} /d/f has mode ${
            formatMode(wrong)
          }; it must be ${formatMode(rule.mode)}. Fix: chmod ${formatMode(rule.mode)} /d/f`,
        );
      }
    });
  }
  await t.step("paths with spaces are quoted in the fix", () => {
    const [f] = checkStats("/a b/k", { mode: 0o644, uid: 0 }, RULES.privateKey, ME);
    assertMatch(f.message, /Fix: chmod 600 '\/a b\/k'$/);
  });
});

Deno.test("checkStats: a stricter mode passes where DC only warns, and stays fatal where DC refuses it", async (t) => {
  const dirOf = (rule: PermissionRule) => ({
    what: `directory of the ${rule.what}`,
    mode: rule.dirMode!,
    severity: rule.severity,
  });
  // [what is checked, mode found, passes]
  const cases: [{ what: string; mode: number; severity: Severity }, number, boolean][] = [
    [RULES.configFile, 0o600, true],
    [RULES.configFile, 0o400, true],
    [RULES.configFile, 0o440, true],
    [RULES.configFile, 0o000, true],
    [RULES.configFile, 0o660, false],
    [RULES.configFile, 0o604, false],
    [RULES.configFile, 0o740, false],
    [RULES.configFile, 0o2640, false],
    [dirOf(RULES.configFile), 0o700, true],
    [dirOf(RULES.configFile), 0o705, true],
    [dirOf(RULES.configFile), 0o500, true],
    [dirOf(RULES.configFile), 0o755, false],
    [dirOf(RULES.configFile), 0o747, false],
    [dirOf(RULES.configFile), 0o1745, false],
    [RULES.runtimeConfig, 0o600, true],
    [RULES.runtimeConfig, 0o644, false],
    [dirOf(RULES.runtimeConfig), 0o700, true],
    [dirOf(RULES.runtimeConfig), 0o775, false],
    [RULES.proxyConfig, 0o400, true],
    [RULES.proxyConfig, 0o640, false],
    // Fatal rules: DC reads the same files after fleetprov and wants these exact modes.
    [RULES.privateKey, 0o400, false],
    [dirOf(RULES.privateKey), 0o500, false],
    [RULES.certificate, 0o600, false],
    [RULES.certificate, 0o444, false],
    [RULES.rootCa, 0o640, false],
    [RULES.csr, 0o400, false],
    [RULES.pkcs11Lib, 0o600, false],
  ];
  for (const [wanted, mode, passes] of cases) {
    await t.step(`${wanted.what} ${formatMode(mode)} for ${formatMode(wanted.mode)}`, () => {
      const findings = checkStats("/d/f", { mode: 0o100000 | mode, uid: 0 }, wanted, ME);
      assertEquals(findings.length, passes ? 0 : 1, JSON.stringify(findings));
      if (!passes) {
        assertEquals(findings[0].severity, wanted.severity);
        assertMatch(findings[0].message, new RegExp(`has mode ${formatMode(mode)}; it must be `));
      }
    });
  }
});

Deno.test("checkStats: the owner must be the user, unless the user is root", async (t) => {
  const cases: [string, number, number, boolean][] = [
    ["root reads a file owned by uid 1234", 0, 1234, true],
    ["uid 1000 reads its own file", 1000, 1000, true],
    ["uid 1000 reads a file owned by uid 1234", 1000, 1234, false],
    ["uid 1000 reads a file owned by root", 1000, 0, false],
  ];
  for (const [name, uid, owner, ok] of cases) {
    await t.step(name, () => {
      const findings = checkStats(
        "/d/k",
        { mode: 0o600, uid: owner },
        RULES.privateKey,
        { uid, user: "alice" },
      );
      assertEquals(findings.length, ok ? 0 : 1);
      if (!ok) {
        assertEquals(findings[0].severity, "fatal");
        assertEquals(
          findings[0].message,
          `Private key /d/k is owned by uid ${owner}, not by uid ${uid} running fleetprov; it must be owned by that user (or fleetprov run as root). Fix: chown alice /d/k`,
        );
      }
    });
  }
});

function load(
  layout: Layout,
  args: string[],
  extra: Partial<Parameters<typeof loadSettings>[1]> = {},
) {
  return loadSettings(args, { ...loadOptions(layout), ...extra });
}

/** Moves a claim file into its own directory (so its directory mode can be tested alone). */
function ownDir(layout: Layout, file: string, name: string): string {
  const dir = join(layout.root, name);
  mkdirSync(dir, { mode: 0o700 });
  chmodSync(dir, 0o700);
  const target = join(dir, file.split("/").pop()!);
  renameSync(file, target);
  return target;
}

Deno.test("fatal rules through loadSettings: each file and each parent directory, exit 77", async (t) => {
  type Case = [string, (l: Layout) => string[], RegExp];
  const csrArgs = (l: Layout) => [...l.args, "--csr-file", l.csr, "--device-key", l.deviceKey];
  const cases: Case[] = [
    [
      "claim key 644",
      (l) => (chmodSync(l.claimKey, 0o644), l.args),
      /^Private key .*claim\.pem\.key has mode 644; it must be 600\. Fix: chmod 600 .*claim\.pem\.key$/,
    ],
    [
      "claim key 400",
      (l) => (chmodSync(l.claimKey, 0o400), l.args),
      /^Private key .* has mode 400; it must be 600\./,
    ],
    [
      "claim key dir 755",
      (l) => {
        const key = ownDir(l, l.claimKey, "keydir");
        chmodSync(join(l.root, "keydir"), 0o755);
        return l.args.map((a) => a === l.claimKey ? key : a);
      },
      /^Directory of the private key .*keydir has mode 755; it must be 700\. Fix: chmod 700 .*keydir$/,
    ],
    [
      "certificate 600",
      (l) => (chmodSync(l.claimCert, 0o600), l.args),
      /^Certificate .*claim\.pem\.crt has mode 600; it must be 644\. Fix: chmod 644 /,
    ],
    [
      "certificate 664",
      (l) => (chmodSync(l.claimCert, 0o664), l.args),
      /^Certificate .* has mode 664; it must be 644/,
    ],
    ["certificate dir 750", (l) => {
      const cert = ownDir(l, l.claimCert, "certdir");
      chmodSync(join(l.root, "certdir"), 0o750);
      return l.args.map((a) => a === l.claimCert ? cert : a);
    }, /^Directory of the certificate .*certdir has mode 750; it must be 700\./],
    [
      "root CA 600",
      (l) => (chmodSync(l.rootCa, 0o600), l.args),
      /^Root CA .*AmazonRootCA1\.pem has mode 600; it must be 644\. Fix: chmod 644 /,
    ],
    ["root CA dir 755", (l) => {
      const ca = ownDir(l, l.rootCa, "cadir");
      chmodSync(join(l.root, "cadir"), 0o755);
      return l.args.map((a) => a === l.rootCa ? ca : a);
    }, /^Directory of the root CA .*cadir has mode 755; it must be 700\./],
    [
      "CSR 644",
      (l) => (chmodSync(l.csr, 0o644), csrArgs(l)),
      /^CSR .*device\.csr has mode 644; it must be 600\. Fix: chmod 600 /,
    ],
    ["CSR dir 711", (l) => {
      const csr = ownDir(l, l.csr, "csrdir");
      chmodSync(join(l.root, "csrdir"), 0o711);
      return [...l.args, "--csr-file", csr, "--device-key", l.deviceKey];
    }, /^Directory of the CSR .*csrdir has mode 711; it must be 700\./],
    [
      "device key 640",
      (l) => (chmodSync(l.deviceKey, 0o640), csrArgs(l)),
      /^Private key .*device\.pem\.key has mode 640; it must be 600\./,
    ],
    ["device key dir 770", (l) => {
      const key = ownDir(l, l.deviceKey, "devkeydir");
      chmodSync(join(l.root, "devkeydir"), 0o770);
      return [...l.args, "--csr-file", l.csr, "--device-key", key];
    }, /^Directory of the private key .*devkeydir has mode 770; it must be 700\./],
  ];
  for (const [name, setup, pattern] of cases) {
    await t.step(name, async () => {
      const layout = await makeLayout();
      const args = setup(layout);
      const error = await settingsError(() => load(layout, args));
      assertEquals(error.problems.length, 1, error.message);
      assertMatch(error.problems[0], pattern);
      assertEquals(error.exitCode, ExitCode.NoPermission);
    });
  }
});

Deno.test("PKCS#11 library: 640 in a 700 directory", async () => {
  const layout = await makeLayout();
  const lib = join(layout.certsDir, "libsofthsm2.so");
  writeFileSync(lib, "ELF");
  chmodSync(lib, 0o640);
  assertEquals(checkFile(lib, RULES.pkcs11Lib, { origin: "--pkcs11-lib", identity: ME }), []);
  chmodSync(lib, 0o755);
  const [finding] = checkFile(lib, RULES.pkcs11Lib, { origin: "--pkcs11-lib", identity: ME });
  assertEquals(finding.severity, "fatal");
  assertMatch(
    finding.message,
    /^PKCS#11 library .*libsofthsm2\.so has mode 755; it must be 640\. Fix: chmod 640 /,
  );
  // Through loadSettings (enabling the secure element is itself refused for now: exit 78).
  const error = await settingsError(() =>
    load(layout, [...layout.args, ...secureElementFlags({ lib, pin: "1" })])
  );
  assertEquals(error.problems.length, 2, error.message);
  assertMatch(error.problems[0], /^PKCS#11 library .* has mode 755; it must be 640/);
  assertEquals(error.exitCode, ExitCode.Config);
});

Deno.test("every permission error is reported at once; exit 77 only when all are permission errors", async () => {
  const layout = await makeLayout();
  chmodSync(layout.claimKey, 0o644);
  chmodSync(layout.claimCert, 0o600);
  chmodSync(layout.csr, 0o666);
  const args = [...layout.args, "--csr-file", layout.csr, "--device-key", layout.deviceKey];
  const only = await settingsError(() => load(layout, args));
  assertEquals(only.problems.length, 3, only.message);
  assertEquals(only.exitCode, ExitCode.NoPermission);
  const mixed = await settingsError(() => load(layout, [...args, "--port", "0"]));
  assertEquals(mixed.problems.length, 4, mixed.message);
  assertEquals(mixed.exitCode, ExitCode.Config);
});

Deno.test("warning rules: config file, config dir, runtime config, proxy config (still loads)", async (t) => {
  type Case = [string, (l: Layout) => string[], RegExp];
  const cases: Case[] = [
    [
      "config file 644",
      (l) => ["--config-file", writeConfig(l, l.config, { mode: 0o644 })],
      /^Config file .*fleetprov\.conf has mode 644; it must be 640\. Fix: chmod 640 /,
    ],
    [
      "config file 660",
      (l) => ["--config-file", writeConfig(l, l.config, { mode: 0o660 })],
      /^Config file .* has mode 660; it must be 640\./,
    ],
    ["config dir 755", (l) => {
      const file = writeConfig(l, l.config);
      chmodSync(join(l.root, "etc"), 0o755);
      return ["--config-file", file];
    }, /^Directory of the config file .*etc has mode 755; it must be 745\. Fix: chmod 745 /],
    ["runtime config 644", (l) => {
      writeRuntime(l, 0o644);
      return l.args;
    }, /^Runtime config .*aws-iot-device-client-runtime\.conf has mode 644; it must be 640\./],
    ["runtime config dir 755", (l) => {
      writeRuntime(l, 0o640);
      chmodSync(l.configDir, 0o755);
      return l.args;
    }, /^Directory of the runtime config .*\.aws-iot-device-client has mode 755; it must be 745\./],
    ["proxy config 644", (l) => {
      const path = join(l.certsDir, "proxy.conf");
      writeFileSync(path, JSON.stringify({ "http-proxy-enabled": false }));
      chmodSync(path, 0o644);
      return [...l.args, "--http-proxy-config", path];
    }, /^HTTP proxy config .*proxy\.conf has mode 644; it must be 600\. Fix: chmod 600 /],
  ];
  for (const [name, setup, pattern] of cases) {
    await t.step(name, async () => {
      const layout = await makeLayout();
      const settings = await load(layout, setup(layout));
      assertEquals(settings.warnings.length, 1, settings.warnings.join("\n"));
      assertMatch(settings.warnings[0], pattern);
    });
  }
});

Deno.test("the README's install is quiet: config, claim files and key in one 0700 directory", async (t) => {
  const cases: [string, (l: Layout) => string[]][] = [
    ["config 640 in the 0700 claim directory", (l) => {
      const file = writeConfig(l, l.config, { dir: l.certsDir });
      chmodSync(l.certsDir, 0o700);
      return ["--config-file", file];
    }],
    ["config 600 in the 0700 claim directory", (l) => {
      const file = writeConfig(l, l.config, { dir: l.certsDir, mode: 0o600 });
      chmodSync(l.certsDir, 0o700);
      return ["--config-file", file];
    }],
    ["runtime config 600 in a 0700 ~/.aws-iot-device-client", (l) => {
      writeRuntime(l, 0o600);
      chmodSync(l.configDir, 0o700);
      return l.args;
    }],
    ["proxy config 400", (l) => {
      const path = join(l.certsDir, "proxy.conf");
      writeFileSync(path, JSON.stringify({ "http-proxy-enabled": false }));
      chmodSync(path, 0o400);
      return [...l.args, "--http-proxy-config", path];
    }],
  ];
  for (const [name, setup] of cases) {
    await t.step(name, async () => {
      const layout = await makeLayout();
      const settings = await load(layout, setup(layout));
      assertEquals(settings.warnings, []);
    });
  }
});

/** A valid runtime config (pointing at the claim files) with a mode. */
function writeRuntime(layout: Layout, mode: number): void {
  ensureDirectory(layout.configDir, 0o745);
  const path = join(layout.configDir, "aws-iot-device-client-runtime.conf");
  writeRuntimeConfig(path, {
    cert: layout.claimCert,
    key: layout.claimKey,
    thingName: "thing-1",
    deviceConfig: {},
  });
  chmodSync(path, mode);
}

Deno.test("missing files and directories instead of files: clear errors naming key and path (exit 78)", async (t) => {
  const cases: [string, (l: Layout) => string[], RegExp][] = [
    [
      "cert missing",
      (l) => swap(l.args, l.claimCert, join(l.certsDir, "gone.crt")),
      /^Certificate .*gone\.crt \(from --cert\) does not exist\.$/,
    ],
    [
      "key missing",
      (l) => swap(l.args, l.claimKey, join(l.certsDir, "gone.key")),
      /^Private key .*gone\.key \(from --key\) does not exist\.$/,
    ],
    [
      "CSR missing",
      (l) => [...l.args, "--csr-file", join(l.certsDir, "gone.csr"), "--device-key", l.deviceKey],
      /^CSR .*gone\.csr \(from --csr-file\) does not exist\.$/,
    ],
    [
      "device key missing",
      (l) => [...l.args, "--csr-file", l.csr, "--device-key", join(l.certsDir, "gone.key")],
      /^Private key .*gone\.key \(from --device-key\) does not exist\.$/,
    ],
    [
      "cert is a directory",
      (l) => swap(l.args, l.claimCert, l.certsDir),
      /^Certificate .*certs \(from --cert\) is a directory; expected a file\.$/,
    ],
    [
      "key from the config file is missing",
      (l) => ["--config-file", writeConfig(l, { ...l.config, key: "/nonexistent/claim.key" })],
      /^Private key \/nonexistent\/claim\.key \(from "key" in .*fleetprov\.conf\) does not exist\.$/,
    ],
  ];
  for (const [name, setup, pattern] of cases) {
    await t.step(name, async () => {
      const layout = await makeLayout();
      const error = await settingsError(() => load(layout, setup(layout)));
      assertEquals(error.problems.length, 1, error.message);
      assertMatch(error.problems[0], pattern);
      assertEquals(error.exitCode, ExitCode.Config);
    });
  }
});

function swap(args: string[], from: string, to: string): string[] {
  return args.map((a) => a === from ? to : a);
}

Deno.test("root CA path that does not exist: a warning, and the system trust store is used", async () => {
  const layout = await makeLayout();
  const settings = await load(
    layout,
    swap(layout.args, layout.rootCa, "/nonexistent/AmazonRootCA1.pem"),
  );
  assertEquals(settings.rootCa, undefined);
  assertEquals(settings.warnings, [
    "Root CA /nonexistent/AmazonRootCA1.pem (from --root-ca) does not exist; using the system trust store.",
  ]);
});

Deno.test("ownership through loadSettings: a non-root user and root", async () => {
  const layout = await makeLayout();
  // As uid 4321 (injected), every claim file and its directory belong to someone else (root).
  const error = await settingsError(() =>
    load(layout, layout.args, { identity: { uid: 4321, user: "dev" } })
  );
  assertEquals(error.exitCode, ExitCode.NoPermission);
  assertEquals(error.problems.length, 4, error.message); // cert, certs dir (once), key, root CA
  for (const line of error.problems) {
    assertMatch(line, /is owned by uid 0, not by uid 4321 running fleetprov;.* Fix: chown dev /);
  }
  // Root may use files owned by anyone.
  for (const path of [layout.certsDir, layout.claimCert, layout.claimKey, layout.rootCa]) {
    chownSync(path, 1234, 1234);
  }
  const settings = await load(layout, layout.args, { identity: { uid: 0, user: "root" } });
  assertEquals(settings.warnings, []);
  // And uid 1234 owns them all.
  await load(layout, layout.args, { identity: { uid: 1234, user: "u1234" } });
});

Deno.test({
  name: "ownership as a real non-root process (setpriv to nobody)",
  ignore: skipWhenMissing(
    Deno.uid() !== 0
      ? "it switches to nobody, which needs root (CI runs as root)."
      : canSetpriv()
      ? undefined
      : "setpriv is missing: install the Debian package util-linux.",
    { require: "FLEETPROV_REQUIRE_TOOLS", what: "the real non-root ownership test" },
  ),
  fn: async () => {
    const dir = Deno.makeTempDirSync({ prefix: "fleetprov-nobody-" });
    chmodSync(dir, 0o755);
    const certDir = join(dir, "certs");
    mkdirSync(certDir, { mode: 0o700 });
    chmodSync(certDir, 0o700);
    const cert = join(certDir, "c.pem");
    writeFileSync(cert, "x");
    chmodSync(cert, 0o644);
    chownSync(certDir, 65534, 65534);
    const probe = join(dir, "probe.ts");
    writeFileSync(
      probe,
      `import { checkFile, RULES } from ${
        JSON.stringify(join(ROOT, "src/config/permissions.ts"))
      };\n` +
        `console.log(JSON.stringify(checkFile(Deno.args[0], RULES.certificate, { origin: "--cert" })));\n`,
    );
    chmodSync(probe, 0o644);
    const denoDir = join(dir, "deno");
    mkdirSync(denoDir, { mode: 0o777 });
    chmodSync(denoDir, 0o777);
    const run = async () => {
      const out = await new Deno.Command("setpriv", {
        args: [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          Deno.execPath(),
          "run",
          "--no-config",
          "-A",
          "--quiet",
          probe,
          cert,
        ],
        env: { DENO_DIR: denoDir, HOME: dir, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert(out.success, new TextDecoder().decode(out.stderr));
      return JSON.parse(new TextDecoder().decode(out.stdout)) as { message: string }[];
    };
    chownSync(cert, 0, 0);
    const rootOwned = await run();
    assertEquals(rootOwned.length, 1);
    assertMatch(
      rootOwned[0].message,
      /^Certificate .*c\.pem is owned by uid 0, not by uid 65534 running fleetprov;.*Fix: chown nobody /,
    );
    chownSync(cert, 65534, 65534);
    assertEquals(await run(), []);
  },
});

function canSetpriv(): boolean {
  try {
    return new Deno.Command("setpriv", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

Deno.test("what fleetprov writes passes its own checks on the next start", () =>
  withEmulator({ ...BOARD, keyType: "ec-p256" }, async (emulator) => {
    // A real run writes the files (keys path: certificate and key; then the runtime config).
    const home = deviceHome();
    const run = await runFleetprov(deviceArgs(emulator, { serial: "SN-MODES" }), { home });
    assertEquals(run.code, 0, run.stderr);
    // The modes fleetprov wrote: 0745 config dir (as the Device Client creates it),
    // keys 0700, certificates 0644, keys 0600, runtime config 0640.
    const configDir = configDirOf(home);
    assertEquals(modeOf(configDir), "745");
    assertEquals(modeOf(join(configDir, "keys")), "700");
    const written = listFiles(join(configDir, "keys"));
    assertEquals(written.length, 4, written.join(", "));
    for (const file of written) {
      assertEquals(modeOf(join(configDir, "keys", file)), file.endsWith(".key") ? "600" : "644");
    }
    assertEquals(modeOf(runtimeConfigPathOf(home)), "640");
    // The next start reads them with the permission rules: provisioned, no warning.
    const settings = await loadSettings(["--config-file", emulator.configPath], {
      home,
      env: { HOME: home },
    });
    assertEquals(settings.runtime.status, "provisioned");
    assertEquals(settings.cert, join(configDir, "keys", "active-certificate.pem.crt"));
    assertEquals(settings.warnings, []);
  }));
