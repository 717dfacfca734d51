// SPDX-License-Identifier: Apache-2.0
/**
 * The Debian packages `deno task build` writes: lintian finds no error or
 * warning in any of them; their control fields and contents (dpkg-deb) are
 * right; and the amd64 package, installed with `dpkg -i` on this machine,
 * puts the files in place with their modes and enables the unit, `dpkg -r`
 * leaves only configuration (conffiles and the unit's enablement), and
 * `dpkg -P` leaves the system exactly as it was.
 *
 * Installing needs root (CI is root); without it, or without lintian, the
 * tests are skipped loudly unless FLEETPROV_REQUIRE_TOOLS=1. Without QEMU the
 * ARM packages cannot be built (their binaries are verified under QEMU);
 * FLEETPROV_REQUIRE_QEMU=1 makes that a failure.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { build, type BuildReport, sha256File } from "../build/mod.ts";
import { DEB_ARCH } from "../build/deb.ts";
import { hostRunner } from "../build/host.ts";
import { TARGET_IDS, type TargetId } from "../build/targets.ts";
import { VERSION } from "../src/version.ts";
import { findTool, modeOf, ROOT, skipWhenMissing, tempDir } from "./support/mod.ts";

/** The systemd units the package ships (README "Debian packages"). */
const UNITS = [
  "fleetprov.service",
  "fleetprov-provisioned.target",
  "fleetprov-rotate.service",
  "fleetprov-rotate.timer",
];

const REQUIRE_TOOLS = Deno.env.get("FLEETPROV_REQUIRE_TOOLS") === "1";
const lintian = findTool(["/usr/bin/lintian"], "lintian");
const dpkgDeb = findTool(["/usr/bin/dpkg-deb"], "dpkg");

const runnable = TARGET_IDS.filter((id) => hostRunner(id).ok);

let built: Promise<BuildReport> | undefined;
function packages(): Promise<BuildReport> {
  built ??= build({ targets: runnable, log: () => {} });
  return built;
}

async function debOf(id: TargetId): Promise<string> {
  const path = (await packages()).debs[id];
  assert(path, `the build produced no ${id} package`);
  return path;
}

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(command: string, args: string[]): Promise<Output> {
  const output = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { DEBIAN_FRONTEND: "noninteractive" },
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

function skipNote(id: TargetId): boolean {
  const runner = hostRunner(id);
  return skipWhenMissing(runner.ok ? undefined : `${runner.reason}.`, {
    require: "FLEETPROV_REQUIRE_QEMU",
    what: `the ${id} Debian package tests`,
  });
}

/** `Field: value` pairs of a control file (continuation lines joined). */
function controlFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  let last = "";
  for (const line of text.split("\n")) {
    if (line.startsWith(" ") && last) fields.set(last, `${fields.get(last)}\n${line.slice(1)}`);
    else if (line.includes(":")) {
      last = line.slice(0, line.indexOf(":"));
      fields.set(last, line.slice(line.indexOf(":") + 1).trim());
    }
  }
  return fields;
}

