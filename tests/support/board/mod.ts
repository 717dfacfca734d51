// SPDX-License-Identifier: Apache-2.0
/**
 * Whole emulated ARM boards for tests/board_test.ts: cached Debian images
 * (`image.ts`, with `binfmt.ts` for debootstrap's second stage), a running
 * board and its serial lines (`machine.ts`), the factory install of the .deb
 * (`factory.ts`), the host's emulator as the boards' endpoint
 * (`endpoint.ts`), and what a board says about itself (`guest.ts`).
 *
 * @module
 */
import { binfmtConf } from "./binfmt.ts";
import { type BoardArch, IMAGE_TOOLS } from "./image.ts";

export * from "./image.ts";
export * from "./machine.ts";
export * from "./factory.ts";
export * from "./endpoint.ts";
export * from "./guest.ts";

/** Tools a board run needs beyond the image build's, with their Debian packages. */
const BOARD_TOOLS = [
  ["/usr/sbin/e2fsck", "e2fsprogs"],
  ["/usr/sbin/debugfs", "e2fsprogs"],
  ["/usr/bin/tar", "tar"],
] as const;

/** Why boards of `arch` cannot run here (not root, a tool missing), or undefined when they can. */
export function unavailableReason(arch: BoardArch): string | undefined {
  if (Deno.uid() !== 0) return "building and booting a board image needs root";
  const tools = [
    [arch.qemuSystem, "qemu-system-arm"],
    [
      binfmtConf(arch.qemuUser) ?? `/usr/lib/binfmt.d/qemu-${arch.qemuUser}.conf`,
      "qemu-user-static",
    ],
    ...IMAGE_TOOLS,
    ...BOARD_TOOLS,
  ];
  const missing = tools.filter(([path]) => !existsSync(path)).map(([path, pkg]) =>
    `${path} (${pkg})`
  );
  return missing.length > 0 ? `missing ${missing.join(", ")}` : undefined;
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
