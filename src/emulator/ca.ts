// SPDX-License-Identifier: Apache-2.0
/**
 * The emulator's certificate authority: created once in the state directory
 * and reused; its own key and the server and claim certificates are EC P-256;
 * it certifies device keys of any type (RSA or EC: CreateKeysAndCertificate,
 * CSRs).
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isIP } from "node:net";
import { Buffer } from "node:buffer";
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  sign,
  webcrypto,
  X509Certificate,
} from "node:crypto";
import { generateKeyPair, signingAlgorithm, x509 } from "../pki/mod.ts";
import { ensureDirectory, writeFileAtomic } from "../secure_files/mod.ts";
import {
  CLIENT_EXTENSIONS,
  ECDSA_WITH_SHA256,
  pem,
  positiveInteger,
  sequence,
  time,
  tlv,
  VERSION_3,
} from "./der.ts";

const EC_P256 = signingAlgorithm("ec-p256");
const DEVICE_SUBJECT_DER = new Uint8Array(new x509.Name("CN=AWS IoT Certificate").toArrayBuffer());
const DAY_MS = 86_400_000;

/** What the CA can issue. */
export interface IssueOptions {
  /** Subject, e.g. `CN=AWS IoT Certificate`. */
  subject: string;
  /** Server certificate: adds SAN localhost/127.0.0.1/::1 and serverAuth. */
  server?: boolean;
  /** More names (DNS names or IP addresses) in a server certificate's SAN. */
  serverNames?: readonly string[];
  /** Validity in days (default 20 years for devices). */
  days?: number;
}

/** The certificate authority. */
export class CertificateAuthority {
  /** The CA certificate (PEM). */
  readonly certPem: string;
  /** The CA certificate, parsed by node:crypto (for verification). */
  readonly certificate: X509Certificate;
  readonly #cert: x509.X509Certificate;
  readonly #key: CryptoKey;
  readonly #keyObject: KeyObject;
  readonly #issuerDer: Uint8Array;
  readonly #verified = new Map<string, boolean>();

  private constructor(certPem: string, key: CryptoKey, keyPem: string) {
    this.certPem = certPem;
    this.certificate = new X509Certificate(certPem);
    this.#cert = new x509.X509Certificate(certPem);
    this.#key = key;
    this.#keyObject = createPrivateKey(keyPem);
    this.#issuerDer = new Uint8Array(this.#cert.subjectName.toArrayBuffer());
  }

  /**
   * Loads the CA from `dir` (ca-cert.pem 0644, ca-key.pem 0600) or creates it
   * there (dir 0700) on first use.
   */
  static async loadOrCreate(dir: string): Promise<CertificateAuthority> {
    ensureDirectory(dir, 0o700);
    const certPath = join(dir, "ca-cert.pem");
    const keyPath = join(dir, "ca-key.pem");
    if (existsSync(certPath) && existsSync(keyPath)) {
      const certPem = readFileSync(certPath, "utf8");
      const keyPem = readFileSync(keyPath, "utf8");
      return new CertificateAuthority(certPem, await importPrivateKey(keyPem), keyPem);
    }
    const pair = await generateKeyPair("ec-p256");
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: "CN=fleetprov emulator CA, O=fleetprov",
      notBefore: new Date(Date.now() - DAY_MS),
      notAfter: new Date(Date.now() + 30 * 365 * DAY_MS),
      signingAlgorithm: EC_P256,
      keys: pair.keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(pair.keys.publicKey),
      ],
    });
    writeFileAtomic(keyPath, pair.privateKeyPem, { mode: 0o600 });
    writeFileAtomic(certPath, cert.toString("pem") + "\n", { mode: 0o644 });
    return new CertificateAuthority(
      cert.toString("pem") + "\n",
      pair.keys.privateKey,
      pair.privateKeyPem,
    );
  }

  /**
   * Issues a device (client) certificate: the DER is assembled directly and
   * signed with node:crypto, about ten times faster than the generic builder.
   * `spki` is the DER SubjectPublicKeyInfo, `subject` a DER Name (default
   * CN=AWS IoT Certificate).
   */
  issueClient(
    spki: Uint8Array,
    options: { subject?: Uint8Array; days?: number } = {},
  ): { certificatePem: string; certificateId: string } {
    const now = Date.now();
    const tbs = sequence(
      VERSION_3,
      positiveInteger(randomBytes(16)),
      ECDSA_WITH_SHA256,
      this.#issuerDer,
      sequence(
        time(new Date(now - DAY_MS)),
        time(new Date(now + (options.days ?? 20 * 365) * DAY_MS)),
      ),
      options.subject ?? DEVICE_SUBJECT_DER,
      spki,
      CLIENT_EXTENSIONS,
    );
    const signature = sign("sha256", tbs, this.#keyObject);
    const der = sequence(tbs, ECDSA_WITH_SHA256, tlv(0x03, new Uint8Array([0]), signature));
    return {
      certificatePem: pem(der, "CERTIFICATE"),
      certificateId: createHash("sha256").update(der).digest("hex"),
    };
  }

  /** Issues a certificate for `publicKey` (a CryptoKey or a CSR's public key). */
  async issue(
    publicKey: CryptoKey | x509.PublicKey,
    options: IssueOptions,
  ): Promise<string> {
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(
        [options.server ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
    ];
    if (options.server) {
      extensions.push(
        new x509.SubjectAlternativeNameExtension([
          { type: "dns", value: "localhost" },
          { type: "ip", value: "127.0.0.1" },
          { type: "ip", value: "::1" },
          ...(options.serverNames ?? []).map((name) => ({
            type: isIP(name) ? "ip" as const : "dns" as const,
            value: name,
          })),
        ]),
      );
    }
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: options.subject,
      issuer: this.#cert.subject,
      notBefore: new Date(Date.now() - DAY_MS),
      notAfter: new Date(Date.now() + (options.days ?? 20 * 365) * DAY_MS),
      signingAlgorithm: EC_P256,
      publicKey,
      signingKey: this.#key,
      extensions,
    });
    return cert.toString("pem") + "\n";
  }

  /** Generates an EC P-256 key pair and issues a certificate for it. */
  async issueWithKey(
    options: IssueOptions,
  ): Promise<{ certificatePem: string; privateKeyPem: string }> {
    const pair = await generateKeyPair("ec-p256");
    const certificatePem = await this.issue(pair.keys.publicKey, options);
    return { certificatePem, privateKeyPem: pair.privateKeyPem };
  }

  /**
   * Whether `certificate` (whose id is `certificateId`) was issued (signed) by
   * this CA. Results are cached by id: the id is the hash of the whole DER.
   */
  issued(certificate: X509Certificate, certificateId: string): boolean {
    const cached = this.#verified.get(certificateId);
    if (cached !== undefined) return cached;
    const result = certificate.checkIssued(this.certificate) &&
      certificate.verify(this.certificate.publicKey);
    if (this.#verified.size >= 10_000) this.#verified.clear();
    this.#verified.set(certificateId, result);
    return result;
  }
}

