// SPDX-License-Identifier: Apache-2.0
/**
 * The Yocto layer that `deno task build` writes to dist/meta-fleetprov: its
 * checksums match the built artifacts, its ptest passes with the real binary
 * (and fails with a wrong one), and its install step — run here with the
 * recipe's own shell and Python, outside BitBake — lays out files that the
 * real binary then uses to provision a device against the emulator.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { build, type BuildReport, sha256File } from "../build/mod.ts";
import { SYSTEMD_UNITS } from "../build/yocto.ts";
import { VERSION } from "../src/version.ts";
import { deviceHome, findTool, modeOf, ROOT, testEmulator } from "./support/mod.ts";

const python3 = findTool(["/usr/bin/python3"], "python3");

let built: Promise<BuildReport> | undefined;
function artifacts(): Promise<BuildReport> {
  built ??= build({ targets: ["x64"], log: () => {} });
  return built;
}

async function layer(): Promise<{ report: BuildReport; recipeDir: string; recipe: string }> {
  const report = await artifacts();
  const recipeDir = join(report.layerPath, "recipes-support", "fleetprov");
  const recipe = await Deno.readTextFile(join(recipeDir, `fleetprov_${VERSION}.bb`));
  return { report, recipeDir, recipe };
}

/** The body of `[python ]name() { ... }` in a recipe (up to the closing brace at column 0). */
function recipeFunction(recipe: string, header: string): string {
  const start = recipe.indexOf(`${header} {\n`);
  assert(start >= 0, `the recipe has no ${header}`);
  const bodyStart = start + header.length + 3;
  return recipe.slice(bodyStart, recipe.indexOf("\n}\n", bodyStart));
}

/** Expands BitBake `${VAR}` references from `vars`; unknown names are a test failure. */
function expand(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][\w]*)\}/g, (_, name: string) => {
    assert(name in vars, `no test value for \${${name}}`);
    return vars[name];
  });
}

