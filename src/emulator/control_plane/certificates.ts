// SPDX-License-Identifier: Apache-2.0
/**
 * Certificates: ListCertificates, DescribeCertificate, UpdateCertificate
 * (ACTIVE, INACTIVE, REVOKED; a certificate leaving ACTIVE has its MQTT
 * connections closed, as AWS IoT does "within a few minutes"), and
 * DeleteCertificate (refused while ACTIVE or attached, as AWS does).
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import type { CertificateRecord, CertificateStatus } from "../registry/mod.ts";
import {
  type ApiContext,
  type ApiRequest,
  arn,
  epochSeconds,
  type Handler,
  page,
  queryBoolean,
  queryInteger,
  SHAPES,
  string,
} from "./api.ts";
import { ApiError, constraint, invalid, notFound } from "./errors.ts";

/** The account id in ARNs and `ownedBy`. */
const ACCOUNT = "123456789012";

/** Statuses AWS's CertificateStatus enum has. */
const STATUSES = [
  "ACTIVE",
  "INACTIVE",
  "REVOKED",
  "PENDING_TRANSFER",
  "REGISTER_INACTIVE",
  "PENDING_ACTIVATION",
];

/** The statuses UpdateCertificate may set (AWS: the others are internal or deprecated). */
const SETTABLE: CertificateStatus[] = ["ACTIVE", "INACTIVE", "REVOKED"];

function requireCertificate(context: ApiContext, request: ApiRequest): CertificateRecord {
  const id = string(request.params.certificateId, "certificateId", SHAPES.certificateId)
    .replace(/^0x/, "").toLowerCase();
  const record = context.registry.certificate(id);
  if (!record) throw notFound(`The certificate ${id} does not exist.`);
  return record;
}

function certificateStateError(message: string): ApiError {
  return new ApiError(406, "CertificateStateException", message);
}

const listCertificates: Handler = (context, request) => {
  const ascending = queryBoolean(request.query, "isAscendingOrder") ?? false;
  const certificates = context.registry.certificates().sort((a, b) =>
    (ascending ? 1 : -1) * (a.createdAt.localeCompare(b.createdAt) ||
      a.certificateId.localeCompare(b.certificateId))
  );
  const { items, next } = page(certificates, {
    token: request.query.get("marker"),
    size: queryInteger(request.query, "pageSize"),
    field: "marker",
  });
  return {
    certificates: items.map((c) => ({
      certificateArn: arn.certificate(c.certificateId),
      certificateId: c.certificateId,
      status: c.status,
      certificateMode: "DEFAULT",
      creationDate: epochSeconds(c.createdAt),
    })),
    ...(next ? { nextMarker: next } : {}),
  };
};

const describeCertificate: Handler = (context, request) => {
  const c = requireCertificate(context, request);
  const x509 = new X509Certificate(c.certificatePem);
  return {
    certificateDescription: {
      certificateArn: arn.certificate(c.certificateId),
      certificateId: c.certificateId,
      status: c.status,
      certificatePem: c.certificatePem,
      ownedBy: ACCOUNT,
      creationDate: epochSeconds(c.createdAt),
      lastModifiedDate: epochSeconds(c.updatedAt ?? c.createdAt),
      customerVersion: 1,
      generationId: c.updatedAt ?? c.createdAt,
      validity: {
        notBefore: Date.parse(x509.validFrom) / 1000,
        notAfter: Date.parse(x509.validTo) / 1000,
      },
      certificateMode: "DEFAULT",
    },
  };
};

const updateCertificate: Handler = (context, request) => {
  const record = requireCertificate(context, request);
  const status = request.query.get("newStatus");
  if (status === null || !STATUSES.includes(status)) {
    throw constraint(
      "newStatus",
      status,
      `Member must satisfy enum value set: [${STATUSES.join(", ")}]`,
    );
  }
  if (!SETTABLE.includes(status as CertificateStatus)) {
    throw invalid(
      `Status ${status} cannot be set: AWS IoT uses PENDING_TRANSFER and PENDING_ACTIVATION internally, and REGISTER_INACTIVE is deprecated; set ACTIVE, INACTIVE or REVOKED.`,
    );
  }
  if (record.status === "REVOKED" && status !== "REVOKED") {
    throw certificateStateError(
      `The certificate ${record.certificateId} is REVOKED: a revoked certificate cannot be used again.`,
    );
  }
  context.registry.setStatus(record.certificateId, status as CertificateStatus);
  if (status !== "ACTIVE") {
    const closed = context.disconnectCertificate(record.certificateId);
    context.log(
      `certificate ${record.certificateId} is now ${status}` +
        (closed ? `; closed its ${closed} MQTT connection(s)` : ""),
    );
  }
  return undefined;
};

const deleteCertificate: Handler = (context, request) => {
  const record = requireCertificate(context, request);
  const force = queryBoolean(request.query, "forceDelete") ?? false;
  if (record.status === "ACTIVE") {
    throw certificateStateError(
      `The certificate ${record.certificateId} is ACTIVE; deactivate it first (update-certificate --new-status INACTIVE).`,
    );
  }
  if (record.thingNames.length > 0) {
    throw new ApiError(
      409,
      "DeleteConflictException",
      `The certificate ${record.certificateId} is attached to thing ${
        record.thingNames.join(", ")
      }; detach it first (detach-thing-principal).`,
    );
  }
  if (record.policyNames.length > 0 && !force) {
    throw new ApiError(
      409,
      "DeleteConflictException",
      `The certificate ${record.certificateId} has policies attached (${
        record.policyNames.join(", ")
      }); detach them first (detach-policy) or use --force-delete.`,
    );
  }
  context.disconnectCertificate(record.certificateId);
  context.registry.deleteCertificate(record.certificateId);
  context.log(`certificate ${record.certificateId} deleted`);
  return undefined;
};

/** The certificate operations by name. */
export const CERTIFICATE_OPERATIONS: Record<string, Handler> = {
  ListCertificates: listCertificates,
  DescribeCertificate: describeCertificate,
  UpdateCertificate: updateCertificate,
  DeleteCertificate: deleteCertificate,
};
