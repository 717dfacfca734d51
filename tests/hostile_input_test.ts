// SPDX-License-Identifier: Apache-2.0
/**
 * A corpus of hostile inputs through the real CLI: config files, flags, input
 * files and broker replies. Each gives one line starting with "fleetprov:"
 * (no stack trace), its documented exit code, and leaves no partial file: no
 * runtime config, no key or certificate, no temporary file.
 *
 * Symbolic links: an INPUT path (config, cert, key, root CA, CSR) is followed,
 * and the mode and owner rules apply to the file it points to (the directory
 * rule to the directory named in the config). An OUTPUT path (keys dir, the
 * active certificate and key, the runtime config, the journal, the log file)
 * is never followed: a link there stops the run before any request, and the
 * file it points to is left untouched.
 */
import { ExitCode } from "../src/errors.ts";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { loadSettings, SettingsError } from "../src/config/mod.ts";
import {
  assertNoTempFiles,
  BOARD,
  boardEmulator,
  concurrentSteps,
  configDirOf,
  deviceArgs,
  deviceHome,
  GIVE_UP_FAST,
  hostileBroker,
  hostileCertificate,
  listFiles,
  oneLineError,
  runFleetprov,
  runtimeConfigPathOf,
  tempDir,
  TEMPLATE_NAME,
  withEmulator,
  writeWithMode,
} from "./support/mod.ts";
import type { Emulator } from "../src/emulator/mod.ts";
import { createCsr, generateKeyPair } from "../src/pki/mod.ts";

/**
 * The certificate cap the README promises ("Stopped after minting 3 certificates in one run"):
 * written out, not imported, so a change of the number fails here.
 */
const CERTIFICATE_CAP = 3;

/** What a case may use to build its arguments. */
interface Ctx {
  emulator: Emulator;
  home: string;
  /** A scratch directory (0700). */
  dir: string;
  /** Valid flags with every required setting, no config file. */
  base: string[];
  /** The emulator's (valid) config file, parsed. */
  config: Record<string, unknown>;
  /** Writes a config file (0640 in a 0745 dir) and returns its path. */
  conf(content: string | Uint8Array): string;
  /** Writes a file with a mode in a 0700 dir and returns its path. */
  file(name: string, content: string | Uint8Array, mode: number): string;
}

interface Hostile {
  name: string;
  args: (ctx: Ctx) => string[] | Promise<string[]>;
  code: number;
  /** What the first (usually only) line says. */
  message: RegExp;
  /**
   * "settings": checked in-process through loadSettings (the same SettingsError
   * the CLI prints line by line), to keep the suite fast; default: the CLI.
   */
  via?: "settings";
}

/** Flag and file cases that also run through the CLI; the others run through loadSettings. */
const VIA_CLI = new Set([
  "flag: unknown",
  "flag: given twice",
  "flag: missing value at the end",
  "flag: --enable-fleet-provisioning maybe",
  "file: a private key where the certificate should be",
  "file: a directory where the private key should be",
  "file: a symlinked key: the rules apply to its target (0644 there)",
  "file: the log file in a missing directory",
  "file: the log file is a directory",
  "file: an HTTP proxy config of garbage",
]);

function replaceFlag(args: string[], flag: string, value: string): string[] {
  const i = args.indexOf(flag);
  assert(i >= 0, `${flag} is in the base flags`);
  return [...args.slice(0, i), flag, value, ...args.slice(i + 2)];
}

function withKey(config: Record<string, unknown>, key: string, value: unknown): string {
  const copy = structuredClone(config);
  const parts = key.split(".");
  let node = copy as Record<string, unknown>;
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
  return JSON.stringify(copy, null, 2);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Every key fleetprov reads, with a value of the wrong type. */
const WRONG_TYPES: [string, unknown][] = [
  ["endpoint", 42],
  ["cert", 42],
  ["key", true],
  ["root-ca", []],
  ["thing-name", {}],
  ["port", "8883"],
  ["client-id", 7],
  ["logging.level", 3],
  ["logging.type", false],
  ["logging.file", 1],
  ["fleet-provisioning.enabled", "true"],
  ["fleet-provisioning.template-name", 1],
  ["fleet-provisioning.template-parameters", 5],
  ["fleet-provisioning.csr-file", []],
  ["fleet-provisioning.device-key", 0],
  ["fleet-provisioning.collect-system-information", "yes"],
  ["fleet-provisioning.payload-format", 1],
  ["fleet-provisioning.generate-key", true],
  ["fleet-provisioning.rotation-template-name", 7],
  ["fleet-provisioning.rotation-key-source", false],
  ["fleet-provisioning.step-timeout", "10"],
  ["fleet-provisioning.deadline", null],
  ["fleet-provisioning.retry-base-delay", "1"],
  ["fleet-provisioning.retry-max-delay", []],
  ["secure-element.enabled", 1],
  ["secure-element.pkcs11-lib", 1],
  ["secure-element.secure-element-pin", 123456],
  ["secure-element.secure-element-key-label", 1],
  ["secure-element.secure-element-slot-id", "0"],
  ["secure-element.secure-element-token-label", false],
  ["secure-element.openssl-engine", 1],
];

/** Deterministic pseudo-random bytes. */
function garbage(length: number, seed = 7): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    bytes[i] = x >> 16;
  }
  return bytes;
}

