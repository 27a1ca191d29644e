/**
 * Content digests that do not depend on how the work is cut.
 *
 * A file is cut into fixed leaves of LEAF = 1 MiB (the last one may be shorter). Leaf i
 * contributes the 128-bit term
 *
 *     leafTerm(i, bytes) = first 16 bytes of sha256(u64be(i) || u64be(xxh64(bytes, seed 0)))
 *
 * read as a big-endian number. The digest of any run of leaves (a chunk) is the sum of
 * its terms mod 2^128, so chunk digests add up in any grouping and order. A file's content
 * digest is the sum over all its leaves plus sizeTerm(size):
 *
 *     sizeTerm(size) = first 16 bytes of sha256("fsum-size" || u64be(size))
 *
 * (an empty file is just its size term). Any chunking whose boundaries are multiples of
 * LEAF gives the same file digest, so fsum at any -np and chunk size, and a copy hashing
 * its own chunks (fcp --signature / --verify), agree.
 *
 * Strength: the sum over 128-bit terms makes accidental collisions of the aggregate
 * ~2^-128; the content of each leaf is only as strong as xxh64 (two different 1 MiB
 * leaves at the same index collide with probability ~2^-64). Not meant against an
 * adversary.
 *
 * xxh64 comes from the native addon when it is loaded (hashes Buffers in place) or
 * xxhash-wasm (copies each leaf into wasm memory); both give the same values. Call
 * `await initHashing()` once before any other function here.
 *
 * The native batch copy (native/src/batch.cc) computes leaf, size and file digests itself,
 * off the main thread: a change here must be made there too (test/unit/native.test.ts
 * compares the two).
 */
import { createHash } from 'node:crypto';
import xxhash from 'xxhash-wasm';
import { loadNative } from '../native/loader.js';

export const LEAF = 1024 * 1024;
export const MASK128 = (1n << 128n) - 1n;

type Xxh64 = (data: Uint8Array) => bigint;
interface Streaming { update(input: Uint8Array): unknown; digest(): bigint }

let xxh64Impl: Xxh64 | null = null;
let createStream: (() => Streaming) | null = null;
let implName = '';

/**
 * Load the hashing back ends (idempotent). `prefer: 'wasm'` ignores the native addon
 * (tests compare the two).
 */
export async function initHashing(opts: { prefer?: 'native' | 'wasm' } = {}): Promise<void> {
  const native = opts.prefer === 'wasm' ? null : loadNative();
  if (native) {
    // No WebAssembly at all (compiling it cost every rank some 6 ms of CPU at startup):
    // a leaf split across buffers is gathered and hashed whole.
    const xxh = (d: Uint8Array) => native.xxh64(d);
    xxh64Impl = xxh;
    createStream = () => new GatheredLeaf(xxh);
    implName = 'native';
    return;
  }
  const wasm = await xxhash();
  createStream = () => wasm.create64(0n);
  xxh64Impl = (d) => wasm.h64Raw(d, 0n);
  implName = 'xxhash-wasm';
}

/**
 * A streaming XXH64 for one leaf from a one-shot one: the pieces are copied into one
 * buffer (at most LEAF bytes, grown as they come) and hashed when the digest is asked.
 */
class GatheredLeaf implements Streaming {
  private buf = Buffer.allocUnsafe(0);
  private len = 0;

  constructor(private readonly xxh: Xxh64) {}

  update(input: Uint8Array): this {
    if (this.len + input.byteLength > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.len + input.byteLength, Math.min(LEAF, 2 * this.buf.length)));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    this.buf.set(input, this.len);
    this.len += input.byteLength;
    return this;
  }

  digest(): bigint {
    return this.xxh(this.buf.subarray(0, this.len));
  }
}

/** Which xxh64 implementation is in use ('native' or 'xxhash-wasm'). */
export function hashingBackend(): string {
  return implName;
}

function ready(): Xxh64 {
  if (!xxh64Impl) throw new Error('checksum: initHashing() was not awaited');
  return xxh64Impl;
}

/** XXH64 of data, seed 0. */
export function xxh64(data: Uint8Array): bigint {
  return ready()(data);
}

/** The first 16 bytes of a sha256 digest as a 128-bit number. */
export function sha128(...parts: Uint8Array[]): bigint {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return fromBytes(h.digest());
}

function fromBytes(d: Buffer): bigint {
  return (d.readBigUInt64BE(0) << 64n) | d.readBigUInt64BE(8);
}