Deno.test("yocto: the release include pins PV and the SHA-256 of every built binary", async () => {
  const { report, recipeDir, recipe } = await layer();
  const include = await Deno.readTextFile(join(recipeDir, "fleetprov-release.inc"));
  assertMatch(recipe, /^require fleetprov-release\.inc$/m);
  assertMatch(include, new RegExp(`^PV = "${VERSION.replaceAll(".", "\\.")}"$`, "m"));
  const sums = await Deno.readTextFile(report.sumsPath);
  for (const target of report.targets) {
    const actual = await sha256File(target.path);
    assertMatch(include, new RegExp(`^SRC_URI\\[${target.id}\\.sha256sum\\] = "${actual}"$`, "m"));
    assert(sums.includes(`${actual}  fleetprov-linux-${target.id}\n`), "SHA256SUMS disagrees");
  }
  // Every architecture the recipe maps to has a binary name the release publishes.
  const arches = [...recipe.matchAll(/^FLEETPROV_ARCH:[\w-]+ = "(\w+)"$/gm)].map((m) => m[1]);
  assertEquals(arches.sort(), ["arm64", "armv7", "x64"]);
  assertMatch(recipe, /fleetprov-linux-\$\{FLEETPROV_ARCH\};name=\$\{FLEETPROV_ARCH\}/);
  assertEquals([...SYSTEMD_UNITS], [
    "fleetprov.service",
    "fleetprov-provisioned.target",
    "fleetprov-rotate.service",
    "fleetprov-rotate.timer",
  ]);
  // Enabled in the image: the provisioning unit and the rotation timer (which starts its service).
  assertMatch(recipe, /^SYSTEMD_SERVICE:\$\{PN\} = "fleetprov\.service fleetprov-rotate\.timer"$/m);
  for (const unit of SYSTEMD_UNITS) {
    assertEquals(
      await Deno.readTextFile(join(recipeDir, "files", unit)),
      await Deno.readTextFile(join(ROOT, "build", "systemd", unit)),
    );
    assertMatch(recipe, new RegExp(`^ +file://${unit.replaceAll(".", "\\.")} \\\\$`, "m"));
  }
  for (const match of recipe.matchAll(/file:\/\/([\w.-]+)/g)) {
    await Deno.stat(join(recipeDir, "files", match[1]));
  }
  // RDEPENDS names the package of every library the binaries link.
  const rdepends = /^RDEPENDS:\$\{PN\} = "([^"]*)"$/m.exec(recipe)?.[1].split(" ") ?? [];
  const packageOf: Record<string, string> = {
    "libstdc++.so.6": "libstdc++",
    "libgcc_s.so.1": "libgcc",
    "libatomic.so.1": "libatomic",
  };
  for (const target of report.targets) {
    const needed = new TextDecoder().decode(
      (await new Deno.Command("readelf", { args: ["-d", target.path], stdout: "piped" }).output())
        .stdout,
    );
    for (const [, library] of needed.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)) {
      const pkg = packageOf[library] ??
        (/^(libc|libm|libdl|libpthread|ld-linux)/.test(library) ? "glibc" : library);
      assert(rdepends.includes(pkg), `RDEPENDS lacks ${pkg} (${target.id} links ${library})`);
    }
  }
  // The licence: Apache-2.0 and every licence of a bundled npm package, and
  // LIC_FILES_CHKSUM's MD5s are those of the files the layer ships.
  const license = /^LICENSE = "([^"]+)"$/m.exec(recipe)?.[1].split(" & ") ?? [];
  assert(license.includes("Apache-2.0"), license.join(" & "));
  const notices = await Deno.readTextFile(join(recipeDir, "files", "THIRD_PARTY_NOTICES"));
  assertEquals(notices, await Deno.readTextFile(report.noticesPath));
  for (const [, id] of notices.matchAll(/^ {2}\S+ \d\S* +(\S+)$/gm)) {
    if (id === "others") continue;
    assert(license.includes(id), `LICENSE lacks ${id}, the licence of a bundled package`);
  }
  const md5 = async (file: string) =>
    createHash("md5").update(await Deno.readFile(join(recipeDir, "files", file))).digest("hex");
  assertMatch(recipe, new RegExp(`file://LICENSE;md5=${await md5("LICENSE")}\\b`));
  assertEquals(
    await Deno.readTextFile(join(recipeDir, "files", "LICENSE")),
    await Deno.readTextFile(join(ROOT, "LICENSE")),
  );
  assertMatch(recipe, /file:\/\/THIRD_PARTY_NOTICES;md5=\$\{FLEETPROV_NOTICES_MD5\}/);
  assertMatch(
    include,
    new RegExp(`^FLEETPROV_NOTICES_MD5 = "${await md5("THIRD_PARTY_NOTICES")}"$`, "m"),
  );
  assertMatch(recipe, /^SYSTEMD_AUTO_ENABLE = "enable"$/m);
});

