// SPDX-License-Identifier: Apache-2.0
/**
 * The licence: LICENSE is the Apache License 2.0 in full, and every
 * TypeScript file and script in the repository starts with its SPDX header.
 *
 * @module
 */
import { assert, assertEquals } from "./support/assert.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ROOT } from "./support/mod.ts";

/** MD5 of the Apache License 2.0 text (also /usr/share/common-licenses/Apache-2.0, Yocto's copy). */
const APACHE_2_MD5 = "3b83ef96387f14655fc854ddc3c6bd57";
const HEADER = "SPDX-License-Identifier: Apache-2.0";

Deno.test("licence: LICENSE is the full Apache-2.0 text", async () => {
  const text = await Deno.readFile(join(ROOT, "LICENSE"));
  assertEquals(createHash("md5").update(text).digest("hex"), APACHE_2_MD5);
});

Deno.test("licence: every .ts file and script starts with the SPDX header", async () => {
  const listed = await new Deno.Command("git", {
    args: ["ls-files", "--cached", "--others", "--exclude-standard"],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  assert(listed.success, "git ls-files failed");
  const files = new TextDecoder().decode(listed.stdout).split("\n").filter((f) =>
    f.endsWith(".ts") || f === ".ci/run" || f.endsWith("/run-ptest")
  );
  assert(files.length > 50, `only ${files.length} files found`);
  const missing = [];
  for (const file of files) {
    const lines = (await Deno.readTextFile(join(ROOT, file))).split("\n", 2);
    const first = lines[0].startsWith("#!") ? lines[1] : lines[0];
    const want = file.endsWith(".ts") ? `// ${HEADER}` : `# ${HEADER}`;
    if (first !== want) missing.push(file);
  }
  assertEquals(missing, [], `add "${HEADER}" as the first line (after a #! line)`);
});
