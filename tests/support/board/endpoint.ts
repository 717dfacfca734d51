// SPDX-License-Identifier: Apache-2.0
/**
 * The boards' endpoint: the x64 release binary's `fleetprov emulator` on the
 * host's loopback, which QEMU's user network shows the boards as 10.0.2.2.
 * Its server certificate also names {@linkcode ENDPOINT_NAME}, the name the
 * boards' /etc/hosts gives 10.0.2.2. Its `--verbose` lines say which client
 * id each certificate was issued to, so one emulator serves several boards
 * and each board's certificates are still counted apart.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DEFAULT_ROTATION_TEMPLATE_NAME } from "../../../src/emulator/defaults.ts";

/** The endpoint name in the boards' config (resolved by their /etc/hosts to 10.0.2.2). */
export const ENDPOINT_NAME = "emulator.board.test";
/** The provisioning template's name. */
export const BOARD_TEMPLATE_NAME = "BoardTemplate";

/**
 * The rotation template the boards' config names: the emulator's default one
 * (its hook lets a certificate rotate only its own thing; README "Rotation").
 */
export const BOARD_ROTATION_TEMPLATE_NAME = DEFAULT_ROTATION_TEMPLATE_NAME;

/**
 * The template: one thing per board, named from the MAC address the board
 * sends (`collect-system-information`), so the same image flashed on many
 * boards still makes one thing each.
 */
export const BOARD_TEMPLATE = {
  Parameters: {
    DeviceMACAddress: { Type: "String" },
    "AWS::IoT::Certificate::Id": { Type: "String" },
  },
  Resources: {
    certificate: {
      Type: "AWS::IoT::Certificate",
      Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "Active" },
    },
    policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "FPCertPolicy" } },
    thing: {
      Type: "AWS::IoT::Thing",
      Properties: { ThingName: { "Fn::Join": ["", ["board-", { Ref: "DeviceMACAddress" }]] } },
    },
  },
};

/** A certificate in the emulator's registry.json. */
export interface RegistryCertificate {
  certificateId: string;
  certificatePem: string;
  status: string;
  thingNames: string[];
  claim?: boolean;
}

/** A thing in the emulator's registry.json. */
export interface RegistryThing {
  thingName: string;
  principals: string[];
}

/** The thing name a board with this MAC address gets from {@linkcode BOARD_TEMPLATE}. */
export function thingNameOf(mac: string): string {
  return `board-${mac}`;
}

/** The client id fleetprov derives from a machine id (README: `client-id`). */
export function clientIdOf(machineId: string): string {
  return `fleetprov-${createHash("sha256").update(machineId).digest("hex").slice(0, 16)}`;
}

/** The x64 binary's emulator, running. */
export class BoardEndpoint {
  readonly stateDir: string;
  readonly port: number;
  readonly #process: Deno.ChildProcess;
  readonly #lines: string[] = [];
  readonly #listeners = new Set<(line: string) => void>();

  private constructor(process: Deno.ChildProcess, stateDir: string, port: number) {
    this.#process = process;
    this.stateDir = stateDir;
    this.port = port;
  }

  #onLine(line: string): void {
    this.#lines.push(line);
    for (const listener of [...this.#listeners]) listener(line);
  }

  /** Starts `binary emulator` in `stateDir` on a free port of the host's loopback. */
  static async start(binary: string, stateDir: string): Promise<BoardEndpoint> {
    await Deno.mkdir(stateDir, { recursive: true });
    const templateFile = join(stateDir, "..", "board-template.json");
    await Deno.writeTextFile(templateFile, JSON.stringify(BOARD_TEMPLATE, null, 2));
    const process = new Deno.Command(binary, {
      args: [
        "emulator",
        ...["--state-dir", stateDir, "--port", "0", "--host", "127.0.0.1"],
        ...["--template-file", templateFile, "--template-name", BOARD_TEMPLATE_NAME],
        ...["--server-name", ENDPOINT_NAME, "--verbose"],
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const early: string[] = [];
    const started: { endpoint?: BoardEndpoint } = {};
    collect(process.stderr, (line) => {
      if (started.endpoint) started.endpoint.#onLine(line);
      else early.push(line);
    });
    const port = await new Promise<number>((resolve, reject) => {
      collect(process.stdout, (line) => {
        const match = /^listening: .*:(\d+)$/.exec(line);
        if (match) resolve(Number(match[1]));
      }).then(() => reject(new Error(`The emulator exited before listening: ${early.join("\n")}`)));
    });
    const endpoint = new BoardEndpoint(process, stateDir, port);
    for (const line of early) endpoint.#onLine(line);
    started.endpoint = endpoint;
    return endpoint;
  }

  /** Every line the emulator logged so far. */
  get lines(): readonly string[] {
    return this.#lines;
  }

  /** Waits until the emulator logs a line matching `pattern` (from line `from` on). */
  waitForLine(
    pattern: RegExp,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<string> {
    const seen = this.#lines.slice(options.from ?? 0).find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    const timeoutMs = options.timeoutMs ?? 300_000;
    return new Promise((resolve, reject) => {
      const listener = (line: string) => {
        if (!pattern.test(line)) return;
        clearTimeout(timer);
        this.#listeners.delete(listener);
        resolve(line);
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(listener);
        reject(new Error(`The emulator never logged ${pattern}:\n${this.#lines.join("\n")}`));
      }, timeoutMs);
      this.#listeners.add(listener);
    });
  }

  /** Ids of the certificates issued to a client id (CreateKeysAndCertificate or from a CSR). */
  certificatesIssuedTo(clientId: string): string[] {
    const ids: string[] = [];
    for (const line of this.#lines) {
      const match = /issued certificate ([0-9a-f]{64}) \(PENDING_ACTIVATION\) to (\S+)$/.exec(line);
      if (match && match[2] === clientId) ids.push(match[1]);
    }
    return ids;
  }

  /** The registry as the emulator last wrote it (registry.json, written within 100 ms of a change). */
  async registry(): Promise<
    { certificates: Record<string, RegistryCertificate>; things: Record<string, RegistryThing> }
  > {
    return JSON.parse(await Deno.readTextFile(join(this.stateDir, "registry.json")));
  }

  /** The claim files and CA the boards get in /etc/fleetprov. */
  claimFiles(): { cert: string; key: string; rootCa: string } {
    const claim = join(this.stateDir, "claim");
    return {
      cert: join(claim, "claim-certificate.pem.crt"),
      key: join(claim, "claim-private.pem.key"),
      rootCa: join(claim, "root-ca.pem"),
    };
  }

  /** Stops the emulator (SIGTERM: it writes the registry and exits 0). */
  async stop(): Promise<void> {
    try {
      this.#process.kill("SIGTERM");
    } catch { /* gone */ }
    await this.#process.status;
  }
}

/** Reads `stream` line by line into `sink`; resolves at its end. */
async function collect(
  stream: ReadableStream<Uint8Array>,
  sink: (line: string) => void,
): Promise<void> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    for (const line of parts) sink(line);
  }
  if (rest) sink(rest);
}