/** Keys whose wrong type is also run through the CLI (the rest go through loadSettings). */
const WRONG_TYPES_VIA_CLI = [
  "endpoint",
  "fleet-provisioning.enabled",
  "secure-element.secure-element-pin",
];

const CONFIG_CASES: Hostile[] = [
  ...WRONG_TYPES.filter(([key]) => WRONG_TYPES_VIA_CLI.includes(key)).map((
    [key, value],
  ): Hostile => ({
    name: `config: ${key} is ${JSON.stringify(value)}`,
    args: (c) => ["--config-file", c.conf(withKey(c.config, key, value))],
    code: ExitCode.Config,
    message: new RegExp(`^fleetprov: "${escape(key)}" in \\S+ is .*; expected `),
  })),
  {
    name: "config: empty file",
    args: (c) => ["--config-file", c.conf("")],
    code: ExitCode.Config,
    message: /Config file \S+ is not valid JSON: line 1, column 1/,
  },
  {
    name: "config: whitespace only",
    args: (c) => ["--config-file", c.conf("  \n\t\n")],
    code: ExitCode.Config,
    message: /is not valid JSON/,
  },
  {
    name: "config: a JSON array at the top",
    args: (c) => ["--config-file", c.conf('[{"endpoint": "localhost"}]')],
    code: ExitCode.Config,
    message: /must hold a JSON object \(\{ \.\.\. \}\) at the top level/,
  },
  {
    name: "config: a JSON string at the top",
    args: (c) => ["--config-file", c.conf('"endpoint"')],
    code: ExitCode.Config,
    message: /must hold a JSON object/,
  },
  {
    name: "config: null at the top",
    args: (c) => ["--config-file", c.conf("null")],
    code: ExitCode.Config,
    message: /must hold a JSON object/,
  },
  {
    name: "config: binary garbage",
    args: (c) => ["--config-file", c.conf(garbage(3000))],
    code: ExitCode.Config,
    message: /is not valid JSON: line \d+, column \d+/,
  },
  {
    name: "config: a byte order mark before the JSON",
    args: (c) => ["--config-file", c.conf("\ufeff" + JSON.stringify(c.config))],
    code: ExitCode.Config,
    message: /is not valid JSON: line 1, column 1/,
  },
  {
    name: "config: trailing garbage",
    args: (c) => ["--config-file", c.conf(JSON.stringify(c.config) + " xyz")],
    code: ExitCode.Config,
    message: /is not valid JSON: line 1, column \d+/,
  },
  {
    name: "config: an unterminated block comment",
    args: (
      c,
    ) => ["--config-file", c.conf('{ "endpoint": "localhost" /* never closed\n')],
    code: ExitCode.Config,
    message: /is not valid JSON: line 1/,
  },
  {
    name: "config: a line comment swallowing the closing brace",
    args: (c) => ["--config-file", c.conf('{ "endpoint": "localhost" // }')],
    code: ExitCode.Config,
    message: /is not valid JSON/,
  },
  {
    name: "config: a comment where a comma should be",
    args: (c) => [
      "--config-file",
      c.conf('{\n  "endpoint": "localhost" /* , */\n  "port": 8883\n}'),
    ],
    code: ExitCode.Config,
    message: /is not valid JSON: line 3, column 3/,
  },
  {
    name: "config: single quotes",
    args: (c) => ["--config-file", c.conf("{'endpoint': 'localhost'}")],
    code: ExitCode.Config,
    message: /is not valid JSON/,
  },
  {
    name: "config: NaN",
    args: (c) => ["--config-file", c.conf('{"port": NaN}')],
    code: ExitCode.Config,
    message: /is not valid JSON/,
  },
  {
    name: "config: larger than 64 KiB",
    args: (c) => ["--config-file", c.conf(`{"x": "${"a".repeat(70 * 1024)}"}`)],
    code: ExitCode.Config,
    message: /is \d+ bytes; config files larger than 65536 bytes are refused/,
  },
  {
    name: "config: a section that is not an object",
    args: (c) => [...c.base, "--config-file", c.conf('{"fleet-provisioning": "yes"}')],
    code: ExitCode.Config,
    message: /"fleet-provisioning" in \S+ is "yes"; expected an object/,
  },
  {
    name: "config: template parameters holding broken JSON",
    args: (c) => [
      "--config-file",
      c.conf(withKey(c.config, "fleet-provisioning.template-parameters", '{"SerialNumber": ')),
    ],
    code: ExitCode.Config,
    message: /"fleet-provisioning.template-parameters" in \S+ /,
  },
  {
    name: "config: a directory",
    args: (c) => {
      const path = join(c.dir, "conf.d");
      mkdirSync(path, { mode: 0o745 });
      return ["--config-file", path];
    },
    code: ExitCode.Config,
    message: /Config file \S+ is a directory; expected a file/,
  },
  {
    name: "config: missing",
    args: (c) => ["--config-file", join(c.dir, "nope.conf")],
    code: ExitCode.Config,
    message: /Config file \S+ \(from --config-file\) does not exist/,
  },
  {
    name: "config: a symlink to /dev/zero",
    args: (c) => {
      const path = join(c.dir, "zero.conf");
      symlinkSync("/dev/zero", path);
      return ["--config-file", path];
    },
    code: ExitCode.Config,
    message: /Config file \S+ is not a regular file; expected a file/,
  },
  {
    name: "config: a FIFO (must not hang)",
    args: async (c) => {
      const path = join(c.dir, "fifo.conf");
      const made = await new Deno.Command("mkfifo", { args: [path] }).output();
      assert(made.success, "mkfifo");
      return ["--config-file", path];
    },
    code: ExitCode.Config,
    message: /is not a regular file/,
  },
  {
    name: "config: a dangling symlink",
    args: (c) => {
      const path = join(c.dir, "dangling.conf");
      symlinkSync(join(c.dir, "gone"), path);
      return ["--config-file", path];
    },
    code: ExitCode.Config,
    message: /does not exist/,
  },
  {
    name: "config: /dev/null",
    args: () => ["--config-file", "/dev/null"],
    code: ExitCode.Config,
    message: /^fleetprov: Config file \/dev\/null is not a regular file; expected a file\.$/,
  },
  {
    name: "config: the storage fails reading it (EIO, 74)",
    args: (c) => {
      // A read the kernel fails with EIO, as a failing flash would.
      const path = join(c.dir, "eio.conf");
      symlinkSync("/proc/self/mem", path);
      return ["--config-file", path];
    },
    code: ExitCode.IoError,
    message:
      /^fleetprov: Config file \S+eio\.conf cannot be read: the storage reported an I\/O error \(EIO\); check the storage \(dmesg\) and repair the file system\.$/,
  },
  {
    name: "config: a newline in a path cannot forge a line",
    args: (c) => [
      "--config-file",
      c.conf(withKey(c.config, "cert", "/nonexistent/a\nfleetprov: forged")),
    ],
    code: ExitCode.Config,
    message:
      /^fleetprov: Certificate \/nonexistent\/a\\nfleetprov: forged \(from "cert" in \S+\) does not exist\.$/,
  },
];

