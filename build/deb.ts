// SPDX-License-Identifier: Apache-2.0
/**
 * Debian packages `fleetprov_<version>_{amd64,arm64,armhf}.deb`, built with
 * `dpkg-deb` from a staged tree: /usr/bin/fleetprov, the systemd units
 * (fleetprov.service and fleetprov-rotate.timer enabled by
 * deb-systemd-helper in the maintainer scripts, as dh_installsystemd writes
 * them; fleetprov-provisioned.target, which the units start after each
 * successful run, and fleetprov-rotate.service), /etc/fleetprov (0700) with the example
 * config as a conffile, a man page, and /usr/share/doc/fleetprov with the
 * machine-readable copyright file, the changelog and THIRD_PARTY_NOTICES.
 * `Depends:` comes from the binary's ELF version needs (readelf).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { BundledPackage, RuntimeLicense } from "./notices.ts";
import { runChecked } from "./host.ts";
import { type TargetId, TARGETS } from "./targets.ts";

const BUILD_DIR = new URL(".", import.meta.url).pathname;
/** The systemd units the package ships, from build/systemd. */
const UNITS = [
  "fleetprov.service",
  "fleetprov-provisioned.target",
  "fleetprov-rotate.service",
  "fleetprov-rotate.timer",
] as const;
/** The units enabled at installation (those with an [Install] section). */
const ENABLED_UNITS = ["fleetprov.service", "fleetprov-rotate.timer"] as const;
const EXAMPLE_CONFIG = join(
  BUILD_DIR,
  "yocto",
  "meta-fleetprov",
  "recipes-support",
  "fleetprov",
  "files",
  "fleetprov.conf.example",
);

/** Debian architecture of each target. */
export const DEB_ARCH: Readonly<Record<TargetId, string>> = {
  x64: "amd64",
  arm64: "arm64",
  armv7: "armhf",
};

/** The package's maintainer (also the changelog's author). */
export const MAINTAINER = "fleetprov maintainers <fleetprov@users.noreply.github.com>";
const HOMEPAGE = "https://github.com/fleetprov/fleetprov";

/** What goes into one package. */
export interface DebInput {
  version: string;
  target: TargetId;
  /** The built single executable. */
  binary: string;
  /** The notices embedded into that binary. */
  notices: string;
  /** The npm packages bundled into it. */
  packages: readonly BundledPackage[];
  /** Its Node.js runtime. */
  runtime: RuntimeLicense;
  /** `fleetprov --help` text, for the man page. */
  help: string;
  /** Seconds since the epoch for every timestamp (SOURCE_DATE_EPOCH). */
  epoch: number;
}

async function run(command: string, args: string[]): Promise<string> {
  return (await runChecked(command, args)).stdout;
}