for (const id of TARGET_IDS) {
  Deno.test({
    name: `deb ${DEB_ARCH[id]}: lintian reports no error and no warning`,
    ignore: lintian === undefined || skipNote(id),
    async fn() {
      if (!hostRunner(id).ok) throw new Error(`FLEETPROV_REQUIRE_QEMU=1 but cannot build ${id}.`);
      const deb = await debOf(id);
      const result = await run(lintian!, ["--allow-root", "--fail-on", "error,warning", deb]);
      const problems = result.stdout.split("\n").filter((line) => /^[EW]: /.test(line));
      assertEquals(problems, [], result.stdout + result.stderr);
      assertEquals(result.code, 0, result.stdout + result.stderr);
    },
  });

  Deno.test({
    name: `deb ${DEB_ARCH[id]}: control fields, files, modes, conffiles and scripts`,
    ignore: dpkgDeb === undefined || skipNote(id),
    async fn() {
      if (!hostRunner(id).ok) throw new Error(`FLEETPROV_REQUIRE_QEMU=1 but cannot build ${id}.`);
      const report = await packages();
      const target = report.targets.find((t) => t.id === id)!;
      const deb = await debOf(id);
      assertEquals(deb, join(report.sumsPath, "..", `fleetprov_${VERSION}_${DEB_ARCH[id]}.deb`));

      const control = controlFields((await run(dpkgDeb!, ["--field", deb])).stdout);
      assertEquals(control.get("Package"), "fleetprov");
      assertEquals(control.get("Version"), VERSION);
      assertEquals(control.get("Architecture"), DEB_ARCH[id]);
      // One package per library the binary links (libatomic1 where it needs
      // libatomic.so.1), glibc 2.28 as the README says, every minimum met by
      // Debian 12's libraries (the cross packages' versions for ARM).
      const depends = control.get("Depends")!.split(", ");
      const needed = (await run("readelf", ["-d", target.path])).stdout;
      const names = depends.map((d) => d.split(" ")[0]).sort();
      assertEquals(names, [
        ...(needed.includes("[libatomic.so.1]") ? ["libatomic1"] : []),
        "libc6",
        "libgcc-s1",
        "libstdc++6",
      ]);
      assert(depends.includes("libc6 (>= 2.28)"), control.get("Depends"));
      for (const dependency of depends) {
        const [, name, min] = /^(\S+)(?: \(>= (\S+)\))?$/.exec(dependency) ?? [];
        assert(name, dependency);
        if (min === undefined) continue;
        const hostPackage = id === "x64" ? name : `${name}-${DEB_ARCH[id]}-cross`;
        const installed = await run("dpkg-query", ["-W", "-f", "${Version}", hostPackage]);
        if (installed.code !== 0) continue;
        const ok = await run("dpkg", ["--compare-versions", installed.stdout, "ge", min]);
        assertEquals(
          ok.code,
          0,
          `${hostPackage} ${installed.stdout} does not satisfy ${dependency}`,
        );
      }

      const listing = (await run(dpkgDeb!, ["--contents", deb])).stdout.trim().split("\n");
      const entries = new Map(listing.map((line) => {
        const [mode, owner, , , , path] = line.split(/\s+/);
        return [path.replace(/^\.\//, "/"), `${mode} ${owner}`];
      }));
      assertEquals(entries.get("/usr/bin/fleetprov"), "-rwxr-xr-x root/root");
      assertEquals(entries.get("/etc/fleetprov/"), "drwx------ root/root");
      assertEquals(entries.get("/etc/fleetprov/fleetprov.conf.example"), "-rw-r----- root/root");
      // fleetprov-provisioned.target among them: the unit starts it after each successful run
      // (ExecStopPost=); without it every successful run fails with 5/NOTINSTALLED and is
      // restarted forever.
      for (const unit of UNITS) {
        assertEquals(entries.get(`/usr/lib/systemd/system/${unit}`), "-rw-r--r-- root/root", unit);
      }
      for (
        const doc of ["copyright", "changelog.gz", "THIRD_PARTY_NOTICES.gz"]
      ) assertEquals(entries.get(`/usr/share/doc/fleetprov/${doc}`), "-rw-r--r-- root/root");
      assert(entries.has("/usr/share/man/man1/fleetprov.1.gz"));

      const dir = tempDir("fleetprov-deb-");
      assertEquals((await run(dpkgDeb!, ["-x", deb, dir])).code, 0);
      assertEquals(await sha256File(join(dir, "usr/bin/fleetprov")), target.sha256);
      const notices = gunzipSync(
        await Deno.readFile(join(dir, "usr/share/doc/fleetprov/THIRD_PARTY_NOTICES.gz")),
      ).toString("utf8");
      assertEquals(notices, target.notices, "the .deb's notices are the binary's own");
      const copyright = await Deno.readTextFile(join(dir, "usr/share/doc/fleetprov/copyright"));
      assertMatch(copyright, /^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\//);
      assertMatch(copyright, /^Files: \*\nCopyright: .*\nLicense: Apache-2\.0$/m);
      assertMatch(copyright, new RegExp(`Node\\.js ${target.nodeVersion.replaceAll(".", "\\.")}`));
      for (const [, name, version] of notices.matchAll(/^ {2}(\S+) (\d\S*) +\S+$/gm)) {
        if (name === "Node.js") continue;
        assert(
          copyright.includes(`Files: node_modules/.deno/${name.replace("/", "+")}@${version}/*`),
          `copyright lacks ${name} ${version}`,
        );
      }

      const controlDir = join(dir, "DEBIAN");
      assertEquals((await run(dpkgDeb!, ["-e", deb, controlDir])).code, 0);
      assertEquals(
        await Deno.readTextFile(join(controlDir, "conffiles")),
        "/etc/fleetprov/fleetprov.conf.example\n",
      );
      const postinst = await Deno.readTextFile(join(controlDir, "postinst"));
      const postrm = await Deno.readTextFile(join(controlDir, "postrm"));
      assertEquals(modeOf(join(controlDir, "postinst")), "755");
      // Enabled at installation: the provisioning unit and the rotation timer, nothing else.
      assertEquals(
        [...postinst.matchAll(/deb-systemd-helper enable '([^']+)'/g)].map((m) => m[1]),
        ["fleetprov.service", "fleetprov-rotate.timer"],
      );
      assertEquals(
        [...postrm.matchAll(/deb-systemd-helper purge '([^']+)'/g)].map((m) => m[1]),
        ["fleetprov-rotate.timer", "fleetprov.service"],
      );
      assertMatch(postrm, /"\$1" = "purge"[\s\S]*deb-systemd-helper purge 'fleetprov\.service'/);
      for (const unit of UNITS) {
        assertEquals(
          await Deno.readTextFile(join(dir, "usr/lib/systemd/system", unit)),
          await Deno.readTextFile(join(ROOT, "build", "systemd", unit)),
          `${unit} is build/systemd's`,
        );
      }
      await Deno.remove(dir, { recursive: true });
    },
  });
}

// --- Installing the amd64 package on this machine ---------------------------

const IS_ROOT = Deno.uid() === 0;
const dpkg = findTool(["/usr/bin/dpkg"], "dpkg");
if (!IS_ROOT && !REQUIRE_TOOLS) {
  console.error(
    "\n*** SKIPPING the dpkg -i / -r / -P test: it needs root (CI runs as root). ***\n",
  );
}

/**
 * Runs dpkg, waiting while another dpkg or apt holds its lock (dpkg has no
 * lock timeout of its own, and others may be installing packages here).
 */
async function dpkgRun(args: string[]): Promise<Output> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const result = await run(dpkg!, args);
    const locked = /lock.*(held|locked) by another process|Could not get lock/i.test(result.stderr);
    if (!locked || Date.now() > deadline) return result;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

/** Every path the package could touch, with its type, mode, owner and link target or hash. */
async function snapshot(): Promise<Map<string, string>> {
  const state = new Map<string, string>();
  async function walk(path: string): Promise<void> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(path);
    } catch {
      return;
    }
    const mode = ((info.mode ?? 0) & 0o7777).toString(8);
    if (info.isSymlink) state.set(path, `link -> ${await Deno.readLink(path)}`);
    else if (info.isDirectory) {
      state.set(path, `dir ${mode} ${info.uid}:${info.gid}`);
      for await (const entry of Deno.readDir(path)) await walk(join(path, entry.name));
    } else state.set(path, `file ${mode} ${info.uid}:${info.gid} ${await sha256File(path)}`);
  }
  for (
    const path of [
      "/usr/bin/fleetprov",
      "/etc/fleetprov",
      "/etc/systemd/system",
      ...UNITS.flatMap((
        unit,
      ) => [`/usr/lib/systemd/system/${unit}`, `/lib/systemd/system/${unit}`]),
      "/var/lib/systemd/deb-systemd-helper-enabled",
      "/var/lib/systemd/deb-systemd-helper-masked",
      "/usr/share/doc/fleetprov",
      "/usr/share/man/man1/fleetprov.1.gz",
      "/usr/share/lintian/overrides/fleetprov",
    ]
  ) await walk(path);
  return state;
}

/** What changed from `before` to `after`: added, removed or altered paths. */
function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const paths = new Set([...before.keys(), ...after.keys()]);
  return [...paths].filter((path) => before.get(path) !== after.get(path)).sort()
    .map((path) => `${path}: ${before.get(path) ?? "(none)"} => ${after.get(path) ?? "(none)"}`);
}

