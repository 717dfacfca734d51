// SPDX-License-Identifier: Apache-2.0
/**
 * What the device can say about itself: the parameters
 * `collect-system-information` adds, and a stable per-machine client id for
 * the claim connection when no thing name or client id is configured.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";

/** The first non-internal IPv4 interface: its address and MAC. */
export function primaryInterface(): { address: string; mac: string } | undefined {
  const all = networkInterfaces();
  for (const name of Object.keys(all).sort()) {
    for (const info of all[name] ?? []) {
      if (info.family === "IPv4" && !info.internal) return { address: info.address, mac: info.mac };
    }
  }
  return undefined;
}

/** The names of the parameters `collect-system-information` adds (when the board has them). */
export const SYSTEM_PARAMETER_NAMES = [
  "DeviceIPAddress",
  "DeviceMACAddress",
  "ProvisioningCertSerialNumber",
] as const;

/**
 * The parameters `fleet-provisioning.collect-system-information` adds:
 * DeviceIPAddress and DeviceMACAddress (first non-internal IPv4 interface)
 * and ProvisioningCertSerialNumber (the claim certificate's serial, hex).
 * Returns what could be collected and a note for each item that could not.
 */
export async function collectSystemInformation(
  claimCertificatePem: string | undefined,
): Promise<{ parameters: Record<string, string>; notes: string[] }> {
  const parameters: Record<string, string> = {};
  const notes: string[] = [];
  const iface = primaryInterface();
  if (iface) {
    parameters.DeviceIPAddress = iface.address;
    parameters.DeviceMACAddress = iface.mac;
  } else {
    notes.push(
      "collect-system-information: no non-loopback IPv4 interface, so DeviceIPAddress and DeviceMACAddress are not sent.",
    );
  }
  if (claimCertificatePem !== undefined) {
    const { X509Certificate } = await import("node:crypto");
    try {
      parameters.ProvisioningCertSerialNumber = new X509Certificate(claimCertificatePem)
        .serialNumber;
    } catch {
      notes.push(
        "collect-system-information: the claim certificate cannot be parsed, so ProvisioningCertSerialNumber is not sent.",
      );
    }
  }
  return { parameters, notes };
}

/** Files holding the machine id, in order of preference. */
export const MACHINE_ID_FILES = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

/**
 * A client id unique to this machine and stable across runs:
 * `fleetprov-<first 16 hex digits of sha256(machine id)>`, the machine id
 * coming from `/etc/machine-id` (hashed, since the raw id should not leave
 * the machine); without one, from the host name and first MAC address.
 */
export async function machineClientId(
  files: readonly string[] = MACHINE_ID_FILES,
): Promise<string> {
  // node:crypto only here: a provisioned device connects as its thing and needs none of this.
  const { createHash } = await import("node:crypto");
  const sha256Hex = (text: string) => createHash("sha256").update(text).digest("hex");
  for (const file of files) {
    try {
      const id = readFileSync(file, "utf8").trim();
      if (id !== "") return `fleetprov-${sha256Hex(id).slice(0, 16)}`;
    } catch { /* try the next source */ }
  }
  const mac = primaryInterface()?.mac ?? "";
  return `fleetprov-${sha256Hex(`host:${hostname()}|mac:${mac}`).slice(0, 16)}`;
}