/** `a` compared with `b` as dotted versions ("3.4.21" < "3.4.26"). */
function compareDotted(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The GCC release that introduced each libstdc++ symbol version (GCC's ABI
 * policy document); older nodes are in every libstdc++6 Debian ever shipped.
 */
const LIBSTDCXX_NODES: Record<string, string> = {
  "GLIBCXX_3.4.21": "5",
  "GLIBCXX_3.4.22": "6",
  "GLIBCXX_3.4.23": "7",
  "GLIBCXX_3.4.24": "7.2",
  "GLIBCXX_3.4.25": "8",
  "GLIBCXX_3.4.26": "9",
  "GLIBCXX_3.4.27": "9.2",
  "GLIBCXX_3.4.28": "9.3",
  "GLIBCXX_3.4.29": "11",
  "GLIBCXX_3.4.30": "12",
  "GLIBCXX_3.4.31": "13",
  "GLIBCXX_3.4.32": "13.2",
  "GLIBCXX_3.4.33": "14",
  "CXXABI_1.3.9": "5",
  "CXXABI_1.3.10": "6",
  "CXXABI_1.3.11": "7",
  "CXXABI_1.3.12": "9",
  "CXXABI_1.3.13": "11",
};

/** The Debian package providing each shared library, and the minimum version a node needs. */
const LIBRARIES: Record<string, { pkg: string; min: (node: string) => string | undefined }> = {
  "libc.so.6": { pkg: "libc6", min: glibcMin },
  "libm.so.6": { pkg: "libc6", min: glibcMin },
  "libdl.so.2": { pkg: "libc6", min: glibcMin },
  "libpthread.so.0": { pkg: "libc6", min: glibcMin },
  "librt.so.1": { pkg: "libc6", min: glibcMin },
  "ld-linux-x86-64.so.2": { pkg: "libc6", min: glibcMin },
  "ld-linux-aarch64.so.1": { pkg: "libc6", min: glibcMin },
  "ld-linux-armhf.so.3": { pkg: "libc6", min: glibcMin },
  "libstdc++.so.6": {
    pkg: "libstdc++6",
    min(node) {
      if (node in LIBSTDCXX_NODES) return LIBSTDCXX_NODES[node];
      const glibcxx = /^GLIBCXX_3\.4\.(\d+)$/.exec(node);
      const cxxabi = /^CXXABI_1\.3\.(\d+)$/.exec(node);
      if ((glibcxx && Number(glibcxx[1]) < 21) || (cxxabi && Number(cxxabi[1]) < 9)) {
        return undefined;
      }
      if (
        /^CXXABI_(ARM|TM|FLOAT128)/.test(node) || node === "GLIBCXX_3.4" || node === "CXXABI_1.3"
      ) {
        return undefined;
      }
      throw new Error(`libstdc++ symbol version ${node} is newer than build/deb.ts knows.`);
    },
  },
  // libgcc-s1 and libatomic1 versions are GCC's; their nodes name the GCC
  // release (GCC_3.5 is ARM's EABI unwinder, from GCC 4.5).
  "libgcc_s.so.1": {
    pkg: "libgcc-s1",
    min: (node) =>
      node === "GCC_3.5" ? "4.5" : /^GCC_(\d+\.\d+(?:\.[1-9]\d*)?)(?:\.0)?$/.exec(node)?.[1],
  },
  "libatomic.so.1": {
    pkg: "libatomic1",
    min: (node) => ({ "LIBATOMIC_1.0": "4.8", "LIBATOMIC_1.1": "4.9", "LIBATOMIC_1.2": "6" })[node],
  },
};

function glibcMin(node: string): string | undefined {
  return /^GLIBC_(\d+\.\d+(?:\.\d+)?)$/.exec(node)?.[1];
}

/**
 * The `Depends:` of a binary: a package per NEEDED library, each with the
 * highest minimum version among the symbol versions the binary needs from it.
 * GNU readelf reads every ELF machine, so this works for the ARM binaries too.
 */
export async function debDepends(binary: string): Promise<string> {
  const dynamic = await run("readelf", ["-d", "-W", binary]);
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) =>
    m[1]
  );
  const versions = await run("readelf", ["-V", "-W", binary]);
  const needs = new Map<string, string[]>();
  let file = "";
  const section = versions.slice(versions.indexOf(".gnu.version_r"));
  for (const line of section.split("\n")) {
    const fileMatch = /File: (\S+)/.exec(line);
    if (fileMatch) file = fileMatch[1];
    const nameMatch = /Name: (\S+)/.exec(line);
    if (nameMatch && file) needs.set(file, [...(needs.get(file) ?? []), nameMatch[1]]);
  }
  const packages = new Map<string, string | undefined>();
  for (const library of needed) {
    const known = LIBRARIES[library];
    if (!known) {
      throw new Error(
        `${binary} needs ${library}, and build/deb.ts does not know its Debian package.`,
      );
    }
    let min = packages.get(known.pkg);
    for (const node of needs.get(library) ?? []) {
      const version = known.min(node);
      if (version !== undefined && (min === undefined || compareDotted(version, min) > 0)) {
        min = version;
      }
    }
    packages.set(known.pkg, min);
  }
  return [...packages.entries()].sort(([a], [b]) => a.localeCompare(b))
    .map(([pkg, min]) => min === undefined ? pkg : `${pkg} (>= ${min})`).join(", ");
}

