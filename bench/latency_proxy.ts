// SPDX-License-Identifier: Apache-2.0
/**
 * A user-space latency proxy for tests and benchmarks (there is no kernel
 * netem here): a TCP relay that delays each direction by a fixed one-way time,
 * can cap each direction's bandwidth, and counts the round trips the client
 * waits on.
 *
 * Timing model, per connection:
 * - TCP connect costs one round trip: the client's connection completes on
 *   loopback at once, so its bytes are held as if sent no earlier than
 *   `accept + 2 × delay` (SYN there, SYN-ACK back), then travel one way.
 * - Every chunk is stamped when it reaches the proxy and delivered at
 *   `stamp + delay` (plus its serialization time when throttled). Deadlines are
 *   absolute and never earlier than the previous chunk's, so ordering holds and
 *   timer lateness never accumulates: one timer per direction, re-armed for the
 *   queue's head, delivers every chunk that is due when it fires.
 * - With `bandwidthBytesPerSec`, each direction is a link that sends one chunk
 *   (cut into 1460-byte segments) after another: a segment is on the wire from
 *   `max(stamp, link free)` for `bytes / rate` seconds, then travels `delay`.
 * - FIN and close travel like data (after everything before them).
 *
 * Round-trip counting, from the client's side of the proxy: its sends are the
 * client→proxy chunks as they arrive, its receives are the proxy→client chunks
 * as they are delivered. A receive counts as one round trip when the client
 * sent something since its previous receive: it is the answer to a burst the
 * client sent, which the client could only have been waiting for. Answers that
 * come in several pieces without a client send in between count once, and so
 * do pipelined requests answered together; a client that waits for an answer
 * before sending the next request (e.g. SUBSCRIBE, wait SUBACK, PUBLISH) shows
 * one more round trip. Data delivered after the client sent its FIN is not
 * counted (nobody waits for it, e.g. TLS close_notify after MQTT DISCONNECT;
 * a client that half-closes and then waits for a reply is undercounted by one).
 * Plus one round trip per connection for the TCP handshake, unless it
 * overlapped a wait on another connection: an answer the client waited for
 * there arrived after this connection was opened and before the client first
 * sent on it (so the handshake cost no time of its own). For fleet provisioning: TCP, TLS 1.3,
 * CONNECT → CONNACK, SUBSCRIBE+PUBLISH → answer, RegisterThing (5), then TLS
 * and CONNECT → CONNACK on the connection whose TCP handshake was opened
 * during RegisterThing (2): 7.
 *
 * @example
 * ```ts
 * const proxy = await startLatencyProxy({ target: { host: "127.0.0.1", port: 8883 }, delayMs: 50 });
 * // connect to localhost:proxy.port; later:
 * console.log(proxy.roundTrips(), proxy.stats());
 * await proxy.close();
 * ```
 *
 * @module
 */
import net from "node:net";

/** Options of {@linkcode startLatencyProxy}. */
export interface LatencyProxyOptions {
  /** Where to relay connections to. */
  target: { host: string; port: number };
  /** One-way delay added in each direction, milliseconds (RTT = 2 × delayMs). */
  delayMs: number;
  /** Per-direction bandwidth cap in bytes per second; unlimited when absent. */
  bandwidthBytesPerSec?: number;
  /** Listen address, default "127.0.0.1". */
  host?: string;
  /** Listen port, default 0 (a free port). */
  port?: number;
}

/** Figures of one relayed connection. */
export interface ConnectionStats {
  /** Round trips the client waited on, the TCP handshake included unless it overlapped. */
  roundTrips: number;
  /** The TCP handshake overlapped a wait on another connection, so it was not counted. */
  overlapped: boolean;
  /** When the client first sent on it, or undefined. */
  firstSentAt?: number;
  /** When each counted answer was delivered, `performance.now()` milliseconds. */
  answeredAt: number[];
  /** Bytes client → server. */
  bytesUp: number;
  /** Bytes server → client. */
  bytesDown: number;
  /** When the client connected, `performance.now()` milliseconds. */
  openedAt: number;
  /** When both sides were closed, or undefined while open. */
  closedAt?: number;
}

/** Figures of everything relayed so far. */
export interface LatencyProxyStats {
  connections: number;
  roundTrips: number;
  bytesUp: number;
  bytesDown: number;
  perConnection: ConnectionStats[];
}