const FLAG_CASES: Hostile[] = [
  {
    name: "flag: unknown",
    args: (c) => [...c.base, "--bogus", "1"],
    code: ExitCode.Config,
    message: /Unknown flag --bogus/,
  },
  {
    name: "flag: given twice",
    args: (c) => [...c.base, "--endpoint", "other.example.com"],
    code: ExitCode.Config,
    message: /Flag --endpoint is given more than once/,
  },
  {
    name: "flag: missing value at the end",
    args: (c) => [...c.base, "--log-level"],
    code: ExitCode.Config,
    message: /Flag --log-level needs a value/,
  },
  {
    name: "flag: a flag where the value should be",
    args: (c) => [...c.base, "--thing-name", "--log-level", "INFO"],
    code: ExitCode.Config,
    message: /Flag --thing-name needs a value/,
  },
  {
    name: "flag: --enable-fleet-provisioning maybe",
    args: (c) => replaceFlag(c.base, "--enable-fleet-provisioning", "maybe"),
    code: ExitCode.Config,
    message: /--enable-fleet-provisioning is "maybe"; expected true or false/,
  },
  {
    name: "flag: --log-level LOUD",
    args: (c) => [...c.base, "--log-level", "LOUD"],
    code: ExitCode.Config,
    message: /--log-level is "LOUD"; expected DEBUG, INFO, WARN or ERROR/,
  },
  {
    name: "flag: --log-type SYSLOG",
    args: (c) => [...c.base, "--log-type", "SYSLOG"],
    code: ExitCode.Config,
    message: /--log-type is "SYSLOG"; expected STDOUT or FILE/,
  },
  {
    name: "flag: --payload-format xml",
    args: (c) => [...c.base, "--payload-format", "xml"],
    code: ExitCode.Config,
    message: /--payload-format is "xml"; expected json or cbor/,
  },
  {
    name: "flag: --generate-key dsa",
    args: (c) => [...c.base, "--generate-key", "dsa"],
    code: ExitCode.Config,
    message: /--generate-key is "dsa"; expected ec-p256, ec-p384 or rsa-2048/,
  },
  {
    name: "flag: --port 70000",
    args: (c) => replaceFlag(c.base, "--port", "70000"),
    code: ExitCode.Config,
    message: /--port is "70000"; expected an integer port from 1 to 65535/,
  },
  {
    name: "flag: --port abc",
    args: (c) => replaceFlag(c.base, "--port", "abc"),
    code: ExitCode.Config,
    message: /--port is "abc"/,
  },
  {
    name: "flag: --step-timeout 0",
    args: (c) => [...c.base, "--step-timeout", "0"],
    code: ExitCode.Config,
    message: /--step-timeout is "0"; expected a number of seconds greater than 0/,
  },
  {
    name: "flag: step timeout longer than the deadline",
    args: (c) => [...c.base, "--step-timeout", "10", "--deadline", "1"],
    code: ExitCode.Config,
    message: /The step timeout \(10 s\) is longer than the deadline \(1 s\)/,
  },
  {
    name: "flag: retry max delay below the base delay",
    args: (c) => [...c.base, "--retry-base-delay", "5", "--retry-max-delay", "1"],
    code: ExitCode.Config,
    message: /The retry max delay \(1 s\) is smaller than the retry base delay \(5 s\)/,
  },
  {
    name: "flag: a template name with spaces and punctuation",
    args: (c) => replaceFlag(c.base, "--fleet-provisioning-template-name", "bad name!"),
    code: ExitCode.Config,
    message: /--fleet-provisioning-template-name is "bad name!"; expected 1 to 36 letters/,
  },
  {
    name: "flag: template parameters that are not JSON",
    args: (c) =>
      replaceFlag(c.base, "--fleet-provisioning-template-parameters", '{"SerialNumber":'),
    code: ExitCode.Config,
    message: /^fleetprov: --fleet-provisioning-template-parameters /,
  },
  {
    name: "flag: template parameters that are an array",
    args: (c) => replaceFlag(c.base, "--fleet-provisioning-template-parameters", '["SN-1"]'),
    code: ExitCode.Config,
    message: /^fleetprov: --fleet-provisioning-template-parameters /,
  },
  {
    name: "flag: a 200-character thing name",
    args: (c) => [...c.base, "--thing-name", "x".repeat(200)],
    code: ExitCode.Config,
    message: /--thing-name is 200 bytes long; AWS IoT accepts at most 128/,
  },
  {
    name: "flag: an endpoint URL instead of a host name",
    args: (c) => replaceFlag(c.base, "--endpoint", "https://example.com/mqtt"),
    code: ExitCode.Config,
    message: /expected a host name only/,
  },
  {
    name: "flag: an empty client id",
    args: (c) => [...c.base, "--client-id", ""],
    code: ExitCode.Config,
    message: /--client-id is empty/,
  },
];