// Maintainer scripts: exactly what `dh_installsystemd --no-start
// --no-stop-on-upgrade --no-restart-after-upgrade` (debhelper 13.11.4) writes
// for units with an [Install] section: fleetprov.service (a oneshot that other
// services may Require=) and fleetprov-rotate.timer. They are enabled for the
// next boot, never started, stopped or restarted by dpkg (a start would block
// apt for the whole provisioning; a stop or restart would take those services
// down with it).
const enableBlock = (unit: string) =>
  `# Automatically added by dh_installsystemd/13.11.4
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	# The following line should be removed in trixie or trixie+1
	deb-systemd-helper unmask '${unit}' >/dev/null || true

	# was-enabled defaults to true, so new installations run enable.
	if deb-systemd-helper --quiet was-enabled '${unit}'; then
		# Enables the unit on first installation, creates new
		# symlinks on upgrades if the unit file has changed.
		deb-systemd-helper enable '${unit}' >/dev/null || true
	else
		# Update the statefile to add new symlinks (if any), which need to be
		# cleaned up on purge. Also remove old symlinks.
		deb-systemd-helper update-state '${unit}' >/dev/null || true
	fi
fi
# End automatically added section
`;

const purgeBlock = (unit: string) =>
  `# Automatically added by dh_installsystemd/13.11.4
if [ "$1" = "purge" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper purge '${unit}' >/dev/null || true
	fi
fi
# End automatically added section
`;

const POSTINST = `#!/bin/sh
set -e
${ENABLED_UNITS.map(enableBlock).join("")}`;

// debhelper adds postrm snippets in the reverse order of the postinst's.
const POSTRM = `#!/bin/sh
set -e
# Automatically added by dh_installsystemd/13.11.4
if [ "$1" = remove ] && [ -d /run/systemd/system ] ; then
	systemctl --system daemon-reload >/dev/null || true
fi
# End automatically added section
${[...ENABLED_UNITS].reverse().map(purgeBlock).join("")}`;

/** Each lintian override with the reason it is right for this package. */
const LINTIAN_OVERRIDES =
  `# fleetprov is one Node.js single executable: the official Node.js runtime
# (which links OpenSSL, zlib, brotli, nghttp2, libuv, ICU, ... statically, as
# every official Node.js build does; lintian also names mbedtls for some
# strings) with the fleetprov program injected. It
# cannot use Debian's shared copies of those libraries; their licences are in
# /usr/share/doc/fleetprov/THIRD_PARTY_NOTICES.gz and the copyright file.
fleetprov: embedded-library *
# Node.js's official builds are compiled by the Node.js project, not with
# Debian's hardening flags (and not as PIE); the binary is theirs, stripped,
# plus the blob, and identical to the release download.
fleetprov: hardening-no-fortify-functions [usr/bin/fleetprov]
fleetprov: hardening-no-pie [usr/bin/fleetprov]
# fleetprov refuses claim credentials outside a 0700 directory, as the AWS IoT
# Device Client does: /etc/fleetprov holds the claim certificate and key.
fleetprov: non-standard-dir-perm 0700 != 0755 [etc/fleetprov/]
# The example config is 0640 because fleetprov expects its config files 0640
# and \`cp\` keeps the mode of the copy the administrator makes from it.
fleetprov: non-standard-file-perm 0640 != 0644 [etc/fleetprov/fleetprov.conf.example]
`;

/** DEP-5 short names of SPDX identifiers. */
const DEP5_NAMES: Record<string, string> = { MIT: "Expat", "BSD-3-Clause": "BSD-3-clause" };