async function packageStatus(): Promise<string> {
  const result = await run(dpkg!, ["--status", "fleetprov"]);
  return result.code === 0 ? /^Status: (.*)$/m.exec(result.stdout)?.[1] ?? "?" : "not installed";
}

Deno.test({
  name: "deb amd64: dpkg -i installs and enables the unit, -r keeps configuration, -P restores",
  ignore: dpkg === undefined || Deno.build.arch !== "x86_64" || (!IS_ROOT && !REQUIRE_TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!IS_ROOT) throw new Error("FLEETPROV_REQUIRE_TOOLS=1 but this test needs root.");
    const deb = await debOf("x64");
    const status = await packageStatus();
    if (status !== "not installed" && status !== "unknown ok not-installed") {
      throw new Error(
        `fleetprov is already known to dpkg here (${status}); this test installs and purges ` +
          "it, so it refuses to touch that installation. Purge it first: dpkg -P fleetprov.",
      );
    }
    const before = await snapshot();
    assert(!before.has("/usr/bin/fleetprov"), "/usr/bin/fleetprov exists and is not packaged");
    try {
      await t.step("dpkg -i: files, modes, conffile and the enabled unit", async () => {
        const install = await dpkgRun(["-i", deb]);
        assertEquals(install.code, 0, install.stdout + install.stderr);
        assertEquals(await packageStatus(), "install ok installed");
        assertEquals(modeOf("/usr/bin/fleetprov"), "755");
        assertEquals(modeOf("/etc/fleetprov"), "700");
        assertEquals(modeOf("/etc/fleetprov/fleetprov.conf.example"), "640");
        for (const unit of UNITS) assertEquals(modeOf(`/usr/lib/systemd/system/${unit}`), "644");
        const version = await run("/usr/bin/fleetprov", ["--version"]);
        assert(version.stdout.startsWith(`fleetprov ${VERSION} (linux-x64; Node.js `));
        // [Install] WantedBy=multi-user.target: deb-systemd-helper's symlink.
        // (deb-systemd-helper may name it through the /lib alias of /usr/lib.)
        const wants = "/etc/systemd/system/multi-user.target.wants/fleetprov.service";
        assertMatch(
          await Deno.readLink(wants),
          /^(\/usr)?\/lib\/systemd\/system\/fleetprov\.service$/,
        );
        assertEquals(
          await Deno.realPath(wants),
          await Deno.realPath("/usr/lib/systemd/system/fleetprov.service"),
        );
        // [Install] WantedBy=timers.target: the rotation timer is enabled too.
        const timer = "/etc/systemd/system/timers.target.wants/fleetprov-rotate.timer";
        assertEquals(
          await Deno.realPath(timer),
          await Deno.realPath("/usr/lib/systemd/system/fleetprov-rotate.timer"),
        );
        const conffiles = await run(dpkg!, ["--status", "fleetprov"]);
        assertMatch(
          conffiles.stdout,
          /^Conffiles:\n \/etc\/fleetprov\/fleetprov\.conf\.example \w+$/m,
        );
        const added = changes(before, await snapshot());
        assert(added.length > 0);
      });

      await t.step("dpkg -r: only configuration stays (conffile, unit enablement)", async () => {
        const remove = await dpkgRun(["-r", "fleetprov"]);
        assertEquals(remove.code, 0, remove.stdout + remove.stderr);
        assertEquals(await packageStatus(), "deinstall ok config-files");
        const left = changes(before, await snapshot()).map((line) => line.split(": ")[0]);
        // Debian policy: removing keeps conffiles; deb-systemd-helper keeps the
        // enablement (the admin's enable/disable choice) until purge.
        const configuration = (path: string) =>
          path === "/etc/fleetprov" || path === "/etc/fleetprov/fleetprov.conf.example" ||
          path.startsWith("/etc/systemd/system/multi-user.target.wants") ||
          path.startsWith("/etc/systemd/system/timers.target.wants") ||
          path.startsWith("/var/lib/systemd/deb-systemd-helper-enabled");
        assertEquals(left.filter((path) => !configuration(path)), [], left.join("\n"));
        assert(left.includes("/etc/fleetprov/fleetprov.conf.example"), "the conffile went");
        assert(
          left.includes("/etc/systemd/system/multi-user.target.wants/fleetprov.service"),
          "the enablement went before the purge",
        );
      });

      await t.step("dpkg -P: the system is exactly as before", async () => {
        const purge = await dpkgRun(["-P", "fleetprov"]);
        assertEquals(purge.code, 0, purge.stdout + purge.stderr);
        assertEquals(await packageStatus(), "not installed");
        assertEquals(changes(before, await snapshot()), []);
      });
    } finally {
      // Never leave fleetprov installed, whatever failed above.
      if (await packageStatus() !== "not installed") await dpkgRun(["-P", "fleetprov"]);
    }
  },
});