const FILE_CASES: Hostile[] = [
  {
    name: "file: claim certificate missing",
    args: (c) => replaceFlag(c.base, "--cert", join(c.dir, "missing.crt")),
    code: ExitCode.Config,
    message: /Certificate \S+missing.crt \(from --cert\) does not exist/,
  },
  {
    name: "file: claim certificate empty",
    args: (c) => replaceFlag(c.base, "--cert", c.file("empty.crt", "", 0o644)),
    code: ExitCode.Config,
    message: /Certificate \S+ \(from --cert\) is not a PEM X.509 certificate/,
  },
  {
    name: "file: a private key where the certificate should be",
    args: (c) =>
      replaceFlag(
        c.base,
        "--cert",
        c.file("key-as-cert.crt", readFileSync(c.emulator.claim.keyPath), 0o644),
      ),
    code: ExitCode.Config,
    message: /is not a PEM X.509 certificate/,
  },
  {
    name: "file: a certificate where the private key should be",
    args: (c) =>
      replaceFlag(
        c.base,
        "--key",
        c.file("cert-as-key.key", readFileSync(c.emulator.claim.certPath), 0o600),
      ),
    code: ExitCode.Config,
    message: /Private key \S+ \(from --key\) is not an unencrypted PEM private key/,
  },
  {
    name: "file: a private key of another certificate",
    args: async (c) => {
      const { privateKeyPem } = await generateKeyPair("ec-p256");
      return replaceFlag(c.base, "--key", c.file("other.key", privateKeyPem, 0o600));
    },
    code: ExitCode.Config,
    message: /Private key \S+ does not belong to certificate/,
  },
  {
    name: "file: binary garbage as the private key",
    args: (c) => replaceFlag(c.base, "--key", c.file("garbage.key", garbage(512), 0o600)),
    code: ExitCode.Config,
    message: /is not an unencrypted PEM private key/,
  },
  {
    name: "file: a directory where the private key should be",
    args: (c) => {
      const path = join(c.dir, "key.d");
      mkdirSync(path, { mode: 0o700 });
      return replaceFlag(c.base, "--key", path);
    },
    code: ExitCode.Config,
    message: /Private key \S+ \(from --key\) is a directory; expected a file/,
  },
  {
    name: "file: the certificate is a symlink to a directory",
    args: (c) => {
      const path = join(c.dir, "cert-link.crt");
      symlinkSync(c.dir, path);
      return replaceFlag(c.base, "--cert", path);
    },
    code: ExitCode.Config,
    message: /Certificate \S+ \(from --cert\) is a directory/,
  },
  {
    name: "file: the certificate is a dangling symlink",
    args: (c) => {
      const path = join(c.dir, "dangling.crt");
      symlinkSync(join(c.dir, "gone.crt"), path);
      return replaceFlag(c.base, "--cert", path);
    },
    code: ExitCode.Config,
    message: /Certificate \S+ \(from --cert\) does not exist/,
  },
  {
    name: "file: a symlinked key: the rules apply to its target (0644 there)",
    args: (c) => {
      const target = join(tempDir("fleetprov-elsewhere-"), "claim.key");
      writeWithMode(target, readFileSync(c.emulator.claim.keyPath, "utf8"), 0o644);
      const link = join(c.dir, "link.key");
      symlinkSync(target, link);
      return replaceFlag(c.base, "--key", link);
    },
    code: ExitCode.NoPermission,
    message: /Private key \S+link.key has mode 644; it must be 600/,
  },
  {
    name: "file: a CSR that is not a CSR",
    args: async (c) => {
      const { privateKeyPem } = await generateKeyPair("ec-p256");
      return [
        ...c.base,
        "--csr-file",
        c.file("bad.csr", "hello\n", 0o600),
        "--device-key",
        c.file("device.key", privateKeyPem, 0o600),
      ];
    },
    code: ExitCode.Config,
    message: /CSR \S+ \(from --csr-file\) is not a PEM certificate signing request/,
  },
  {
    name: "file: a CSR over 2000 bytes",
    args: async (c) => {
      const { privateKeyPem } = await generateKeyPair("ec-p256");
      return [
        ...c.base,
        "--csr-file",
        c.file("big.csr", "-----BEGIN CERTIFICATE REQUEST-----\n" + "A".repeat(3000), 0o600),
        "--device-key",
        c.file("device2.key", privateKeyPem, 0o600),
      ];
    },
    code: ExitCode.Config,
    message: /is \d+ bytes; AWS IoT accepts CSR files of at most 2000 bytes/,
  },
  {
    name: "file: a device key that is not a key",
    args: async (c) => {
      const { keys } = await generateKeyPair("ec-p256");
      return [
        ...c.base,
        "--csr-file",
        c.file("good.csr", await createCsr("board", keys), 0o600),
        "--device-key",
        c.file(
          "notakey.key",
          "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
          0o600,
        ),
      ];
    },
    code: ExitCode.Config,
    message: /Device key \S+ \(from --device-key\) is not an unencrypted PEM private key/,
  },
  {
    name: "file: an HTTP proxy config of garbage",
    args: (c) => [...c.base, "--http-proxy-config", c.file("proxy.conf", garbage(200), 0o600)],
    code: ExitCode.Config,
    message: /^fleetprov: HTTP proxy config \S+ is not valid JSON: line \d+, column \d+: /,
  },
  {
    name: "file: the log file in a missing directory",
    args: (
      c,
    ) => [...c.base, "--log-type", "FILE", "--log-file", join(c.dir, "no", "such", "x.log")],
    code: ExitCode.Config,
    message:
      /Cannot open the log file \S+ \(logging.file \/ --log-file\): its directory does not exist/,
  },
  {
    name: "file: the log file is a directory",
    args: (c) => [...c.base, "--log-type", "FILE", "--log-file", c.dir],
    code: ExitCode.Config,
    message: /Cannot open the log file \S+ .*: it is a directory/,
  },
];