/** Standalone licence paragraphs of the copyright file. */
const LICENSE_TEXTS: Record<string, string> = {
  "Apache-2.0": `On Debian systems, the complete text of the Apache License, Version 2.0 can
be found in /usr/share/common-licenses/Apache-2.0.`,
  Expat: `Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:
.
The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.
.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
THE SOFTWARE.`,
  ISC: `Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.
.
THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.`,
  "BSD-3-clause": `Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:
.
1. Redistributions of source code must retain the above copyright notice,
   this list of conditions and the following disclaimer.
2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.
3. Neither the name of the copyright holder nor the names of its contributors
   may be used to endorse or promote products derived from this software
   without specific prior written permission.
.
THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE
ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE
LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR
CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF
SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS
INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN
CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE)
ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE
POSSIBILITY OF SUCH DAMAGE.`,
  "0BSD": `Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted.
.
THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH
REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY
AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT,
INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING FROM
LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR
OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE OR
PERFORMANCE OF THIS SOFTWARE.`,
};

/** A DEP-5 licence expression from an SPDX one. */
function dep5License(spdx: string): string {
  return spdx.split(/(\s+(?:AND|OR)\s+)/).map((part) => {
    if (/^\s+AND\s+$/.test(part)) return " and ";
    if (/^\s+OR\s+$/.test(part)) return " or ";
    return DEP5_NAMES[part] ?? part;
  }).join("");
}

/** DEP-5 field continuation: every line indented, empty lines as " .". */
function field(lines: readonly string[]): string {
  return lines.map((line) => line === "" ? " ." : ` ${line}`).join("\n");
}

/** `/usr/share/doc/fleetprov/copyright` in Debian's machine-readable format. */
export function copyrightFile(
  packages: readonly BundledPackage[],
  options: { target: TargetId; runtime: RuntimeLicense; epoch: number },
): string {
  const year = new Date(options.epoch * 1000).getUTCFullYear();
  const used = new Set<string>(["Apache-2.0", "Expat"]);
  const paragraphs = [
    [
      "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
      "Upstream-Name: fleetprov",
      `Upstream-Contact: ${HOMEPAGE}/issues`,
      `Source: ${HOMEPAGE}`,
      "Comment: /usr/bin/fleetprov is one Node.js single executable: the official Node.js",
      ` runtime ${options.runtime.version} with the fleetprov program, which bundles the npm`,
      " packages listed below (pinned in deno.lock), injected into it. The complete licence",
      " texts of all of them are in /usr/share/doc/fleetprov/THIRD_PARTY_NOTICES.gz.",
    ].join("\n"),
    [
      "Files: *",
      `Copyright: ${year} fleetprov contributors`,
      "License: Apache-2.0",
    ].join("\n"),
    [
      `Files: node_modules/${TARGETS[options.target].runtime.packageName}/*`,
      "Copyright: Node.js contributors",
      " Joyent, Inc. and other Node contributors",
      "License: Expat",
      `Comment: Node.js ${options.runtime.version}. Its own code is MIT (Expat) licensed; it`,
      " also contains V8, OpenSSL, ICU, libuv, llhttp, nghttp2, zlib, brotli, c-ares and other",
      " components under their own licences, which its LICENSE file lists in full (in",
      " THIRD_PARTY_NOTICES.gz).",
    ].join("\n"),
  ];
  for (const p of packages) {
    const license = dep5License(p.license);
    for (const name of license.split(/ (?:and|or) /)) used.add(name);
    paragraphs.push([
      `Files: node_modules/.deno/${p.name.replace("/", "+")}@${p.version}/*`,
      `Copyright: ${p.copyright[0]}`,
      ...p.copyright.slice(1).map((line) => ` ${line}`),
      `License: ${license}`,
      `Comment: npm package ${p.name} ${p.version}${p.source ? `, ${p.source}` : ""}`,
    ].join("\n"));
  }
  for (const name of [...used].sort()) {
    const text = LICENSE_TEXTS[name];
    if (!text) throw new Error(`build/deb.ts has no licence text for ${name} (copyright file).`);
    paragraphs.push(`License: ${name}\n${field(text.split("\n").map((l) => l === "." ? "" : l))}`);
  }
  return paragraphs.join("\n\n") + "\n";
}

