// SPDX-License-Identifier: Apache-2.0
/**
 * PKCS#11 secure elements through OpenSSL's `pkcs11` engine (libp11): the TLS
 * private key stays in the token; Node's TLS signs with it by engine id and a
 * `pkcs11:` URI. The PKCS#11 module is passed to the engine through
 * `PKCS11_MODULE_PATH`. Runs on Node.js (the release binaries); Deno's TLS has
 * no engine support.
 *
 * @module
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import tls from "node:tls";
import type { SecureElementSettings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";

/** Where Debian, Yocto and Buildroot install libp11's engine. */
export const ENGINE_CANDIDATES: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so",
  "/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so",
  "/usr/lib/arm-linux-gnueabihf/engines-3/pkcs11.so",
  "/usr/lib/engines-3/pkcs11.so",
  "/usr/lib64/engines-3/pkcs11.so",
  "/usr/lib/x86_64-linux-gnu/engines-1.1/pkcs11.so",
  "/usr/lib/aarch64-linux-gnu/engines-1.1/pkcs11.so",
  "/usr/lib/arm-linux-gnueabihf/engines-1.1/pkcs11.so",
  "/usr/lib/engines-1.1/pkcs11.so",
];

/**
 * Builds the `pkcs11:` URI of the key (RFC 7512). The PIN is not in it: libp11
 * prints the URI on stderr when the key cannot be loaded, so the PIN is read
 * from `pinFile` (`pin-source`) instead.
 */
export function keyUri(settings: SecureElementSettings, pinFile?: string): string {
  const path: string[] = [];
  if (settings.tokenLabel) path.push(`token=${encodeURIComponent(settings.tokenLabel)}`);
  if (settings.slotId !== undefined) path.push(`slot-id=${settings.slotId}`);
  if (settings.keyLabel) path.push(`object=${encodeURIComponent(settings.keyLabel)}`);
  path.push("type=private");
  return `pkcs11:${path.join(";")}${pinFile === undefined ? "" : `?pin-source=file:${pinFile}`}`;
}

/**
 * Writes the PIN to a 0600 file in a fresh 0700 directory under the temporary
 * directory (a tmpfs on most boards), removed when the process exits.
 */
function writePinFile(pin: string): string {
  const dir = mkdtempSync(join(tmpdir(), "fleetprov-pin-"));
  chmodSync(dir, 0o700);
  const path = join(dir, "pin");
  writeFileSync(path, pin, { mode: 0o600 });
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return path;
}

/** Finds the pkcs11 engine: the configured path, else the usual install locations. */
export function findEngine(configured?: string): string {
  if (configured) return configured;
  const found = ENGINE_CANDIDATES.find((path) => existsSync(path));
  if (!found) {
    throw new FleetprovError(
      `OpenSSL's pkcs11 engine was not found (looked in ${
        ENGINE_CANDIDATES.slice(0, 4).join(", ")
      }, ...); install libp11 (Debian: libengine-pkcs11-openssl) or set "secure-element.openssl-engine".`,
      ExitCode.Config,
    );
  }
  return found;
}

/** A TLS context whose private key is the token's, loaded once per process. */
export interface TokenContext {
  /** Pass as `secureContext` to `tls.connect`. */
  secureContext: tls.SecureContext;
  /** Switches the context's certificate (the claim one, then the new one: same key). */
  useCertificate(certificatePem: string): void;
}

/**
 * Loads the token key once into a TLS context with `certificatePem` and the
 * root CAs, so a wrong PIN, a missing label or a broken library is a clear
 * configuration error before any connection. libp11 initialises only once per
 * process, so the same context serves both connections.
 */
export function openTokenContext(
  settings: SecureElementSettings,
  options: { certificatePem: string; caPem?: string },
): TokenContext {
  const engine = findEngine(settings.opensslEngine);
  if (settings.pkcs11Lib) process.env.PKCS11_MODULE_PATH = settings.pkcs11Lib;
  const pinFile = settings.pin === undefined ? undefined : writePinFile(settings.pin);
  let secureContext: tls.SecureContext;
  try {
    secureContext = tls.createSecureContext({
      cert: options.certificatePem,
      ca: options.caPem,
      privateKeyEngine: engine,
      privateKeyIdentifier: keyUri(settings, pinFile),
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    if (code === "ERR_CRYPTO_CUSTOM_ENGINE_NOT_SUPPORTED") {
      throw new FleetprovError(
        "This runtime's TLS cannot use OpenSSL engines (Deno); run the fleetprov release binary (Node.js) for secure elements.",
        ExitCode.Config,
      );
    }
    throw new FleetprovError(
      `The secure element did not give the private key labelled ${
        JSON.stringify(settings.keyLabel ?? "")
      }${
        settings.tokenLabel ? ` in token ${JSON.stringify(settings.tokenLabel)}` : ""
      } through ${engine} with module ${settings.pkcs11Lib}: check secure-element-pin, secure-element-key-label, secure-element-token-label/slot-id and pkcs11-lib (${
        code || "load failed"
      }).`,
      ExitCode.Config,
    );
  }
  return {
    secureContext,
    useCertificate(certificatePem) {
      // Node's own createSecureContext sets the certificate the same way.
      (secureContext.context as { setCert(pem: string): void }).setCert(certificatePem);
    },
  };
}