/** Everything a failed run may leave in the config dir: nothing but, maybe, the journal (0600). */
function assertNoPartialFiles(home: string, what: string): void {
  assert(!existsSync(runtimeConfigPathOf(home)), `${what}: no runtime config`);
  const files = listFiles(configDirOf(home)).filter((f) => f !== "fleetprov-journal.json");
  assertEquals(files, [], `${what}: no files written`);
  assertNoTempFiles(home);
}

function context(emulator: Emulator): Ctx {
  const home = deviceHome();
  const dir = join(tempDir("fleetprov-hostile-"), "files");
  mkdirSync(dir, { mode: 0o700 });
  const confDir = join(dir, "etc");
  mkdirSync(confDir, { mode: 0o745 });
  let n = 0;
  return {
    emulator,
    home,
    dir,
    base: [
      "--endpoint",
      "localhost",
      "--port",
      String(emulator.port),
      "--cert",
      emulator.claim.certPath,
      "--key",
      emulator.claim.keyPath,
      "--root-ca",
      emulator.caPath,
      "--enable-fleet-provisioning",
      "true",
      "--fleet-provisioning-template-name",
      TEMPLATE_NAME,
      "--fleet-provisioning-template-parameters",
      '{"SerialNumber": "SN-HOSTILE"}',
    ],
    config: {
      ...JSON.parse(readFileSync(emulator.configPath, "utf8")),
      "fleet-provisioning": {
        enabled: true,
        "template-name": TEMPLATE_NAME,
        "template-parameters": '{"SerialNumber": "SN-HOSTILE"}',
      },
    },
    conf(content) {
      const path = join(confDir, `config-${n++}.conf`);
      writeWithMode(path, "", 0o640);
      writeFileSync(path, content);
      return path;
    },
    file(name, content, mode) {
      const path = join(dir, name);
      writeFileSync(path, content, { mode });
      Deno.chmodSync(path, mode);
      return path;
    },
  };
}

async function runHostile(emulator: Emulator, c: Hostile): Promise<void> {
  const ctx = context(emulator);
  const args = await c.args(ctx);
  if (c.via === "settings") {
    const error = await assertRejects(
      loadSettings(args, { env: { HOME: ctx.home }, home: ctx.home }),
    );
    assert(error instanceof SettingsError, `${c.name}: ${error}`);
    assertEquals(error.exitCode, c.code, `${c.name}: ${error.message}`);
    assertEquals(error.problems.length, 1, `${c.name}: ${error.message}`);
    assertMatch(`fleetprov: ${error.problems[0]}`, c.message);
    assertNoPartialFiles(ctx.home, c.name);
    return;
  }
  const result = await runFleetprov(args, { home: ctx.home });
  assertEquals(result.code, c.code, `${c.name}\n${result.stdout}${result.stderr}`);
  const line = oneLineError(result);
  assertMatch(line, c.message);
  assert(line.length < 400, `one short line, not ${line.length} characters`);
  assertNoPartialFiles(ctx.home, c.name);
}

Deno.test({
  name: `hostile config files, flags and input files (${
    CONFIG_CASES.length + FLAG_CASES.length + FILE_CASES.length
  } cases, plus every key in the next test): one line, the documented exit code, nothing written, nothing sent`,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const emulator = await boardEmulator();
    try {
      const cases = [
        ...CONFIG_CASES,
        ...[...FLAG_CASES, ...FILE_CASES].map((c): Hostile =>
          VIA_CLI.has(c.name) ? c : { ...c, via: "settings" }
        ),
      ];
      assert(cases.length >= 40);
      await concurrentSteps(
        t,
        cases.map((c) => ({ name: c.name, fn: () => runHostile(emulator, c) })),
        4, // width
      );
      assertEquals(emulator.counters.connect.requests, 0, "no hostile input reached the network");
    } finally {
      await emulator.close();
    }
  },
});

