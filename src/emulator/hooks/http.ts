// SPDX-License-Identifier: Apache-2.0
/**
 * An `http:` / `https:` hook: the payload is POSTed as JSON; a 2xx answer's
 * body is the hook's answer. Redirects are not followed, the body is capped
 * while it arrives, and at the time limit the request is destroyed.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import http from "node:http";
import https from "node:https";
import type { TransportResult } from "./command.ts";

/** POSTs `input` (JSON) to `url`; resolves with the answer's body or why there is none. */
export function postJson(
  url: URL,
  input: string,
  limits: { timeoutMs: number; maxBytes: number },
): Promise<TransportResult> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (result: TransportResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      request.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ ok: false, reason: `did not answer within ${limits.timeoutMs} ms` }),
      limits.timeoutMs,
    );
    const body = Buffer.from(input);
    const request = (url.protocol === "https:" ? https : http).request(url, {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": body.length },
      agent: false,
    });
    request.on(
      "error",
      (error: NodeJS.ErrnoException) =>
        finish({ ok: false, reason: `request failed (${error.code ?? error.message})` }),
    );
    request.on("response", (response) => {
      const status = response.statusCode ?? 0;
      if (status < 200 || status > 299) {
        finish({ ok: false, reason: `answered HTTP ${status}` });
        return;
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      response.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > limits.maxBytes) {
          finish({ ok: false, reason: `answered more than ${limits.maxBytes} bytes` });
        } else chunks.push(chunk);
      });
      response.on("end", () => finish({ ok: true, text: Buffer.concat(chunks).toString("utf8") }));
      response.on("error", () => finish({ ok: false, reason: "its answer was cut off" }));
    });
    request.end(body);
  });
}
