/**
 * PKCS#11 secure elements through OpenSSL's `pkcs11` engine (libp11): the TLS
 * private key stays in the token; Node's TLS signs with it by engine id and a
 * `pkcs11:` URI. The PKCS#11 module is passed to the engine through
 * `PKCS11_MODULE_PATH`. Runs on Node.js (the release binaries); Deno's TLS has
 * no engine support.
 *
 * @module
 */
import { existsSync } from "node:fs";
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

/** TLS options that make Node use the token's key. */
export interface EngineKey {
  privateKeyEngine: string;
  privateKeyIdentifier: string;
}

/** Builds the `pkcs11:` URI of the key (RFC 7512); it holds the PIN, so it is never logged. */
export function keyUri(settings: SecureElementSettings): string {
  const path: string[] = [];
  if (settings.tokenLabel) path.push(`token=${encodeURIComponent(settings.tokenLabel)}`);
  if (settings.slotId !== undefined) path.push(`slot-id=${settings.slotId}`);
  if (settings.keyLabel) path.push(`object=${encodeURIComponent(settings.keyLabel)}`);
  path.push("type=private");
  const query = settings.pin === undefined ? "" : `?pin-value=${encodeURIComponent(settings.pin)}`;
  return `pkcs11:${path.join(";")}${query}`;
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

/**
 * Loads the token key once, so a wrong PIN, a missing label or a broken
 * library is a clear configuration error before any connection.
 */
export function loadEngineKey(settings: SecureElementSettings): EngineKey {
  const engine = findEngine(settings.opensslEngine);
  if (settings.pkcs11Lib) process.env.PKCS11_MODULE_PATH = settings.pkcs11Lib;
  const key = { privateKeyEngine: engine, privateKeyIdentifier: keyUri(settings) };
  try {
    tls.createSecureContext(key);
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
  return key;
}