Deno.test("a wrong type for every config key: one problem naming the key, exit 78 (loadSettings)", () =>
  withEmulator(BOARD, async (emulator) => {
    const ctx = context(emulator);
    for (const [key, value] of WRONG_TYPES) {
      const path = ctx.conf(withKey(ctx.config, key, value));
      const error = await assertRejects(
        loadSettings(["--config-file", path], { env: { HOME: ctx.home }, home: ctx.home }),
      );
      assert(error instanceof SettingsError, `${key}: ${error}`);
      assertEquals(error.exitCode, ExitCode.Config, key);
      assertEquals(error.problems.length, 1, `${key}: ${error.message}`);
      assertMatch(
        error.problems[0],
        new RegExp(`^"${escape(key)}" in ${escape(path)} is .*; expected `),
      );
      assert(!error.message.includes("123456"), "a PIN of the wrong type is not shown");
    }
  }));

Deno.test({
  name:
    "a config file nested 20000 levels deep is refused by depth (78), not by the parser's stack",
  async fn() {
    const emulator = await boardEmulator();
    try {
      await runHostile(emulator, {
        name: "deep nesting",
        args: (c) => [
          "--config-file",
          c.conf(`{"x": ${"[".repeat(20000)}${"]".repeat(20000)}}`),
        ],
        code: ExitCode.Config,
        message:
          /is nested too deeply: line 1, column \d+ opens level 33; config files nest at most 32 levels/,
      });
    } finally {
      await emulator.close();
    }
  },
});

interface OutputLink {
  name: string;
  /** Path (relative to the config dir) that is made a symlink, or "log" for the log file. */
  path: string;
  /** Link to a directory instead of a file. */
  directory?: boolean;
}

const OUTPUT_LINKS: OutputLink[] = [
  { name: "keys/active-private.pem.key", path: "keys/active-private.pem.key" },
  { name: "keys/active-certificate.pem.crt", path: "keys/active-certificate.pem.crt" },
  { name: "the runtime config", path: "aws-iot-device-client-runtime.conf" },
  { name: "the journal", path: "fleetprov-journal.json" },
  { name: "the keys dir", path: "keys", directory: true },
  { name: "the log file", path: "log" },
];

Deno.test({
  name: "a symlinked output path is never followed: stop before any request, the target untouched",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const emulator = await boardEmulator();
    try {
      await concurrentSteps(
        t,
        OUTPUT_LINKS.map((c) => ({
          name: c.name,
          fn: async () => {
            const home = deviceHome();
            const configDir = configDirOf(home);
            mkdirSync(join(configDir, c.directory ? "" : "keys"), { recursive: true, mode: 0o700 });
            Deno.chmodSync(configDir, 0o745);
            const victimDir = join(tempDir("fleetprov-victim-"), "victim");
            mkdirSync(victimDir, { mode: 0o755 });
            const victim = join(victimDir, "victim.txt");
            writeWithMode(victim, "precious\n", 0o644);
            const linkPath = c.path === "log"
              ? join(home, "fleetprov.log")
              : join(configDir, c.path);
            symlinkSync(c.directory ? victimDir : victim, linkPath);
            const extra = c.path === "log" ? ["--log-type", "FILE", "--log-file", linkPath] : [];
            const before = emulator.counters.connect.requests;
            const result = await runFleetprov([
              "--config-file",
              emulator.configPath,
              "--fleet-provisioning-template-parameters",
              '{"SerialNumber": "SN-LINK"}',
              ...extra,
            ], { home });
            assertEquals(
              result.code,
              ExitCode.Config,
              `${c.name}\n${result.stdout}${result.stderr}`,
            );
            assertMatch(
              oneLineError(result, true),
              new RegExp(`${escape(linkPath)}.* (is a symbolic link|never writes through)`),
            );
            assertEquals(readFileSync(victim, "utf8"), "precious\n", "the target is untouched");
            assertEquals((statSync(victim).mode & 0o777).toString(8), "644");
            assertEquals(listFiles(victimDir), ["victim.txt"]);
            assertEquals(emulator.counters.connect.requests, before, "nothing was sent");
            assert(
              !existsSync(join(configDir, "fleetprov-journal.json")) ||
                c.path === "fleetprov-journal.json",
            );
          },
        })),
        3,
      );
      assertEquals(emulator.registry.things().length, 0);
    } finally {
      await emulator.close();
    }
  },
});

Deno.test("a symlinked input is followed: claim certificate and key reached through links provision", () =>
  withEmulator(BOARD, async (emulator) => {
    const home = deviceHome();
    // The real files live elsewhere, with the modes the rules want; the links sit in a 0700 dir.
    const real = join(tempDir("fleetprov-real-"), "claim");
    mkdirSync(real, { mode: 0o700 });
    copyFileSync(emulator.claim.certPath, join(real, "claim.crt"));
    copyFileSync(emulator.claim.keyPath, join(real, "claim.key"));
    Deno.chmodSync(join(real, "claim.crt"), 0o644);
    Deno.chmodSync(join(real, "claim.key"), 0o600);
    const links = join(tempDir("fleetprov-links-"), "links");
    mkdirSync(links, { mode: 0o700 });
    symlinkSync(join(real, "claim.crt"), join(links, "cert.pem"));
    symlinkSync(join(real, "claim.key"), join(links, "key.pem"));
    const result = await runFleetprov([
      "--config-file",
      emulator.configPath,
      "--cert",
      join(links, "cert.pem"),
      "--key",
      join(links, "key.pem"),
      "--fleet-provisioning-template-parameters",
      '{"SerialNumber": "SN-LINKED-INPUT"}',
    ], { home });
    assertEquals(result.code, 0, result.stderr);
    assert(emulator.registry.thing("board-SN-LINKED-INPUT"));
  }));