Deno.test("yocto: the ptest passes with the built binary and fails with a wrong one", async () => {
  const { report, recipeDir, recipe } = await layer();
  const install = expand(recipeFunction(recipe, "do_install_ptest()"), {
    S: join(recipeDir, "files"),
    PV: VERSION,
    D: "",
    PTEST_PATH: "",
  });
  const sedLine = install.split("\n").find((line) => line.trim().startsWith("sed "));
  assert(sedLine, "do_install_ptest has no sed line");
  const script = (await Deno.readTextFile(join(recipeDir, "files", "run-ptest")))
    .replaceAll("@PV@", VERSION);
  const dir = await Deno.makeTempDir({ prefix: "fleetprov-ptest-" });
  await Deno.writeTextFile(join(dir, "run-ptest"), script, { mode: 0o755 });
  const runPtest = async (fleetprov: string) => {
    await Deno.remove(join(dir, "fleetprov")).catch(() => {});
    await Deno.symlink(fleetprov, join(dir, "fleetprov"));
    const output = await new Deno.Command("sh", {
      args: [join(dir, "run-ptest")],
      env: { PATH: `${dir}:/usr/bin:/bin` },
    }).output();
    return new TextDecoder().decode(output.stdout);
  };
  assertEquals(await runPtest(report.targets[0].path), "PASS: fleetprov --version\n");
  const impostor = join(dir, "old-fleetprov");
  await Deno.writeTextFile(impostor, "#!/bin/sh\necho fleetprov 0.0.1\n", { mode: 0o755 });
  assertMatch(await runPtest(impostor), /^FAIL: fleetprov --version printed 'fleetprov 0\.0\.1'/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "yocto: do_install's layout and config provision a device with the installed binary",
  ignore: python3 === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { report, recipeDir, recipe } = await layer();
    const emulator = await testEmulator({ templateName: "FleetprovTemplate" });
    try {
      // Installed straight into a temporary "image root" (D empty, sysconfdir
      // inside it), so the config's absolute paths are real on this host.
      const image = await Deno.makeTempDir({ prefix: "fleetprov-image-" });
      const unpack = await Deno.makeTempDir({ prefix: "fleetprov-unpack-" });
      for await (const entry of Deno.readDir(join(recipeDir, "files"))) {
        await Deno.copyFile(join(recipeDir, "files", entry.name), join(unpack, entry.name));
      }
      await Deno.copyFile(report.targets[0].path, join(unpack, `fleetprov-${VERSION}-linux-x64`));
      const vars: Record<string, string> = {
        D: "",
        S: unpack,
        PV: VERSION,
        FLEETPROV_ARCH: "x64",
        FLEETPROV_BINARY: `fleetprov-${VERSION}-linux-x64`,
        bindir: join(image, "usr", "bin"),
        sysconfdir: join(image, "etc"),
        systemd_system_unitdir: join(image, "lib", "systemd", "system"),
        FLEETPROV_CONFIGURED: "1",
        FLEETPROV_ENDPOINT: emulator.endpoint,
        FLEETPROV_TEMPLATE_NAME: "FleetprovTemplate",
        FLEETPROV_CLAIM_CERT: emulator.claim.certPath,
        FLEETPROV_CLAIM_KEY: emulator.claim.keyPath,
        FLEETPROV_ROOT_CA: emulator.caPath,
        FLEETPROV_CLAIM_THING_NAME: "",
        FLEETPROV_TEMPLATE_PARAMETERS: "",
        FLEETPROV_ROTATION_TEMPLATE_NAME: "FleetprovRotationTemplate",
        FLEETPROV_REQUIRED:
          "FLEETPROV_ENDPOINT FLEETPROV_TEMPLATE_NAME FLEETPROV_CLAIM_CERT FLEETPROV_CLAIM_KEY FLEETPROV_ROOT_CA",
      };
      const shell = await new Deno.Command("sh", {
        args: ["-e", "-c", expand(recipeFunction(recipe, "do_install()"), vars)],
      }).output();
      assertEquals(shell.code, 0, new TextDecoder().decode(shell.stderr));

      const python = [
        "import json, sys",
        "class Data:",
        "    def __init__(self, values): self.values = values",
        "    def getVar(self, name): return self.values.get(name)",
        "class BitBake:",
        "    def warn(self, message): print('WARNING: ' + message)",
        "    def fatal(self, message): print('FATAL: ' + message); sys.exit(1)",
        "bb = BitBake()",
        "d = Data(json.loads(sys.argv[1]))",
        "def fleetprov_check_settings(d):",
        recipeFunction(recipe, "python fleetprov_check_settings()"),
        "def fleetprov_write_config(d):",
        recipeFunction(recipe, "python fleetprov_write_config()"),
        "fleetprov_check_settings(d)",
        "fleetprov_write_config(d)",
      ].join("\n");
      const py = await new Deno.Command(python3!, {
        args: ["-c", python, JSON.stringify(vars)],
      }).output();
      assertEquals(
        py.code,
        0,
        new TextDecoder().decode(py.stdout) + new TextDecoder().decode(py.stderr),
      );

      const etc = join(image, "etc", "fleetprov");
      assertEquals(modeOf(etc), "700");
      assertEquals(modeOf(join(image, "usr", "bin", "fleetprov")), "755");
      assertEquals(modeOf(join(etc, "claim-private.pem.key")), "600");
      assertEquals(modeOf(join(etc, "claim-certificate.pem.crt")), "644");
      assertEquals(modeOf(join(etc, "fleetprov.conf")), "640");
      for (const unit of SYSTEMD_UNITS) {
        assertEquals(modeOf(join(image, "lib", "systemd", "system", unit)), "644");
      }

      // The unit's command line, with the image's paths and the emulator's port.
      const config = JSON.parse(await Deno.readTextFile(join(etc, "fleetprov.conf")));
      config.port = emulator.port;
      await Deno.writeTextFile(join(etc, "fleetprov.conf"), JSON.stringify(config), {
        mode: 0o640,
      });
      const home = deviceHome();
      const run = await new Deno.Command(join(image, "usr", "bin", "fleetprov"), {
        args: ["--config-file", join(etc, "fleetprov.conf")],
        env: { HOME: home, LOCK_FILE_PATH: join(home, "lock") },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const output = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
      assertEquals(run.code, 0, output);
      const runtime = JSON.parse(
        await Deno.readTextFile(
          join(home, ".aws-iot-device-client", "aws-iot-device-client-runtime.conf"),
        ),
      )["runtime-config"];
      assertEquals(runtime["completed-fp"], true);
      assertEquals(
        config["fleet-provisioning"]["rotation-template-name"],
        "FleetprovRotationTemplate",
      );
      // What fleetprov-rotate.service runs, on the image's config: a young certificate stays.
      const rotate = await new Deno.Command(join(image, "usr", "bin", "fleetprov"), {
        args: ["rotate", "--config-file", join(etc, "fleetprov.conf")],
        env: { HOME: home, LOCK_FILE_PATH: join(home, "lock") },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const rotated = new TextDecoder().decode(rotate.stdout) +
        new TextDecoder().decode(rotate.stderr);
      assertEquals(rotate.code, 0, rotated);
      assertMatch(rotated, /not rotating before it is 365 days old or 30 days from expiry/);
      await Deno.remove(image, { recursive: true });
      await Deno.remove(unpack, { recursive: true });
    } finally {
      await emulator.close();
    }
  },
});

Deno.test({
  name: "yocto: unset claim settings warn and install only the example config",
  ignore: python3 === undefined,
  async fn() {
    const { recipe } = await layer();
    const python = [
      "import sys",
      "class Data:",
      "    def getVar(self, name): return {'FLEETPROV_REQUIRED': 'FLEETPROV_ENDPOINT FLEETPROV_ROOT_CA'}.get(name, '')",
      "class BitBake:",
      "    def warn(self, message): print('WARNING: ' + message)",
      "    def fatal(self, message): print('FATAL: ' + message); sys.exit(1)",
      "bb = BitBake()",
      "d = Data()",
      "def fleetprov_check_settings(d):",
      recipeFunction(recipe, "python fleetprov_check_settings()"),
      "def fleetprov_write_config(d):",
      recipeFunction(recipe, "python fleetprov_write_config()"),
      "fleetprov_check_settings(d)",
      "fleetprov_write_config(d)",
    ].join("\n");
    const py = await new Deno.Command(python3!, { args: ["-c", python] }).output();
    const stdout = new TextDecoder().decode(py.stdout);
    assertEquals(py.code, 0, stdout + new TextDecoder().decode(py.stderr));
    assertMatch(stdout, /^WARNING: fleetprov: FLEETPROV_ENDPOINT, FLEETPROV_ROOT_CA unset/);
  },
});