/** Parses and checks a PEM CSR: signature valid, key EC P-256/P-384 or RSA >= 2048. */
export async function parseCsr(pem: string): Promise<x509.Pkcs10CertificateRequest> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch {
    throw new Error("certificateSigningRequest is not a PEM certificate signing request.");
  }
  const algorithm = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (algorithm.name === "ECDSA") {
    if (algorithm.namedCurve !== "P-256" && algorithm.namedCurve !== "P-384") {
      throw new Error(
        `The CSR's EC curve ${algorithm.namedCurve} is not supported (P-256, P-384).`,
      );
    }
  } else if (algorithm.name === "RSASSA-PKCS1-v1_5" || algorithm.name === "RSA-PSS") {
    const bits = rsaBits(csr.publicKey.rawData);
    if (bits < 2048) {
      throw new Error(`The CSR's RSA key has ${bits} bits; at least 2048 are required.`);
    }
  } else {
    throw new Error(`The CSR's key algorithm ${algorithm.name} is not supported (EC, RSA).`);
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  if (!valid) throw new Error("The CSR's signature does not match its public key.");
  return csr;
}

function rsaBits(spki: ArrayBuffer): number {
  const key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  return key.asymmetricKeyDetails?.modulusLength ?? 0;
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  return await webcrypto.subtle.importKey(
    "pkcs8",
    der,
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    [
      "sign",
    ],
  ) as CryptoKey;
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;
  return bytes.toString("hex");
}

/**
 * The server certificate and key in `dir` (server-cert.pem 0644,
 * server-key.pem 0600), issued (again) when missing or when the kept
 * certificate is not valid for every name of `names`.
 */
export async function serverCertificate(
  ca: CertificateAuthority,
  dir: string,
  names: readonly string[],
): Promise<{ certPem: string; keyPem: string }> {
  const certPath = join(dir, "server-cert.pem");
  const keyPath = join(dir, "server-key.pem");
  if (existsSync(certPath) && existsSync(keyPath)) {
    const certPem = readFileSync(certPath, "utf8");
    const has = new Set(
      (new X509Certificate(certPem).subjectAltName ?? "").split(", ").map(sanEntry),
    );
    if (
      names.every((name) => has.has(sanEntry(isIP(name) ? `IP Address:${name}` : `DNS:${name}`)))
    ) {
      return { certPem, keyPem: readFileSync(keyPath, "utf8") };
    }
  }
  const issued = await ca.issueWithKey({
    subject: "CN=localhost",
    server: true,
    serverNames: names,
    days: 3650,
  });
  writeFileAtomic(keyPath, issued.privateKeyPem, { mode: 0o600 });
  writeFileAtomic(certPath, issued.certificatePem, { mode: 0o644 });
  return { certPem: issued.certificatePem, keyPem: issued.privateKeyPem };
}

/**
 * A SAN entry as node:crypto prints it (`DNS:name`, `IP Address:addr`), with
 * an IPv6 address in one spelling: runtimes print them compressed or not.
 */
function sanEntry(entry: string): string {
  const ip = /^IP Address:(.*)$/.exec(entry)?.[1];
  if (ip === undefined || isIP(ip) !== 6) return entry;
  const [head, tail = ""] = ip.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const zeros = ip.includes("::") ? Array(8 - left.length - right.length).fill("0") : [];
  return `IP Address:${
    [...left, ...zeros, ...right].map((g) => parseInt(g, 16).toString(16)).join(":")
  }`;
}

/** Throws unless `name` is an IP address or a DNS name (labels of letters, digits and '-'). */
export function checkServerName(name: string): void {
  const label = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
  if (isIP(name) || (name.length <= 253 && name.split(".").every((l) => label.test(l)))) return;
  throw new Error(
    `The server name ${JSON.stringify(name)} is neither an IP address nor a DNS name.`,
  );
}
