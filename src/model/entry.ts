/**
 * What the walk records about each entry of the source tree, and how it travels.
 *
 * An entry is found by whichever rank stats it and stays in that rank's lists; only work
 * items (which carry entries) move between ranks, so every field is plain data and is
 * validated on arrival.
 */
import type { BigIntStats } from 'node:fs';
import { splitNs, type EntryMeta } from './meta.js';

/** f regular file, d directory, l symlink, p FIFO, s socket, c/b character/block device. */
export type Kind = 'f' | 'd' | 'l' | 'p' | 's' | 'c' | 'b';

export interface Entry {
  /** index of the source root (SRC argument) the entry belongs to */
  r: number;
  /** path relative to that root; empty for the root itself */
  p: Buffer;
  k: Kind;
  m: EntryMeta;
  /** "dev:ino" for regular files with more than one link (exact, from bigint stats) */
  h?: string;
}

export interface Root {
  src: Buffer;
  dst: Buffer;
}

export function kindOf(mode: number): Kind {
  switch (mode & 0o170000) {
    case 0o100000: return 'f';
    case 0o040000: return 'd';
    case 0o120000: return 'l';
    case 0o010000: return 'p';
    case 0o140000: return 's';
    case 0o020000: return 'c';
    case 0o060000: return 'b';
    default: return 'f';
  }
}

/** Identity of an inode for hard-link groups: exact even past 2^53 (Lustre inode numbers). */
export const inodeKey = (devHi: number, devLo: number, inoHi: number, inoLo: number) => `${devHi}.${devLo}:${inoHi}.${inoLo}`;

/**
 * One lstat result in the addon's record layout (statAt, scanDir: STAT_FIELDS numbers per
 * name): 0 err (-errno, 0 when the stat worked), 1 mode, 2 uid, 3 gid, 4 size, 5 nlink,
 * 6-7 dev (high, low 32 bits), 8-9 ino (high, low), 10-11 atime (s, ns), 12-13 mtime,
 * 14 blocks (st_blocks).
 * The walk keeps every result in this shape, with or without the addon, so one record
 * format serves the lists and the checkpoint (see checkpoint/listing.ts).
 */
export const STAT_RECORD_FIELDS = 15;

const hi32 = (x: bigint) => Number(x >> 32n);
const lo32 = (x: bigint) => Number(x & 0xffffffffn);

/** Store a Node lstat result (bigint, exact) as record `i` of `a`. */
export function putStatRecord(a: Float64Array, i: number, st: BigIntStats): void {
  const o = i * STAT_RECORD_FIELDS;
  const [as, ans] = splitNs(st.atimeNs);
  const [ms, mns] = splitNs(st.mtimeNs);
  a[o] = 0;
  a[o + 1] = Number(st.mode); a[o + 2] = Number(st.uid); a[o + 3] = Number(st.gid); a[o + 4] = Number(st.size); a[o + 5] = Number(st.nlink);
  a[o + 6] = hi32(st.dev); a[o + 7] = lo32(st.dev); a[o + 8] = hi32(st.ino); a[o + 9] = lo32(st.ino);
  a[o + 10] = as; a[o + 11] = ans; a[o + 12] = ms; a[o + 13] = mns;
  a[o + 14] = Number(st.blocks);
}

export function entryFromStats(r: number, p: Buffer, st: BigIntStats): Entry {
  const a = new Float64Array(STAT_RECORD_FIELDS);
  putStatRecord(a, 0, st);
  return entryFromStatAt(r, p, a, 0);
}

/** An entry from stat record `i` of `a` (see STAT_RECORD_FIELDS). */
export function entryFromStatAt(r: number, p: Buffer, a: Float64Array, i: number): Entry {
  const o = i * STAT_RECORD_FIELDS;
  const mode = a[o + 1]!;
  const k = kindOf(mode);
  const m: EntryMeta = {
    mode, uid: a[o + 2]!, gid: a[o + 3]!, size: a[o + 4]!, nlink: a[o + 5]!,
    dev: a[o + 6]! * 2 ** 32 + a[o + 7]!, ino: a[o + 8]! * 2 ** 32 + a[o + 9]!,
    atime: [a[o + 10]!, a[o + 11]!], mtime: [a[o + 12]!, a[o + 13]!], blocks: a[o + 14]!,
  };
  const e: Entry = { r, p, k, m };
  if (k === 'f' && m.nlink > 1) e.h = inodeKey(a[o + 6]!, a[o + 7]!, a[o + 8]!, a[o + 9]!);
  return e;
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isTime = (x: unknown): boolean => Array.isArray(x) && x.length === 2 && isNum(x[0]) && Number.isInteger(x[1]) && x[1] >= 0 && x[1] < 1e9;
export const isBuf = (x: unknown): x is Buffer => Buffer.isBuffer(x) || x instanceof Uint8Array;

export function isMeta(x: unknown): x is EntryMeta {
  if (typeof x !== 'object' || x === null) return false;
  const m = x as Record<string, unknown>;
  return isNum(m.mode) && isNum(m.uid) && isNum(m.gid) && isNum(m.size) && m.size >= 0 && isNum(m.ino) && isNum(m.dev) && isNum(m.nlink) && isTime(m.atime) && isTime(m.mtime)
    && (m.blocks === undefined || (Number.isInteger(m.blocks) && (m.blocks as number) >= 0));
}

const KINDS = new Set(['f', 'd', 'l', 'p', 's', 'c', 'b']);

export function isEntry(x: unknown, roots: number): x is Entry {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Record<string, unknown>;
  return Number.isInteger(e.r) && (e.r as number) >= 0 && (e.r as number) < roots && isBuf(e.p) && !hasDotDot(e.p as Buffer)
    && typeof e.k === 'string' && KINDS.has(e.k) && isMeta(e.m) && (e.h === undefined || typeof e.h === 'string');
}

/** A relative path from a peer must stay inside its root: no '..' component, not absolute. */
export function hasDotDot(p: Uint8Array): boolean {
  if (p.length > 0 && p[0] === 0x2f) return true;
  // A byte scan (every entry a peer sends is checked): a component is '..' when two dots
  // sit between slashes or the ends.
  for (let i = 0; i + 1 < p.length; i++) {
    if (p[i] === 0x2e && p[i + 1] === 0x2e && (i === 0 || p[i - 1] === 0x2f) && (i + 2 === p.length || p[i + 2] === 0x2f)) return true;
  }
  return false;
}
