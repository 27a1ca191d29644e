/**
 * One entry's checksum record: what a sum file line holds, what --check and --compare
 * compare, and what ranks send rank 0 (as a tuple, validated on arrival).
 */
import type { Entry, Kind } from '../model/entry.js';
import { isBuf } from '../model/entry.js';
import { entryDigest, type EntryMetaDigest } from './entry-digest.js';
import { fromHex, isHex128, toHex } from './hasher.js';

export interface SumRecord {
  /** root index (position among the PATHs) */
  r: number;
  /** path relative to the root, empty for the root itself */
  p: Buffer;
  k: Kind;
  /** files: size; symlinks: target length; null otherwise */
  size: number | null;
  /** entry digest, hex (empty when the entry could not be read) */
  dig: string;
  /** files: content digest; symlinks: target digest (hex); null otherwise */
  content: string | null;
  /** with --meta */
  meta: EntryMetaDigest | null;
  /** files of more than one chunk: [offset, length, partial digest hex], by offset */
  chunks: [number, number, string][] | null;
  /** the entry could not be read (an error was reported); not part of the signature */
  err: boolean;
}

/** Build a record (and its digest) from a walked entry and what was read. */
export function makeRecord(e: Entry, o: {
  digestRoot: number;
  meta: boolean;
  content?: bigint;
  target?: bigint;
  targetLength?: number;
  chunks?: [number, number, string][] | null;
  err?: boolean;
}): SumRecord {
  const meta: EntryMetaDigest | null = o.meta ? { mode: e.m.mode & 0o7777, uid: e.m.uid, gid: e.m.gid, mtime: [e.m.mtime[0], e.m.mtime[1]] } : null;
  const size = e.k === 'f' ? e.m.size : e.k === 'l' ? (o.targetLength ?? e.m.size) : null;
  const content = e.k === 'f' ? o.content : e.k === 'l' ? o.target : undefined;
  const rec: SumRecord = {
    r: e.r, p: Buffer.from(e.p), k: e.k, size,
    dig: '',
    content: content === undefined ? null : toHex(content),
    meta, chunks: o.chunks ?? null, err: o.err ?? false,
  };
  if (!rec.err) {
    rec.dig = toHex(entryDigest({
      root: o.digestRoot, path: rec.p, kind: rec.k, size: rec.size ?? undefined,
      content: e.k === 'f' ? o.content : undefined, target: e.k === 'l' ? o.target : undefined, meta: meta ?? undefined,
    }));
  }
  return rec;
}

/**
 * A regular file's record (without --meta) from digests already made, as hex: what
 * makeRecord gives for `content` (the native hashFiles job computes both digests off the
 * main thread, where a SHA-256 per file was most of fsum's main-thread time per small file).
 */
export function fileRecord(e: Entry, content: string, dig: string): SumRecord {
  return { r: e.r, p: Buffer.from(e.p), k: 'f', size: e.m.size, dig, content, meta: null, chunks: null, err: false };
}

/** The entry digest a record stands for (recomputed from its fields). */
export function recordDigest(rec: SumRecord, digestRoot: number): bigint {
  return entryDigest({
    root: digestRoot,
    path: rec.p,
    kind: rec.k,
    size: rec.size ?? undefined,
    content: rec.k === 'f' && rec.content ? fromHex(rec.content) : undefined,
    target: rec.k === 'l' && rec.content ? fromHex(rec.content) : undefined,
    meta: rec.meta ?? undefined,
  });
}

export function compareRecords(a: SumRecord, b: SumRecord): number {
  return a.r - b.r || Buffer.compare(a.p, b.p);
}

/** Wire form: [r, p, k, size|-1, dig, content|'', meta|0, chunks|0, err 0/1] */
export type RecordTuple = [number, Buffer, string, number, string, string, [number, number, number, number, number] | 0, [number, number, string][] | 0, number];

export function toTuple(x: SumRecord): RecordTuple {
  return [
    x.r, x.p, x.k, x.size ?? -1, x.dig, x.content ?? '',
    x.meta ? [x.meta.mode, x.meta.uid, x.meta.gid, x.meta.mtime[0], x.meta.mtime[1]] : 0,
    x.chunks ?? 0, x.err ? 1 : 0,
  ];
}

export function fromTuple(t: RecordTuple): SumRecord {
  const m = t[6];
  return {
    r: t[0], p: Buffer.from(t[1]), k: t[2] as Kind, size: t[3] < 0 ? null : t[3], dig: t[4], content: t[5] === '' ? null : t[5],
    meta: m === 0 ? null : { mode: m[0], uid: m[1], gid: m[2], mtime: [m[3], m[4]] },
    chunks: t[7] === 0 ? null : t[7], err: t[8] === 1,
  };
}

const KINDS = new Set(['f', 'd', 'l', 'p', 's', 'c', 'b']);
const isNat = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
const isInt = (x: unknown): x is number => Number.isSafeInteger(x);

export function isRecordTuple(x: unknown): x is RecordTuple {
  if (!Array.isArray(x) || x.length !== 9) return false;
  const [r, p, k, size, dig, content, meta, chunks, err] = x as unknown[];
  if (!isNat(r) || !isBuf(p) || typeof k !== 'string' || !KINDS.has(k) || !isInt(size) || size < -1) return false;
  if (!(dig === '' || isHex128(dig)) || !(content === '' || isHex128(content)) || !(err === 0 || err === 1)) return false;
  if (meta !== 0 && !(Array.isArray(meta) && meta.length === 5 && meta.every(isInt) && meta[4] >= 0 && meta[4] < 1e9)) return false;
  if (chunks !== 0 && !(Array.isArray(chunks) && chunks.every((c) => Array.isArray(c) && c.length === 3 && isNat(c[0]) && isNat(c[1]) && isHex128(c[2])))) return false;
  return true;
}

export const isRecordTuples = (x: unknown): x is RecordTuple[] => Array.isArray(x) && x.every(isRecordTuple);
