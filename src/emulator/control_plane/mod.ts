// SPDX-License-Identifier: Apache-2.0
/**
 * The AWS IoT control plane, a subset, over HTTP on a port of its own: AWS's
 * REST routes and JSON shapes, so the AWS CLI (`--endpoint-url`) and the AWS
 * SDKs work unchanged. A local test endpoint: SigV4 signatures are accepted
 * and not verified (any credentials work), and it listens on 127.0.0.1
 * unless told otherwise. Every request is untrusted: the body is capped
 * (MAX_REQUEST_BYTES, 413 past it), must be a JSON object, and every error is
 * one AWS-shaped answer; a registry change is written before the answer.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ApiContext, ApiRequest, Handler } from "./api.ts";
import { CATALOG_OPERATIONS } from "./catalog.ts";
import { CERTIFICATE_OPERATIONS } from "./certificates.ts";
import { ApiError } from "./errors.ts";
import { POLICY_OPERATIONS } from "./policies.ts";
import { matchRoute } from "./routes.ts";
import { TEMPLATE_OPERATIONS } from "./templates.ts";
import { THING_OPERATIONS } from "./things.ts";

/** The largest request body the control plane reads: 1 MiB (AWS's largest, a 404 600-character policy, fits). */
export const MAX_REQUEST_BYTES = 1024 * 1024;

/** Past this many discarded bytes of an oversized body the connection is closed. */
const MAX_DISCARDED_BYTES = 16 * MAX_REQUEST_BYTES;

/** Every operation the emulator implements, by AWS's name. */
export const OPERATIONS: Record<string, Handler> = {
  ...THING_OPERATIONS,
  ...CERTIFICATE_OPERATIONS,
  ...POLICY_OPERATIONS,
  ...TEMPLATE_OPERATIONS,
  ...CATALOG_OPERATIONS,
};

/** Where to listen, and what the operations act on. */
export interface ControlPlaneOptions extends ApiContext {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

/** A listening control plane. */
export interface RunningControlPlane {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Starts the control plane; resolves once it listens. */
export async function startControlPlane(
  options: ControlPlaneOptions,
): Promise<RunningControlPlane> {
  const server = http.createServer(
    { maxHeaderSize: 16 * 1024, requestTimeout: 30_000, headersTimeout: 10_000 },
    (request, response) => {
      serve(options, request, response).catch((error) => {
        options.log(`control plane: internal error: ${(error as Error).stack}`);
        if (!response.headersSent) {
          send(response, new ApiError(500, "InternalFailureException", "The emulator failed."));
        }
      });
    },
  );
  server.on("clientError", (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: options.host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Answers one request. */
async function serve(
  context: ApiContext,
  request: http.IncomingMessage,
  response: http.ServerResponse,
): Promise<void> {
  const method = request.method ?? "GET";
  const url = new URL(request.url ?? "/", "http://localhost");
  const route = matchRoute(method, url.pathname);
  const handler = route && Object.hasOwn(OPERATIONS, route.operation)
    ? OPERATIONS[route.operation]
    : undefined;
  const body = await readBody(request);
  let answer: ApiError | Record<string, unknown> | undefined;
  if (!route || !handler) {
    answer = unknownOperation(method, url.pathname, route?.operation);
  } else if (body instanceof ApiError) {
    answer = body;
  } else {
    const apiRequest: ApiRequest = {
      params: route.params,
      query: url.searchParams,
      headers: request.headers,
      body,
    };
    answer = run(context, handler, apiRequest);
  }
  const status = answer instanceof ApiError ? answer.status : 200;
  context.log(`control plane: ${method} ${url.pathname} ${route?.operation ?? "?"} -> ${status}`);
  send(response, answer);
  if (body instanceof ApiError && body.status === 413) {
    response.once("finish", () => request.destroy());
  }
}

/** Runs an operation; writes the registry before the answer leaves. */
function run(
  context: ApiContext,
  handler: Handler,
  request: ApiRequest,
): ApiError | Record<string, unknown> | undefined {
  try {
    return handler(context, request);
  } catch (error) {
    if (error instanceof ApiError) return error;
    context.log(`control plane: internal error: ${(error as Error).stack}`);
    return new ApiError(500, "InternalFailureException", "The emulator failed on this request.");
  } finally {
    context.registry.flush();
  }
}

function unknownOperation(method: string, path: string, operation?: string): ApiError {
  const implemented = Object.keys(OPERATIONS).sort().join(", ");
  const where = `${method} ${path.length > 100 ? `${path.slice(0, 100)}…` : path}`;
  return new ApiError(
    404,
    "UnknownOperationException",
    operation
      ? `The emulator does not implement ${operation} (${where}); it implements ${implemented}.`
      : `No AWS IoT operation the emulator knows is at ${where}; it implements ${implemented}.`,
  );
}

/** The body as a JSON object ({} when empty), or the error to answer; never more than the cap in memory. */
function readBody(request: http.IncomingMessage): Promise<Record<string, unknown> | ApiError> {
  return new Promise((resolve) => {
    const declared = Number(request.headers["content-length"] ?? 0);
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= MAX_REQUEST_BYTES && declared <= MAX_REQUEST_BYTES) chunks.push(chunk);
      else if (bytes > MAX_DISCARDED_BYTES) request.destroy();
    });
    request.on(
      "error",
      () => resolve(new ApiError(400, "InvalidRequestException", "The request was cut off.")),
    );
    request.on("end", () => {
      if (bytes > MAX_REQUEST_BYTES || declared > MAX_REQUEST_BYTES) {
        resolve(
          new ApiError(
            413,
            "InvalidRequestException",
            `The request body is ${
              Math.max(bytes, declared)
            } bytes; the emulator accepts at most ${MAX_REQUEST_BYTES}.`,
          ),
        );
        return;
      }
      resolve(parseBody(Buffer.concat(chunks)));
    });
  });
}

function parseBody(bytes: Buffer): Record<string, unknown> | ApiError {
  if (bytes.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch {
    return new ApiError(400, "SerializationException", "The request body is not valid JSON.");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return new ApiError(400, "SerializationException", "The request body must be a JSON object.");
  }
  return value as Record<string, unknown>;
}

function send(
  response: http.ServerResponse,
  answer: ApiError | Record<string, unknown> | undefined,
): void {
  const headers: Record<string, string> = { "x-amzn-RequestId": randomUUID() };
  let text = "";
  if (answer instanceof ApiError) {
    headers["x-amzn-ErrorType"] = answer.type;
    text = JSON.stringify({ message: answer.message });
  } else if (answer !== undefined) {
    text = JSON.stringify(answer);
  }
  if (text) headers["content-type"] = "application/json";
  response.writeHead(answer instanceof ApiError ? answer.status : 200, {
    ...headers,
    "content-length": String(Buffer.byteLength(text)),
  });
  response.end(text);
}