/** A running latency proxy. */
export interface LatencyProxy {
  /** The port it listens on. */
  port: number;
  /** Round trips counted over all connections so far. */
  roundTrips(): number;
  /** Per-connection and total figures. */
  stats(): LatencyProxyStats;
  /** Resolves once no relayed connection is open (both sides closed). */
  settled(): Promise<void>;
  /** Stops listening and destroys every relayed connection. */
  close(): Promise<void>;
}

/** Largest piece the bandwidth model puts on the wire at once (an Ethernet TCP payload). */
const SEGMENT_BYTES = 1460;
/** Queued bytes above which the proxy stops reading the sender. */
const HIGH_WATER_BYTES = 1 << 20;

type Item = { due: number; chunk: Uint8Array } | { due: number; end: "fin" | "close" };

interface DelayLineOptions {
  delayMs: number;
  bandwidth?: number;
  /** The socket the bytes come from (paused while too much is queued). */
  source: net.Socket;
  /** The socket the bytes go to. */
  sink: net.Socket;
  /** Called for each chunk written to the sink. */
  onDeliver: (bytes: number) => void;
}

/** One direction of a connection: stamped chunks delivered in order at their deadlines. */
class DelayLine {
  readonly #queue: Item[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastDue = 0;
  #linkFreeAt = 0;
  #queuedBytes = 0;
  readonly #notBefore: number;
  readonly #options: DelayLineOptions;

  /** Bytes pushed are treated as sent no earlier than `notBefore`. */
  constructor(notBefore: number, options: DelayLineOptions) {
    this.#notBefore = notBefore;
    this.#options = options;
  }

