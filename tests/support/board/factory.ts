// SPDX-License-Identifier: Apache-2.0
/**
 * The factory step of a board: the release's `.deb` installed with
 * `apt install ./fleetprov_*.deb` on the running board (its own apt and
 * dpkg, the package's maintainer scripts under its own systemd), and
 * /etc/fleetprov filled as the README tells a user: the example config
 * copied to fleetprov.conf and edited (endpoint, template, parameters), the
 * claim certificate, key and root CA beside it. The files come in on a
 * read-only second disk, as on a USB stick.
 *
 * The result is a qcow2 overlay of the cached image: every board of the run
 * boots an overlay of it, so the install is paid once per run.
 *
 * @module
 */
import { basename, join } from "node:path";
import type { BoardEndpoint } from "./endpoint.ts";
import { BOARD_ROTATION_TEMPLATE_NAME, BOARD_TEMPLATE_NAME, ENDPOINT_NAME } from "./endpoint.ts";
import { type BoardStatusRun, STATE_DIR, statusOn } from "./guest.ts";
import type { BoardImage } from "./image.ts";
import { Board, mediaImage, overlay } from "./machine.ts";

/** What the factory step found on the board. */
export interface Installed {
  /** The factory image (a qcow2 overlay of the cached image). */
  disk: string;
  /** `fleetprov --version` on the board. */
  version: string;
  /** `uname -r` and `systemctl --version`'s first line on the board. */
  kernel: string;
  systemd: string;
  /** apt's output. */
  apt: string;
  /** `fleetprov status --output json` on the installed board, before any provisioning. */
  statusBefore: BoardStatusRun;
  /** Whether the state directory existed after it (status writes nothing). */
  stateDirAfterStatus: boolean;
  /** Seconds the factory boot took, install and poweroff included. */
  seconds: number;
}

/**
 * The config a user writes from the example (README "Debian packages": copy
 * the example, then edit it): the endpoint and port, the template, and
 * `collect-system-information` so that every board of one image sends its
 * own MAC address, and the rotation template (README "Rotation": rotating
 * needs it; the emulator's default one). The example has no `thing-name` (it would be every board's
 * client id; fleetprov's default is unique per machine), and the edit adds none.
 */
export function editedConfig(example: string, port: number): string {
  const config = JSON.parse(example);
  if ("thing-name" in config) {
    throw new Error("The example config names a thing: every board's client id.");
  }
  config.endpoint = ENDPOINT_NAME;
  config.port = port;
  config["fleet-provisioning"] = {
    ...config["fleet-provisioning"],
    "template-name": BOARD_TEMPLATE_NAME,
    "template-parameters": "{}",
    "collect-system-information": true,
    "rotation-template-name": BOARD_ROTATION_TEMPLATE_NAME,
  };
  return JSON.stringify(config, null, 2) + "\n";
}

/** The script the factory station runs on the board. */
function factoryScript(deb: string): string {
  return [
    "set -eu",
    "cd /mnt",
    // The image lacks what the .deb depends on beyond minbase: apt must bring it.
    'if dpkg -s libatomic1 >/dev/null 2>&1; then echo "libatomic1 is in the image" >&2; exit 1; fi',
    // README "Debian packages".
    `apt install -y ./${deb}`,
    "cp /etc/fleetprov/fleetprov.conf.example /etc/fleetprov/fleetprov.conf",
    "cat fleetprov.conf > /etc/fleetprov/fleetprov.conf",
    // README "systemd": claim certificate, key and root CA in the same 0700 directory.
    "install -m 0644 claim-certificate.pem.crt /etc/fleetprov/claim-certificate.pem.crt",
    "install -m 0600 claim-private.pem.key /etc/fleetprov/claim-private.pem.key",
    "install -m 0644 root-ca.pem /etc/fleetprov/root-ca.pem",
    // The factory network's name for the endpoint (the host, 10.0.2.2 on QEMU's user network).
    `echo "10.0.2.2 ${ENDPOINT_NAME}" >> /etc/hosts`,
    "",
  ].join("\n");
}

/**
 * Installs `deb` on a board booted from an overlay of `image`, configured
 * for `endpoint`; powers it off cleanly. `work` is the run's directory.
 */
export async function factoryInstall(
  image: BoardImage,
  options: { deb: string; example: string; endpoint: BoardEndpoint; work: string },
): Promise<Installed> {
  const { deb, endpoint, work } = options;
  const media = join(work, "factory-media");
  await Deno.mkdir(media, { recursive: true });
  await Deno.copyFile(deb, join(media, basename(deb)));
  const claim = endpoint.claimFiles();
  await Deno.copyFile(claim.cert, join(media, "claim-certificate.pem.crt"));
  await Deno.copyFile(claim.key, join(media, "claim-private.pem.key"));
  await Deno.copyFile(claim.rootCa, join(media, "root-ca.pem"));
  await Deno.writeTextFile(
    join(media, "fleetprov.conf"),
    editedConfig(options.example, endpoint.port),
  );
  await Deno.writeTextFile(join(media, "factory.sh"), factoryScript(basename(deb)));
  const disk = await overlay(image.disk, join(work, "factory.qcow2"));
  const board = Board.boot(image, {
    disk,
    media: await mediaImage(media, join(work, "factory-media.img")),
    mac: "52:54:00:00:00:01",
    consoleLog: join(work, "factory.console.log"),
  });
  try {
    await board.login();
    const apt = await board.check(
      "mount -o ro /dev/vdb /mnt && sh /mnt/factory.sh && umount /mnt",
      {
        timeoutMs: 600_000,
      },
    );
    const version = (await board.check("fleetprov --version")).trim();
    const kernel = (await board.check("uname -r")).trim();
    const systemd = (await board.check("systemctl --version")).split("\n")[0].trim();
    const statusBefore = await statusOn(board);
    const stateDirAfterStatus = (await board.sh(`test -e ${STATE_DIR}`)).code === 0;
    await board.poweroff();
    return {
      disk,
      version,
      kernel,
      systemd,
      apt,
      statusBefore,
      stateDirAfterStatus,
      seconds: board.elapsed(),
    };
  } catch (error) {
    await board.kill();
    throw error;
  }
}
