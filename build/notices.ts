// SPDX-License-Identifier: Apache-2.0
/**
 * Third-party notices: which npm packages esbuild put into the bundle (from
 * its metafile), checked against deno.lock, each with its version, licence
 * and licence text, plus the Node.js runtime's own LICENSE. Written to
 * dist/THIRD_PARTY_NOTICES, embedded into each binary (`fleetprov
 * --third-party-notices`), shipped in the .deb and the Yocto layer.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { deflateRawSync } from "node:zlib";
import { dirname, join } from "node:path";

/** An npm package bundled into the binary. */
export interface BundledPackage {
  name: string;
  version: string;
  /** SPDX expression from its package.json. */
  license: string;
  /** Its repository or home page, when package.json names one. */
  source?: string;
  /** Copyright lines from its licence files, else its package.json author. */
  copyright: string[];
  /** Its licence files, in name order: [file name, text]. */
  licenseFiles: [string, string][];
}

/** The Node.js runtime of one or more targets. */
export interface RuntimeLicense {
  version: string;
  /** Target names, e.g. `linux-x64`. */
  targets: string[];
  /** Its LICENSE file, or undefined when the runtime came without one. */
  text?: string;
}

const LICENSE_FILE = /^(licen[cs]e|copying|notice)([.-].*)?$/i;

/** The package folder of a bundled input path, or undefined for our own sources. */
function packageDir(input: string): string | undefined {
  const at = input.lastIndexOf("node_modules/");
  if (at < 0) return undefined;
  const parts = input.slice(at + "node_modules/".length).split("/");
  const nameParts = parts[0].startsWith("@") ? 2 : 1;
  if (parts.length <= nameParts) return undefined;
  return input.slice(0, at) + "node_modules/" + parts.slice(0, nameParts).join("/");
}

function sourceOf(pkg: Record<string, unknown>): string | undefined {
  const repository = pkg.repository;
  const url = typeof repository === "string"
    ? repository
    : (repository as { url?: string } | undefined)?.url;
  if (url) {
    return url.replace(/^git\+/, "").replace(/^git:\/\//, "https://").replace(/\.git$/, "")
      .replace(/^github:/, "https://github.com/");
  }
  return typeof pkg.homepage === "string" ? pkg.homepage : undefined;
}

function licenseOf(pkg: Record<string, unknown>, where: string): string {
  if (typeof pkg.license === "string" && pkg.license !== "") return pkg.license;
  const legacy = pkg.licenses;
  if (Array.isArray(legacy) && legacy.length > 0) {
    return legacy.map((l) => (l as { type?: string }).type ?? String(l)).join(" OR ");
  }
  throw new Error(`${where} names no licence: the notices cannot be written.`);
}

/** The distinct `Copyright ...` lines of licence texts, else package.json's author. */
function copyrightLines(
  files: readonly [string, string][],
  pkg: Record<string, unknown>,
): string[] | undefined {
  const lines = new Set<string>();
  for (const [, text] of files) {
    for (const line of text.split("\n")) {
      const match = /^\s*(?:copyright\b|\(c\)|©)\s*(?:\(c\)|©)?\s*(.+?)\s*$/i.exec(line);
      if (match && /\d{4}|[A-Za-z]{3}/.test(match[1]) && !/holder|notice/i.test(match[1])) {
        lines.add(match[1].replace(/^(?:copyright\s*)?(?:\(c\)\s*)?/i, ""));
      }
    }
  }
  if (lines.size > 0) return [...lines];
  const author = pkg.author;
  const name = typeof author === "string" ? author : (author as { name?: string })?.name;
  return name ? [name] : undefined;
}

/**
 * The npm packages among esbuild's `inputs` (paths relative to `root`), with
 * their licences. Every package must be pinned in deno.lock and carry a
 * licence file; anything else stops the build.
 */
export async function bundledPackages(
  root: string,
  inputs: readonly string[],
): Promise<BundledPackage[]> {
  const lock = JSON.parse(await Deno.readTextFile(join(root, "deno.lock")));
  const locked = new Set(Object.keys(lock.npm ?? {}));
  const dirs = new Set<string>();
  for (const input of inputs) {
    const dir = packageDir(input);
    if (dir) dirs.add(dir);
  }
  const packages: BundledPackage[] = [];
  for (const dir of dirs) {
    const manifest = join(root, dir, "package.json");
    const pkg = JSON.parse(await Deno.readTextFile(manifest));
    const name = String(pkg.name);
    const version = String(pkg.version);
    if (!locked.has(`${name}@${version}`)) {
      throw new Error(
        `${name}@${version} is bundled (${dir}) but not pinned in deno.lock: run deno install.`,
      );
    }
    const licenseFiles: [string, string][] = [];
    for await (const entry of Deno.readDir(join(root, dir))) {
      if (entry.isFile && LICENSE_FILE.test(entry.name)) {
        licenseFiles.push([entry.name, await Deno.readTextFile(join(root, dir, entry.name))]);
      }
    }
    if (licenseFiles.length === 0) {
      throw new Error(
        `${name}@${version} (${dir}) has no LICENSE file, and the notices must carry its ` +
          "licence text.",
      );
    }
    licenseFiles.sort(([a], [b]) => a.localeCompare(b));
    packages.push({
      name,
      version,
      license: licenseOf(pkg, manifest),
      source: sourceOf(pkg),
      copyright: copyrightLines(licenseFiles, pkg) ?? [`the ${name} authors`],
      licenseFiles,
    });
  }
  // A package may be bundled twice from one folder layout; keep one of each version.
  const unique = new Map(packages.map((p) => [`${p.name}@${p.version}`, p]));
  return [...unique.values()].sort((a, b) =>
    a.name.localeCompare(b.name) || a.version.localeCompare(b.version, "en", { numeric: true })
  );
}

/**
 * The LICENSE of a Node.js runtime binary: the npm package's (`bin/node` →
 * `LICENSE`), or the one beside an official tarball's `bin/node`.
 */
export async function runtimeLicenseText(runtimePath: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(join(dirname(runtimePath), "..", "LICENSE"));
  } catch {
    return undefined;
  }
}

