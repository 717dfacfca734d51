// SPDX-License-Identifier: Apache-2.0
/**
 * The latency proxy of the benchmarks, against a real TCP echo server: the
 * delay is really applied (measured lower bounds from the configured delay
 * only), bytes keep their order, round trips are counted for known patterns,
 * and the bandwidth cap holds.
 */
import net from "node:net";
import { assert, assertEquals } from "./support/assert.ts";
import { type LatencyProxy, startLatencyProxy } from "../bench/latency_proxy.ts";

/** A real TCP echo server on a free loopback port. */
function startEchoServer(
  options: { replyToFin?: string; echoAgainAfterMs?: number } = {},
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.on("data", (chunk) => {
      socket.write(chunk);
      // A second, later burst answering the same request (like CONNACK, then the answer).
      const again = options.echoAgainAfterMs;
      if (again !== undefined) setTimeout(() => socket.destroyed || socket.write(chunk), again);
    });
    socket.on("end", () => socket.end(options.replyToFin ?? ""));
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/** A client connection that collects what it receives and waits for byte counts. */
class Client {
  readonly socket: net.Socket;
  readonly connected: Promise<void>;
  received = new Uint8Array(0);
  #waiters: { bytes: number; resolve: () => void }[] = [];

  constructor(port: number) {
    this.socket = net.connect(port, "127.0.0.1");
    this.socket.setNoDelay(true);
    this.connected = new Promise((resolve) => this.socket.once("connect", () => resolve()));
    this.socket.on("data", (chunk: Uint8Array) => {
      const joined = new Uint8Array(this.received.length + chunk.length);
      joined.set(this.received);
      joined.set(chunk, this.received.length);
      this.received = joined;
      this.#waiters = this.#waiters.filter((waiter) => {
        if (this.received.length < waiter.bytes) return true;
        waiter.resolve();
        return false;
      });
    });
  }

  /** Resolves once `bytes` bytes in total have arrived. */
  receivedBytes(bytes: number): Promise<void> {
    if (this.received.length >= bytes) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ bytes, resolve }));
  }

  /** Resolves when the server has closed its side. */
  ended(): Promise<void> {
    return new Promise((resolve) => this.socket.once("end", () => resolve()));
  }
}

/** Ends the client's side (sending `last` first, if given), then waits for the server's end and the proxy's count. */
async function finish(client: Client, proxy: LatencyProxy, last?: Uint8Array): Promise<void> {
  if (last === undefined) client.socket.end();
  else client.socket.end(last);
  await client.ended();
  await proxy.settled();
}

async function withProxy(
  options: {
    delayMs: number;
    bandwidthBytesPerSec?: number;
    replyToFin?: string;
    echoAgainAfterMs?: number;
  },
  body: (proxy: LatencyProxy) => Promise<void>,
): Promise<void> {
  const echo = await startEchoServer(options);
  const proxy = await startLatencyProxy({
    target: { host: "127.0.0.1", port: echo.port },
    delayMs: options.delayMs,
    bandwidthBytesPerSec: options.bandwidthBytesPerSec,
  });
  try {
    await body(proxy);
  } finally {
    await proxy.close();
    await echo.close();
  }
}

const text = new TextEncoder();

Deno.test("an echo through the proxy takes at least the TCP round trip plus one data round trip", async () => {
  const delayMs = 60;
  await withProxy({ delayMs }, async (proxy) => {
    const startedAt = performance.now();
    const client = new Client(proxy.port);
    await client.connected;
    const sentAt = performance.now();
    client.socket.write(text.encode("ping"));
    await client.receivedBytes(4);
    const answeredAt = performance.now();
    // Data waits for the handshake round trip, then travels there and back.
    assert(
      answeredAt - startedAt >= 4 * delayMs,
      `echo after ${answeredAt - startedAt} ms < ${4 * delayMs}`,
    );
    assert(answeredAt - sentAt >= 2 * delayMs, `echo after ${answeredAt - sentAt} ms`);
    // Once connected, a second echo costs one round trip (2 × delay) again.
    const secondAt = performance.now();
    client.socket.write(text.encode("pong"));
    await client.receivedBytes(8);
    const elapsed = performance.now() - secondAt;
    assert(elapsed >= 2 * delayMs, `second echo after ${elapsed} ms < ${2 * delayMs}`);
    assertEquals(new TextDecoder().decode(client.received), "pingpong");
    client.socket.destroy();
    await proxy.settled();
  });
});

