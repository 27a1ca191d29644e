/**
 * Entry digests and the dataset signature.
 *
 * The digest of one entry is the first 16 bytes of sha256 over this canonical encoding
 * (integers big-endian):
 *
 *     "fsum-entry-1\0"
 *     u8  flags            bit 0: metadata included (--meta)
 *     u32 root index       the position of the root among the PATHs (0 with one PATH)
 *     u32 length, bytes    path relative to the root ('' for the root itself)
 *     u8  kind             'f' 'd' 'l' 'p' 's' 'c' 'b'
 *     files:    u64 size, 16 bytes content digest (hasher.ts)
 *     symlinks: 16 bytes target digest (targetDigest of the link's target bytes)
 *     --meta:   u32 mode & 07777, u32 uid, u32 gid, i64 mtime seconds, u32 mtime ns
 *
 * Everything in it can be read back from a sum file line, so a sum file can be checked
 * against its own signature. Directory sizes are not included (they depend on the file
 * system), nor device numbers of device files, hard-link structure, atime or xattrs.
 *
 * The dataset signature is the sum of the entry digests mod 2^128: independent of the
 * order entries are found in, of the number of ranks and of the chunking, and equal for
 * a faithful copy (relative paths, so the roots' own names do not matter).
 *
 * The native batch copy (native/src/batch.cc) encodes regular files' digests (no --meta)
 * itself: a change here must be made there too (test/unit/native.test.ts compares them).
 */
import type { Kind } from '../model/entry.js';
import { MASK128, sha128 } from './hasher.js';

export interface EntryMetaDigest {
  /** permission bits are taken from it (mode & 07777) */
  mode: number;
  uid: number;
  gid: number;
  mtime: [number, number];
}

export interface EntryDigestInput {
  /** index of the root in the signature (0 for a single root) */
  root: number;
  /** path relative to the root, empty for the root itself */
  path: Uint8Array;
  kind: Kind;
  /** files: size in bytes */
  size?: number;
  /** files: content digest (fileDigest) */
  content?: bigint;
  /** symlinks: targetDigest(target bytes) */
  target?: bigint;
  /** present when metadata is part of the signature (--meta) */
  meta?: EntryMetaDigest;
}

const TAG = Buffer.from('fsum-entry-1\0');
const LINK_TAG = Buffer.from('fsum-link\0');

/** 128-bit digest of a symlink's target bytes. */
export function targetDigest(target: Uint8Array): bigint {
  return sha128(LINK_TAG, target);
}

const M64 = 0xffffffffffffffffn;
/** Encoding scratch space, reused (grown for long paths). */
let scratch = Buffer.alloc(4096);

export function entryDigest(e: EntryDigestInput): bigint {
  const len = TAG.length + 1 + 4 + 4 + e.path.byteLength + 1 + 8 + 16 + 24;
  if (scratch.length < len) scratch = Buffer.alloc(2 * len);
  const b = scratch;
  let o = TAG.copy(b, 0);
  o = b.writeUInt8(e.meta ? 1 : 0, o);
  o = b.writeUInt32BE(e.root, o);
  o = b.writeUInt32BE(e.path.byteLength, o);
  b.set(e.path, o);
  o += e.path.byteLength;
  o += b.write(e.kind, o, 'latin1');
  const u128 = (d: bigint) => {
    o = b.writeBigUInt64BE((d >> 64n) & M64, o);
    o = b.writeBigUInt64BE(d & M64, o);
  };
  if (e.kind === 'f') {
    if (e.size === undefined || e.content === undefined) throw new Error('entryDigest: a file needs size and content');
    o = b.writeBigUInt64BE(BigInt(e.size), o);
    u128(e.content);
  } else if (e.kind === 'l') {
    if (e.target === undefined) throw new Error('entryDigest: a symlink needs its target digest');
    u128(e.target);
  }
  if (e.meta) {
    o = b.writeUInt32BE(e.meta.mode & 0o7777, o);
    o = b.writeUInt32BE(e.meta.uid >>> 0, o);
    o = b.writeUInt32BE(e.meta.gid >>> 0, o);
    o = b.writeBigInt64BE(BigInt(e.meta.mtime[0]), o);
    o = b.writeUInt32BE(e.meta.mtime[1], o);
  }
  return sha128(b.subarray(0, o));
}

/** Sum of digests mod 2^128 (the signature of a set of entries). */
export function sumDigests(ds: Iterable<bigint>): bigint {
  let s = 0n;
  for (const d of ds) s += d;
  return s & MASK128;
}