/** The Debian changelog of this version (gzipped into the package). */
export function changelog(version: string, epoch: number): string {
  const date = new Date(epoch * 1000).toUTCString().replace("GMT", "+0000");
  return `fleetprov (${version}) unstable; urgency=medium\n\n` +
    `  * fleetprov ${version}: ${HOMEPAGE}/releases/tag/v${version}\n\n` +
    ` -- ${MAINTAINER}  ${date}\n`;
}

/** A man page (section 1) holding the `--help` text. */
export function manPage(help: string, options: { version: string; epoch: number }): string {
  const date = new Date(options.epoch * 1000).toISOString().slice(0, 10);
  const escape = (line: string) =>
    line.replaceAll("\\", "\\e").replace(/^([.'])/, "\\&$1").replaceAll("-", "\\-");
  return [
    `.TH FLEETPROV 1 "${date}" "fleetprov ${options.version}" "User Commands"`,
    ".SH NAME",
    "fleetprov \\- AWS IoT Fleet Provisioning client",
    ".SH SYNOPSIS",
    ".B fleetprov",
    "[\\fIflags\\fR]",
    ".br",
    ".B fleetprov rotate",
    "[\\fIflags\\fR]",
    ".br",
    ".B fleetprov status",
    "[\\fIflags\\fR]",
    ".br",
    ".B fleetprov check",
    "[\\fIflags\\fR]",
    ".br",
    ".B fleetprov emulator",
    "[\\fIoptions\\fR]",
    ".SH DESCRIPTION",
    "fleetprov exchanges a claim certificate for the device's own certificate through AWS IoT",
    "Fleet Provisioning and writes the AWS IoT Device Client's runtime config. The systemd unit",
    ".I fleetprov.service",
    "runs it at boot with",
    ".IR /etc/fleetprov/fleetprov.conf .",
    ".SH OPTIONS",
    ".nf",
    ...help.trimEnd().split("\n").map(escape),
    ".fi",
    ".SH FILES",
    ".TP",
    ".I /etc/fleetprov/fleetprov.conf",
    "the configuration the systemd unit uses (see fleetprov.conf.example beside it)",
    ".SH SEE ALSO",
    `${HOMEPAGE}`,
    "",
  ].join("\n");
}

function md5(data: Uint8Array): string {
  return createHash("md5").update(data).digest("hex");
}

function gzip(text: string): Uint8Array {
  // Maximum compression, no name and no time stamp (gzip -9n).
  return gzipSync(Buffer.from(text, "utf8"), { level: 9 });
}

/**
 * Stages and builds `<outDir>/fleetprov_<version>_<arch>.deb` with dpkg-deb
 * (root-owned files, xz), and returns its path.
 */
export async function buildDeb(
  input: DebInput,
  options: { outDir: string; workDir: string },
): Promise<string> {
  const arch = DEB_ARCH[input.target];
  const root = join(options.workDir, `fleetprov_${arch}`);
  await Deno.remove(root, { recursive: true }).catch(() => {});
  const files = new Map<string, { data: Uint8Array; mode: number }>();
  const text = (s: string) => new TextEncoder().encode(s);
  files.set("usr/bin/fleetprov", { data: await Deno.readFile(input.binary), mode: 0o755 });
  for (const unit of UNITS) {
    files.set(`usr/lib/systemd/system/${unit}`, {
      data: await Deno.readFile(join(BUILD_DIR, "systemd", unit)),
      mode: 0o644,
    });
  }
  files.set("etc/fleetprov/fleetprov.conf.example", {
    data: await Deno.readFile(EXAMPLE_CONFIG),
    mode: 0o640,
  });
  const doc = "usr/share/doc/fleetprov";
  files.set(`${doc}/copyright`, {
    data: text(copyrightFile(input.packages, {
      target: input.target,
      runtime: input.runtime,
      epoch: input.epoch,
    })),
    mode: 0o644,
  });
  files.set(`${doc}/changelog.gz`, {
    data: gzip(changelog(input.version, input.epoch)),
    mode: 0o644,
  });
  files.set(`${doc}/THIRD_PARTY_NOTICES.gz`, { data: gzip(input.notices), mode: 0o644 });
  files.set("usr/share/man/man1/fleetprov.1.gz", {
    data: gzip(manPage(input.help, { version: input.version, epoch: input.epoch })),
    mode: 0o644,
  });
  files.set("usr/share/lintian/overrides/fleetprov", {
    data: text(LINTIAN_OVERRIDES),
    mode: 0o644,
  });

  const mtime = new Date(input.epoch * 1000);
  const dirs = new Set<string>();
  for (const [path, file] of files) {
    const full = join(root, path);
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
    await Deno.mkdir(join(full, ".."), { recursive: true });
    await Deno.writeFile(full, file.data);
    await Deno.chmod(full, file.mode);
    await Deno.utime(full, mtime, mtime);
  }
  for (const dir of [...dirs].sort().reverse()) {
    await Deno.chmod(join(root, dir), dir === "etc/fleetprov" ? 0o700 : 0o755);
    await Deno.utime(join(root, dir), mtime, mtime);
  }

  const control = join(root, "DEBIAN");
  await Deno.mkdir(control, { mode: 0o755 });
  await Deno.chmod(control, 0o755);
  const installedKb = [...files.values()].reduce(
    (sum, file) => sum + Math.ceil(file.data.length / 1024),
    dirs.size,
  );
  const controlText = [
    "Package: fleetprov",
    `Version: ${input.version}`,
    `Architecture: ${arch}`,
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${installedKb}`,
    `Depends: ${await debDepends(input.binary)}`,
    "Section: net",
    "Priority: optional",
    `Homepage: ${HOMEPAGE}`,
    "Description: AWS IoT Fleet Provisioning client in one file",
    " fleetprov exchanges a claim certificate for the device's own certificate",
    " through AWS IoT Fleet Provisioning (CreateKeysAndCertificate, or",
    " CreateCertificateFromCsr so the private key never leaves the board),",
    " registers the thing and writes the AWS IoT Device Client's runtime config.",
    " It is a drop-in for the Device Client's Fleet Provisioning feature: same",
    " config keys, flags and runtime file.",
    " .",
    " The systemd unit fleetprov.service is enabled and provisions at boot once",
    " /etc/fleetprov/fleetprov.conf exists; fleetprov-rotate.timer checks the",
    " certificate's age daily and rotates it when it is due. The binary is a",
    ` Node.js single executable (Node.js ${input.runtime.version} inside).`,
    "",
  ].join("\n");
  const controlFiles: [string, string, number][] = [
    ["control", controlText, 0o644],
    ["conffiles", "/etc/fleetprov/fleetprov.conf.example\n", 0o644],
    ["postinst", POSTINST, 0o755],
    ["postrm", POSTRM, 0o755],
    [
      "md5sums",
      [...files.entries()].filter(([path]) => !path.startsWith("etc/"))
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([path, file]) => `${md5(file.data)}  ${path}\n`).join(""),
      0o644,
    ],
  ];
  for (const [name, content, mode] of controlFiles) {
    await Deno.writeTextFile(join(control, name), content);
    await Deno.chmod(join(control, name), mode);
  }

  const debPath = join(options.outDir, `fleetprov_${input.version}_${arch}.deb`);
  await runChecked("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", root, debPath], {
    env: { SOURCE_DATE_EPOCH: String(input.epoch) },
    what: `Building ${debPath}`,
  });
  await Deno.remove(root, { recursive: true });
  return debPath;
}