const RULE = "=".repeat(78);
const THIN = "-".repeat(78);

/**
 * The THIRD_PARTY_NOTICES text for `packages` and `runtimes`. With
 * `withTargets` it names the targets of each runtime (dist/'s file); the
 * notices embedded into a bundle do not, so a bundle is the same whichever
 * targets one build makes.
 */
export function noticesText(
  packages: readonly BundledPackage[],
  options: { version: string; runtimes: readonly RuntimeLicense[]; withTargets?: boolean },
): string {
  const targetsOf = (r: RuntimeLicense) => options.withTargets ? r.targets : [];
  const targets = options.runtimes.flatMap(targetsOf);
  const width = Math.max(...packages.map((p) => `${p.name} ${p.version}`.length), 20) + 2;
  const lines = [
    "THIRD-PARTY SOFTWARE NOTICES",
    "",
    `fleetprov ${options.version}${targets.length > 0 ? ` (${targets.join(", ")})` : ""}`,
    "",
    "fleetprov is licensed under the Apache License, Version 2.0 (the LICENSE file).",
    "Each fleetprov binary is a Node.js runtime with fleetprov's program bundled into it;",
    "that program includes the npm packages below. Their licences and notices follow.",
    "",
    "Node.js runtime:",
    ...options.runtimes.map((r) =>
      `  ${`Node.js ${r.version}`.padEnd(width)}MIT and others (below)   ${targetsOf(r).join(", ")}`
        .trimEnd()
    ),
    "",
    `npm packages bundled into the program (${packages.length}, pinned in deno.lock):`,
    ...packages.map((p) => `  ${`${p.name} ${p.version}`.padEnd(width)}${p.license}`),
    "",
  ];
  for (const runtime of options.runtimes) {
    lines.push(
      RULE,
      `Node.js ${runtime.version}${
        targetsOf(runtime).length > 0 ? ` (${targetsOf(runtime).join(", ")})` : ""
      }`,
      "https://nodejs.org/",
      THIN,
      runtime.text?.trimEnd() ??
        `This runtime came without its LICENSE file; Node.js ${runtime.version}'s is at ` +
          `https://github.com/nodejs/node/blob/v${runtime.version}/LICENSE`,
      "",
    );
  }
  for (const p of packages) {
    for (const [file, text] of p.licenseFiles) {
      lines.push(
        RULE,
        `${p.name} ${p.version} (${p.license})${p.licenseFiles.length > 1 ? `: ${file}` : ""}`,
        ...(p.source ? [p.source] : []),
        THIN,
        text.replaceAll("\r\n", "\n").trimEnd(),
        "",
      );
    }
  }
  return lines.join("\n");
}

/** `text` as embedded into a bundle: raw deflate, base64. */
export function packNotices(text: string): string {
  return Buffer.from(deflateRawSync(Buffer.from(text, "utf8"), { level: 9 })).toString("base64");
}

/** The distinct SPDX licence identifiers of `packages` (expressions split on AND/OR). */
export function licenseIds(packages: readonly BundledPackage[]): string[] {
  const ids = new Set<string>();
  for (const p of packages) {
    for (const id of p.license.replace(/[()]/g, " ").split(/\s+(?:AND|OR)\s+|\s+/)) {
      if (id) ids.add(id);
    }
  }
  return [...ids].sort();
}