/** A digest stored as 16 bytes big-endian (as the native batch copy returns them). */
export function digestFromBytes(b: Uint8Array, offset = 0): bigint {
  if (b.byteLength < offset + 16) throw new Error('a digest is 16 bytes');
  return fromBytes(Buffer.from(b.buffer, b.byteOffset + offset, 16));
}

const termBuf = Buffer.alloc(16);

/** The term of leaf `index` whose bytes have XXH64 `leafXxh`. */
export function leafTermOf(index: number, leafXxh: bigint): bigint {
  termBuf.writeBigUInt64BE(BigInt(index), 0);
  termBuf.writeBigUInt64BE(leafXxh, 8);
  return fromBytes(createHash('sha256').update(termBuf).digest());
}

/** leafTerm(i, bytes): the term of leaf i with these bytes (at most LEAF of them). */
export function leafTerm(index: number, bytes: Uint8Array): bigint {
  return leafTermOf(index, xxh64(bytes));
}

export function addDigests(a: bigint, b: bigint): bigint {
  return (a + b) & MASK128;
}

export function subDigests(a: bigint, b: bigint): bigint {
  return (a - b) & MASK128;
}

const SIZE_TAG = Buffer.from('fsum-size');

export function sizeTerm(size: number): bigint {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(size));
  return sha128(SIZE_TAG, b);
}

/** A file's content digest from the partial digests of chunks covering it exactly once. */
export function fileDigest(partials: bigint[], size: number): bigint {
  let s = sizeTerm(size);
  for (const p of partials) s += p;
  return s & MASK128;
}

export function toHex(d: bigint): string {
  return (d & MASK128).toString(16).padStart(32, '0');
}

export const isHex128 = (x: unknown): x is string => typeof x === 'string' && /^[0-9a-f]{32}$/.test(x);

export function fromHex(h: string): bigint {
  if (!isHex128(h)) throw new Error(`not a 128-bit hex digest: '${h}'`);
  return BigInt(`0x${h}`);
}

/**
 * The partial digest of the bytes [offset, offset + n) of one file, fed in order.
 *
 * `offset` (the chunk's start) must be a multiple of LEAF; buffers may have any size and
 * alignment but must be contiguous. Whole leaves inside a buffer are hashed in place;
 * pieces of a leaf split across buffers go through a streaming XXH64.
 */
export class ChunkHasher {
  private pos: number;
  private sum = 0n;
  /** streaming state of the current, incomplete leaf (null when pos is at a leaf boundary) */
  private partial: Streaming | null = null;
  private partialLen = 0;

  constructor(offset: number) {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % LEAF !== 0) {
      throw new Error(`ChunkHasher: offset ${offset} is not a multiple of ${LEAF}`);
    }
    ready();
    this.pos = offset;
  }

  /** Where the next buffer must start. */
  get offset(): number {
    return this.pos;
  }

  update(buf: Uint8Array, offset: number): void {
    if (offset !== this.pos) throw new Error(`ChunkHasher: expected data at offset ${this.pos}, got ${offset}`);
    const h = xxh64Impl!;
    let i = 0;
    const n = buf.byteLength;
    // finish a leaf started by an earlier buffer
    if (this.partial) {
      const take = Math.min(LEAF - this.partialLen, n);
      this.partial.update(buf.subarray(0, take));
      this.partialLen += take;
      i = take;
      if (this.partialLen === LEAF) {
        this.sum += leafTermOf((this.pos + i) / LEAF - 1, this.partial.digest());
        this.partial = null;
        this.partialLen = 0;
      }
    }
    // whole leaves, in place
    while (n - i >= LEAF) {
      this.sum += leafTermOf((this.pos + i) / LEAF, h(buf.subarray(i, i + LEAF)));
      i += LEAF;
    }
    // start a leaf that the next buffer continues
    if (i < n) {
      this.partial = createStream!();
      this.partial.update(buf.subarray(i, n));
      this.partialLen = n - i;
    }
    this.pos += n;
    this.sum &= MASK128;
  }

  /** Sum of the terms of the leaves seen so far, the incomplete last leaf included. */
  digest(): bigint {
    let s = this.sum;
    if (this.partial && this.partialLen > 0) s += leafTermOf(Math.floor(this.pos / LEAF), this.partial.digest());
    return s & MASK128;
  }
}

/** Content digest of a whole file held in memory (small files, tests): one-shot XXH64 per leaf. */
export function digestOfBuffer(data: Uint8Array): bigint {
  const h = ready();
  let s = sizeTerm(data.byteLength);
  for (let off = 0, i = 0; off < data.byteLength; off += LEAF, i++) s += leafTermOf(i, h(data.subarray(off, Math.min(data.byteLength, off + LEAF))));
  return s & MASK128;
}