interface BrokerCase {
  name: string;
  /** The bad answer; the other operation gets a valid one. */
  operation: "CreateKeysAndCertificate" | "RegisterThing";
  answer: (valid: Record<string, string>) => unknown;
  accepted?: boolean;
  /** The service's deliberate answer: the run stops at once, before the deadline. */
  final?: true;
  message: RegExp;
}

const json = (value: unknown) =>
  new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

const BROKER_CASES: BrokerCase[] = [
  {
    name: "create: not JSON",
    operation: "CreateKeysAndCertificate",
    answer: () => "{oops",
    message: /answer is not valid JSON/,
  },
  {
    name: "create: empty payload",
    operation: "CreateKeysAndCertificate",
    answer: () => "",
    message: /answer is not valid JSON/,
  },
  {
    name: "create: a JSON array",
    operation: "CreateKeysAndCertificate",
    answer: () => [1, 2],
    message: /answer is not an object/,
  },
  {
    name: "create: null",
    operation: "CreateKeysAndCertificate",
    answer: () => "null",
    message: /answer is not an object/,
  },
  {
    name: "create: no ownership token",
    operation: "CreateKeysAndCertificate",
    answer: (v) => ({ ...v, certificateOwnershipToken: undefined }),
    message: /certificateOwnershipToken is missing/,
  },
  {
    name: "create: certificateId a number",
    operation: "CreateKeysAndCertificate",
    answer: (v) => ({ ...v, certificateId: 42 }),
    message: /certificateId is not a non-empty string/,
  },
  {
    name: "create: certificateId a path (../../etc/passwd)",
    operation: "CreateKeysAndCertificate",
    answer: (v) => ({ ...v, certificateId: "../../../../etc/passwd" }),
    message: /certificateId is not 64 hex characters/,
  },
  {
    name: "create: garbage inside the PEM armour",
    operation: "CreateKeysAndCertificate",
    answer: (v) => ({
      ...v,
      certificatePem: "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    }),
    message: /The issued certificate cannot be parsed/,
  },
  {
    name: "create: another device's private key",
    operation: "CreateKeysAndCertificate",
    answer: (v) => ({ ...v, privateKey: OTHER_KEY }),
    message: /does not belong to this device's private key/,
  },
  {
    name: "create: oversized (100 KiB)",
    operation: "CreateKeysAndCertificate",
    answer: (v) => ({ ...v, padding: "x".repeat(100 * 1024) }),
    message: /answer is \d+ bytes, more than the 65536 allowed/,
  },
  {
    name: "create: a rejection without statusCode",
    operation: "CreateKeysAndCertificate",
    accepted: false,
    answer: () => ({ errorCode: "X", errorMessage: "y" }),
    message: /statusCode is missing/,
  },
  {
    name: "register: no thingName",
    operation: "RegisterThing",
    answer: () => ({ deviceConfiguration: {} }),
    final: true,
    message: /RegisterThing answer's thingName is missing/,
  },
  {
    name: "register: thingName a path",
    operation: "RegisterThing",
    answer: () => ({ thingName: "../../etc/cron.d/x" }),
    message: /RegisterThing answer has an invalid thingName/,
  },
  {
    name: "register: thingName of 129 characters",
    operation: "RegisterThing",
    answer: () => ({ thingName: "t".repeat(129) }),
    message: /invalid thingName/,
  },
  {
    name: "register: thingName a number",
    operation: "RegisterThing",
    answer: () => ({ thingName: 7 }),
    message: /thingName is not a non-empty string/,
  },
  {
    name: "register: deviceConfiguration values not strings",
    operation: "RegisterThing",
    answer: () => ({ thingName: "board-1", deviceConfiguration: { a: { nested: 1 } } }),
    message: /deviceConfiguration.a is not a string/,
  },
  {
    name: "register: deviceConfiguration a string",
    operation: "RegisterThing",
    answer: () => ({ thingName: "board-1", deviceConfiguration: "Foo=Bar" }),
    message: /deviceConfiguration is not an object/,
  },
];

let OTHER_KEY = "";

Deno.test({
  name:
    `hostile broker replies (${BROKER_CASES.length} cases): retried to the deadline (accepted create answers: to the certificate cap), then one line, exit 1, no credential file`,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    OTHER_KEY = (await generateKeyPair("ec-p256")).privateKeyPem;
    const emulator = await boardEmulator();
    try {
      await concurrentSteps(
        t,
        BROKER_CASES.map((c) => ({
          name: c.name,
          fn: async () => {
            const valid = await hostileCertificate();
            const responder = await hostileBroker(emulator, {
              onRequest: ({ operation }) => {
                if (operation === c.operation) {
                  const body = c.answer(valid);
                  return {
                    answer: c.accepted === false ? "rejected" : "accepted",
                    body: json(body),
                  };
                }
                return { answer: "accepted", body: json(valid) };
              },
            });
            try {
              const home = deviceHome();
              const log = join(tempDir("fleetprov-log-"), "fleetprov.log");
              const result = await runFleetprov(
                deviceArgs(emulator, {
                  serial: "SN-BROKER",
                  retry: GIVE_UP_FAST,
                  extra: [
                    "--port",
                    String(responder.port),
                    "--log-type",
                    "FILE",
                    "--log-file",
                    log,
                  ],
                }),
                { home },
              );
              assertEquals(
                result.code,
                ExitCode.Rejected,
                `${c.name}\n${result.stdout}${result.stderr}`,
              );
              const line = oneLineError(result);
              // An accepted create answer, however bad, minted a certificate:
              // the cap ends those runs; the rest run to the deadline.
              assertMatch(
                line,
                c.operation === "CreateKeysAndCertificate" && c.accepted !== false
                  ? new RegExp(`Stopped after minting ${CERTIFICATE_CAP} certificates`)
                  : c.final
                  ? /^(?!.*deadline)/
                  : /did not finish within the 1 s deadline; last failure at step /,
              );
              assertMatch(line, c.message);
              assert(line.length < 600, `one short line, not ${line.length} characters`);
              assert(responder.requests.includes(c.operation), "the bad answer was sent");
              if (c.final) {
                assertEquals(
                  responder.requests.filter((op) => op === c.operation).length,
                  1,
                  "a deliberate answer is not asked for again",
                );
              }
              assertNoPartialFiles(home, c.name);
              const journal = join(configDirOf(home), "fleetprov-journal.json");
              if (existsSync(journal)) {
                assertEquals(c.operation, "RegisterThing", "journaled only after a good create");
                assertEquals((statSync(journal).mode & 0o777).toString(8), "600");
              }
            } finally {
              await responder.close();
            }
          },
        })),
        4, // width
      );
    } finally {
      await emulator.close();
    }
  },
});

/** Every file of a board's config dir but the rotation journal, with its bytes. */
function identityFiles(home: string): Record<string, string> {
  const dir = configDirOf(home);
  return Object.fromEntries(
    listFiles(dir).filter((f) => f !== "fleetprov-rotation.json")
      .map((f) => [f, readFileSync(join(dir, f), "utf8")]),
  );
}

Deno.test({
  name:
    `hostile broker replies to a rotation (${BROKER_CASES.length} cases): the same rules (deadline, certificate cap, one line, exit 1), the old identity untouched`,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    OTHER_KEY ||= (await generateKeyPair("ec-p256")).privateKeyPem;
    const emulator = await boardEmulator();
    try {
      await concurrentSteps(
        t,
        BROKER_CASES.map((c) => ({
          name: c.name,
          fn: async () => {
            // A board provisioned by the real emulator, rotating against the hostile broker.
            const home = deviceHome();
            const serial = `SN-${crypto.randomUUID()}`;
            // Boards side by side: each claim connection needs a client id of its own.
            const provisioned = await runFleetprov(
              deviceArgs(emulator, { serial, extra: ["--client-id", serial] }),
              { home },
            );
            assertEquals(provisioned.code, ExitCode.Ok, provisioned.stderr);
            const before = identityFiles(home);
            const valid = await hostileCertificate();
            const responder = await hostileBroker(emulator, {
              onRequest: ({ operation }) => {
                const body = operation === c.operation ? c.answer(valid) : valid;
                const rejected = operation === c.operation && c.accepted === false;
                return { answer: rejected ? "rejected" : "accepted", body: json(body) };
              },
            });
            try {
              const result = await runFleetprov([
                "rotate",
                ...deviceArgs(emulator, {
                  retry: GIVE_UP_FAST,
                  extra: [
                    "--port",
                    String(responder.port),
                    "--rotation-template-name",
                    TEMPLATE_NAME,
                    "--rotation-key-source",
                    "aws",
                    "--force",
                  ],
                }),
              ], { home });
              assertEquals(
                result.code,
                ExitCode.Rejected,
                `${c.name}\n${result.stdout}${result.stderr}`,
              );
              const line = oneLineError(result, true);
              assertMatch(
                line,
                c.operation === "CreateKeysAndCertificate" && c.accepted !== false
                  ? new RegExp(`Stopped after minting ${CERTIFICATE_CAP} certificates`)
                  : c.final
                  ? /^(?!.*deadline)/
                  : /did not finish within the 1 s deadline; last failure at step /,
              );
              assertMatch(line, c.message);
              if (c.final) {
                assertEquals(
                  responder.requests.filter((op) => op === c.operation).length,
                  1,
                  "a deliberate answer is not asked for again",
                );
              }
              assertMatch(line, /The old certificate [0-9a-f]{64} stays active\.$/);
              assert(line.length < 800, `one short line, not ${line.length} characters`);
              assert(responder.requests.includes(c.operation), "the bad answer was sent");
              assertEquals(identityFiles(home), before, `${c.name}: the old identity untouched`);
              assertNoTempFiles(home);
              const journal = join(configDirOf(home), "fleetprov-rotation.json");
              if (existsSync(journal)) {
                assertEquals(c.operation, "RegisterThing", "journaled only after a good create");
                assertEquals((statSync(journal).mode & 0o777).toString(8), "600");
              }
            } finally {
              await responder.close();
            }
          },
        })),
        4, // width
      );
    } finally {
      await emulator.close();
    }
  },
});
