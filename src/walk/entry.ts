/**
 * What the walk records about each entry of the source tree, and how it travels.
 *
 * An entry is found by whichever rank stats it and stays in that rank's lists; only work
 * items (which carry entries) move between ranks, so every field is plain data and is
 * validated on arrival.
 */
import type { BigIntStats } from 'node:fs';
import { metaFromBigStats, type EntryMeta } from '../copy/metadata.js';

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

export function entryFromStats(r: number, p: Buffer, st: BigIntStats): Entry {
  const m = metaFromBigStats(st);
  const k = kindOf(m.mode);
  const e: Entry = { r, p, k, m };
  if (k === 'f' && st.nlink > 1n) e.h = `${st.dev}:${st.ino}`;
  return e;
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isTime = (x: unknown): boolean => Array.isArray(x) && x.length === 2 && isNum(x[0]) && Number.isInteger(x[1]) && x[1] >= 0 && x[1] < 1e9;
export const isBuf = (x: unknown): x is Buffer => Buffer.isBuffer(x) || x instanceof Uint8Array;

export function isMeta(x: unknown): x is EntryMeta {
  if (typeof x !== 'object' || x === null) return false;
  const m = x as Record<string, unknown>;
  return isNum(m.mode) && isNum(m.uid) && isNum(m.gid) && isNum(m.size) && m.size >= 0 && isNum(m.ino) && isNum(m.dev) && isNum(m.nlink) && isTime(m.atime) && isTime(m.mtime);
}

const KINDS = new Set(['f', 'd', 'l', 'p', 's', 'c', 'b']);

export function isEntry(x: unknown, roots: number): x is Entry {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Record<string, unknown>;
  return Number.isInteger(e.r) && (e.r as number) >= 0 && (e.r as number) < roots && isBuf(e.p) && !hasDotDot(e.p as Buffer)
    && typeof e.k === 'string' && KINDS.has(e.k) && isMeta(e.m) && (e.h === undefined || typeof e.h === 'string');
}

/** A relative path from a peer must stay inside its root: no '..' component, not absolute. */
export function hasDotDot(p: Buffer): boolean {
  if (p.length > 0 && p[0] === 0x2f) return true;
  for (const part of Buffer.from(p).toString('latin1').split('/')) if (part === '..') return true;
  return false;
}