  push(chunk: Uint8Array, now: number): void {
    const { delayMs, bandwidth } = this.#options;
    const sent = Math.max(now, this.#notBefore);
    if (bandwidth === undefined) {
      this.#enqueue({ due: sent + delayMs, chunk });
    } else {
      for (let offset = 0; offset < chunk.length; offset += SEGMENT_BYTES) {
        const piece = chunk.subarray(offset, offset + SEGMENT_BYTES);
        const onWireFrom = Math.max(sent, this.#linkFreeAt);
        this.#linkFreeAt = onWireFrom + (piece.length * 1000) / bandwidth;
        this.#enqueue({ due: this.#linkFreeAt + delayMs, chunk: piece });
      }
    }
    this.#queuedBytes += chunk.length;
    if (this.#queuedBytes > HIGH_WATER_BYTES) this.#options.source.pause();
  }

  end(kind: "fin" | "close", now: number): void {
    const sent = Math.max(now, this.#notBefore, this.#linkFreeAt);
    this.#enqueue({ due: sent + this.#options.delayMs, end: kind });
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
    this.#head = 0;
  }

  #enqueue(item: Item): void {
    item.due = Math.max(item.due, this.#lastDue);
    this.#lastDue = item.due;
    this.#queue.push(item);
    if (this.#timer === undefined) this.#arm();
  }

  #arm(): void {
    const head = this.#queue[this.#head];
    if (head === undefined) {
      this.#queue.length = 0;
      this.#head = 0;
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, Math.max(0, head.due - performance.now()));
  }

  #flush(): void {
    const { sink, source, onDeliver } = this.#options;
    const now = performance.now();
    while (this.#head < this.#queue.length && this.#queue[this.#head].due <= now) {
      const item = this.#queue[this.#head++];
      if ("chunk" in item) {
        this.#queuedBytes -= item.chunk.length;
        if (!sink.destroyed) {
          sink.write(item.chunk);
          onDeliver(item.chunk.length);
        }
      } else if (item.end === "fin") {
        if (!sink.destroyed) sink.end();
      } else {
        sink.destroy();
      }
    }
    if (this.#queuedBytes <= HIGH_WATER_BYTES && source.isPaused()) source.resume();
    this.#arm();
  }
}

/** Starts a latency proxy in front of `options.target`. */
export function startLatencyProxy(options: LatencyProxyOptions): Promise<LatencyProxy> {
  const { delayMs, bandwidthBytesPerSec: bandwidth } = options;
  if (!(delayMs >= 0)) throw new Error(`delayMs must be a number >= 0, not ${delayMs}.`);
  if (bandwidth !== undefined && !(bandwidth > 0)) {
    throw new Error(`bandwidthBytesPerSec must be a number > 0, not ${bandwidth}.`);
  }
  const connections: ConnectionStats[] = [];
  /** The figures with each TCP handshake counted unless it overlapped another connection's wait. */
  function counted(): ConnectionStats[] {
    return connections.map((c) => {
      const until = c.firstSentAt ?? Infinity;
      const overlapped = connections.some((other) =>
        other !== c && other.answeredAt.some((t) => t > c.openedAt && t <= until)
      );
      return {
        ...c,
        roundTrips: c.answeredAt.length + (overlapped ? 0 : 1),
        overlapped,
        answeredAt: [...c.answeredAt],
      };
    });
  }
  const live = new Set<{ stop(): void }>();
  let settledWaiters: (() => void)[] = [];
  function notifyIfSettled(): void {
    if (live.size > 0) return;
    const waiters = settledWaiters;
    settledWaiters = [];
    for (const waiter of waiters) waiter();
  }

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const openedAt = performance.now();
    // Answers counted as they come; the TCP handshake is added by counted().
    const stats: ConnectionStats = {
      roundTrips: 0,
      overlapped: false,
      answeredAt: [],
      bytesUp: 0,
      bytesDown: 0,
      openedAt,
    };
    connections.push(stats);
    client.setNoDelay(true);
    const upstream = new net.Socket({ allowHalfOpen: true });
    upstream.setNoDelay(true);
    let sentSinceReceive = false;
    let clientFinished = false;
    let closed = 0;

    const up = new DelayLine(openedAt + 2 * delayMs, {
      delayMs,
      bandwidth,
      source: client,
      sink: upstream,
      onDeliver: (bytes) => stats.bytesUp += bytes,
    });
    const down = new DelayLine(openedAt + delayMs, {
      delayMs,
      bandwidth,
      source: upstream,
      sink: client,
      onDeliver: (bytes) => {
        stats.bytesDown += bytes;
        if (sentSinceReceive && !clientFinished) {
          stats.answeredAt.push(performance.now());
          sentSinceReceive = false;
        }
      },
    });
    const connection = {
      stop(): void {
        up.stop();
        down.stop();
        client.destroy();
        upstream.destroy();
      },
    };
    live.add(connection);
    function onClosed(): void {
      if (++closed < 2) return;
      stats.closedAt = performance.now();
      live.delete(connection);
      up.stop();
      down.stop();
      notifyIfSettled();
    }

    client.on("data", (chunk: Uint8Array) => {
      sentSinceReceive = true;
      stats.firstSentAt ??= performance.now();
      up.push(chunk, performance.now());
    });
    client.on("end", () => {
      clientFinished = true;
      up.end("fin", performance.now());
    });
    client.on("close", () => {
      clientFinished = true;
      up.end("close", performance.now());
      onClosed();
    });
    client.on("error", () => {});
    upstream.on("data", (chunk: Uint8Array) => down.push(chunk, performance.now()));
    upstream.on("end", () => down.end("fin", performance.now()));
    upstream.on("close", () => {
      down.end("close", performance.now());
      onClosed();
    });
    upstream.on("error", () => {});
    // Connected at once (writes queue until then); what the server sends is
    // held as if sent once the SYN reached it, one delay after the client's.
    upstream.connect(options.target.port, options.target.host);
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      const address = server.address() as net.AddressInfo;
      resolve({
        port: address.port,
        roundTrips: () => counted().reduce((sum, c) => sum + c.roundTrips, 0),
        stats: () => {
          const perConnection = counted();
          return {
            connections: perConnection.length,
            roundTrips: perConnection.reduce((sum, c) => sum + c.roundTrips, 0),
            bytesUp: perConnection.reduce((sum, c) => sum + c.bytesUp, 0),
            bytesDown: perConnection.reduce((sum, c) => sum + c.bytesDown, 0),
            perConnection,
          };
        },
        settled: () =>
          new Promise<void>((done) => {
            settledWaiters.push(done);
            notifyIfSettled();
          }),
        close: () =>
          new Promise<void>((done) => {
            for (const connection of live) connection.stop();
            live.clear();
            notifyIfSettled();
            server.close(() => done());
          }),
      });
    });
  });
}