Deno.test("the proxy keeps byte order across many writes, throttled or not", async () => {
  for (const options of [{ delayMs: 5 }, { delayMs: 3, bandwidthBytesPerSec: 4_000_000 }]) {
    await withProxy(options, async (proxy) => {
      const client = new Client(proxy.port);
      await client.connected;
      const sent: number[] = [];
      for (let write = 0; write < 300; write++) {
        // Writes of varying sizes spread over many event-loop turns.
        const chunk = new Uint8Array(1 + (write * 37) % 3000);
        for (let i = 0; i < chunk.length; i++) chunk[i] = (write + i) & 0xff;
        sent.push(...chunk);
        client.socket.write(chunk);
        if (write % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await client.receivedBytes(sent.length);
      assertEquals(client.received.length, sent.length);
      assert(
        client.received.every((byte, i) => byte === sent[i]),
        "echoed bytes differ from the bytes sent",
      );
      client.socket.destroy();
      await proxy.settled();
    });
  }
});

Deno.test("round trips: one for TCP, one per ping-pong, one for pipelined requests", async () => {
  await withProxy({ delayMs: 5 }, async (proxy) => {
    // Five sequential ping-pongs: the client waits for each answer.
    const client = new Client(proxy.port);
    await client.connected;
    for (let i = 1; i <= 5; i++) {
      client.socket.write(text.encode("x"));
      await client.receivedBytes(i);
    }
    await finish(client, proxy);
    assertEquals(proxy.roundTrips(), 1 + 5);

    // Five pipelined requests on a second connection: answered in one round trip.
    const pipelined = new Client(proxy.port);
    await pipelined.connected;
    for (let i = 0; i < 5; i++) pipelined.socket.write(text.encode("y"));
    await pipelined.receivedBytes(5);
    await finish(pipelined, proxy);
    const stats = proxy.stats();
    assertEquals(stats.connections, 2);
    assertEquals(stats.perConnection.map((c) => c.roundTrips), [6, 2]);
    assertEquals(stats.roundTrips, 8);
    assertEquals([stats.bytesUp, stats.bytesDown], [10, 10]);
  });
});

Deno.test("round trips: an answer in two bursts apart, with no client send between, is one", async () => {
  await withProxy({ delayMs: 5, echoAgainAfterMs: 30 }, async (proxy) => {
    const client = new Client(proxy.port);
    await client.connected;
    client.socket.write(text.encode("connect+subscribe+publish"));
    await client.receivedBytes(50);
    await finish(client, proxy);
    assertEquals(proxy.roundTrips(), 1 + 1);
  });
});

Deno.test("round trips: a request, then waiting for its acknowledgement before the next, costs two", async () => {
  // SUBSCRIBE, wait for SUBACK, then PUBLISH: the pattern a pipelined MQTT client avoids.
  await withProxy({ delayMs: 5 }, async (proxy) => {
    const client = new Client(proxy.port);
    await client.connected;
    client.socket.write(text.encode("sub"));
    await client.receivedBytes(3);
    client.socket.write(text.encode("pub"));
    await client.receivedBytes(6);
    await finish(client, proxy);
    assertEquals(proxy.roundTrips(), 1 + 2);
  });
});

Deno.test("round trips: what the server sends after the client's FIN is not waited on", async () => {
  // Like MQTT DISCONNECT followed by the server's TLS close_notify.
  await withProxy({ delayMs: 5, replyToFin: "bye" }, async (proxy) => {
    const client = new Client(proxy.port);
    await client.connected;
    client.socket.write(text.encode("hello"));
    await client.receivedBytes(5);
    await finish(client, proxy, text.encode("disconnect"));
    assertEquals(new TextDecoder().decode(client.received), "hellodisconnectbye");
    assertEquals(proxy.roundTrips(), 1 + 1);
  });
});

Deno.test("round trips: a TCP handshake opened while waiting on another connection is not counted", async () => {
  await withProxy({ delayMs: 20 }, async (proxy) => {
    const first = new Client(proxy.port);
    await first.connected;
    first.socket.write(text.encode("register"));
    // Opened while the first connection's request is in flight: its handshake overlaps that wait.
    const second = new Client(proxy.port);
    await first.receivedBytes(8);
    await second.connected;
    second.socket.write(text.encode("tls"));
    await second.receivedBytes(3);
    first.socket.end();
    await first.ended();
    // Opened while nothing is waited on: its handshake counts.
    const third = new Client(proxy.port);
    await third.connected;
    third.socket.write(text.encode("x"));
    await third.receivedBytes(1);
    second.socket.end();
    await second.ended();
    await finish(third, proxy);
    const stats = proxy.stats();
    assertEquals(stats.perConnection.map((c) => c.roundTrips), [2, 1, 2]);
    assertEquals(stats.perConnection.map((c) => c.overlapped), [false, true, false]);
    const [firstStats, secondStats] = stats.perConnection;
    assertEquals(firstStats.answeredAt.length, 1);
    assert(secondStats.openedAt < firstStats.answeredAt[0]);
  });
});

Deno.test("the bandwidth cap holds client to server", async () => {
  const bandwidthBytesPerSec = 64 * 1024;
  const size = 32 * 1024;
  await withProxy({ delayMs: 0, bandwidthBytesPerSec }, async (proxy) => {
    const client = new Client(proxy.port);
    await client.connected;
    const startedAt = performance.now();
    client.socket.write(new Uint8Array(size).fill(7));
    await client.receivedBytes(size);
    const elapsed = performance.now() - startedAt;
    // The upload alone needs size / rate; the echo overlaps it segment by segment.
    const floor = (size / bandwidthBytesPerSec) * 1000;
    assert(elapsed >= floor, `${size} bytes echoed in ${elapsed} ms < ${floor} ms`);
    assertEquals(client.received.length, size);
    client.socket.destroy();
    await proxy.settled();
  });
});

Deno.test("the bandwidth cap holds server to client", async () => {
  const bandwidthBytesPerSec = 64 * 1024;
  const size = 32 * 1024;
  // The server answers the client's FIN with `size` bytes: only the download is throttled work.
  await withProxy(
    { delayMs: 0, bandwidthBytesPerSec, replyToFin: "d".repeat(size) },
    async (proxy) => {
      const client = new Client(proxy.port);
      await client.connected;
      const startedAt = performance.now();
      client.socket.end();
      await client.ended();
      const elapsed = performance.now() - startedAt;
      const floor = (size / bandwidthBytesPerSec) * 1000;
      assertEquals(client.received.length, size);
      assert(elapsed >= floor, `${size} bytes downloaded in ${elapsed} ms < ${floor} ms`);
      await proxy.settled();
    },
  );
});
