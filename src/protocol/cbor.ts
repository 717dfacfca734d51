// SPDX-License-Identifier: Apache-2.0
/**
 * Rewriting of indefinite-length CBOR strings (RFC 8949 §3.2.3) as
 * definite-length ones, which cborg can decode.
 *
 * @module
 */

/** An item header: major type, argument, whether it is indefinite, where it starts. */
interface Header {
  major: number;
  arg: number;
  indefinite: boolean;
  start: number;
}

/** Deepest nesting accepted. */
const MAX_DEPTH = 64;
/** The "break" stop code ending an indefinite-length item. */
const BREAK = 0xff;

/**
 * Rewrites every indefinite-length byte or text string (RFC 8949 §3.2.3) as a
 * definite-length one; everything else is copied as is.
 */
export function definiteStrings(bytes: Uint8Array): Uint8Array {
  const rewriter = new Rewriter(bytes);
  rewriter.item(0);
  if (rewriter.pos !== bytes.length) throw new Error("there are bytes after the payload");
  return Uint8Array.from(rewriter.out);
}

/** Walks the items once, copying each to `out`, joining indefinite strings' chunks. */
class Rewriter {
  readonly out: number[] = [];
  pos = 0;

  constructor(readonly bytes: Uint8Array) {}

  item(depth: number): void {
    if (depth > MAX_DEPTH) throw new Error("items are nested too deeply");
    const h = this.header();
    switch (h.major) {
      case 0:
      case 1:
        this.copy(h.start, this.pos);
        return;
      case 2:
      case 3:
        return h.indefinite ? this.joinChunks(h) : this.definiteString(h);
      case 4:
      case 5:
        return this.container(h, depth);
      case 6:
        this.copy(h.start, this.pos);
        this.item(depth + 1);
        return;
      default: // 7: simple values and floats; the argument bytes were consumed by header().
        if (h.indefinite) throw new Error("unexpected break code");
        this.copy(h.start, this.pos);
    }
  }

  /** Reads an item header. */
  header(): Header {
    const start = this.pos;
    this.need(1);
    const initial = this.bytes[this.pos++];
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (info < 24) return { major, arg: info, indefinite: false, start };
    if (info === 31) return { major, arg: 0, indefinite: true, start };
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (size === 0) throw new Error(`reserved additional information ${info}`);
    this.need(size);
    let arg = 0;
    for (let i = 0; i < size; i++) arg = arg * 256 + this.bytes[this.pos++];
    return { major, arg, indefinite: false, start };
  }

  need(n: number): void {
    if (this.pos + n > this.bytes.length) {
      throw new Error("the data ends in the middle of an item");
    }
  }

  copy(from: number, to: number): void {
    for (let i = from; i < to; i++) this.out.push(this.bytes[i]);
  }

  pushHeader(major: number, length: number): void {
    const m = major << 5;
    if (length < 24) this.out.push(m | length);
    else if (length < 0x100) this.out.push(m | 24, length);
    else if (length < 0x10000) this.out.push(m | 25, length >> 8, length & 0xff);
    else {
      this.out.push(
        m | 26,
        (length >>> 24) & 0xff,
        (length >> 16) & 0xff,
        (length >> 8) & 0xff,
        length & 0xff,
      );
    }
  }

  definiteString(h: Header): void {
    this.need(h.arg);
    this.pos += h.arg;
    this.copy(h.start, this.pos);
  }

  /** An indefinite-length string: its chunks joined into one definite-length string. */
  joinChunks(h: Header): void {
    const chunks: number[] = [];
    while (true) {
      this.need(1);
      if (this.bytes[this.pos] === BREAK) {
        this.pos++;
        break;
      }
      const chunk = this.header();
      if (chunk.major !== h.major || chunk.indefinite) {
        throw new Error("an indefinite-length string holds a chunk of another type");
      }
      this.need(chunk.arg);
      for (let i = 0; i < chunk.arg; i++) chunks.push(this.bytes[this.pos + i]);
      this.pos += chunk.arg;
    }
    this.pushHeader(h.major, chunks.length);
    for (const b of chunks) this.out.push(b);
  }

  /** An array (4) or map (5), definite or indefinite, copied with its items rewritten. */
  container(h: Header, depth: number): void {
    this.copy(h.start, this.pos);
    if (h.indefinite) {
      while (true) {
        this.need(1);
        if (this.bytes[this.pos] === BREAK) {
          this.out.push(BREAK);
          this.pos++;
          return;
        }
        this.item(depth + 1);
        if (h.major === 5) this.item(depth + 1);
      }
    }
    const count = h.major === 5 ? h.arg * 2 : h.arg;
    for (let i = 0; i < count; i++) this.item(depth + 1);
  }
}
