/**
 * --update's time rule, written once: DST's entry is left alone, unread, when it is a
 * regular file of the source's size and mtime to the nanosecond (dsync's rule).
 *
 * Every TypeScript caller decides through `sameByTime` (the walk on stat records, the
 * copy's file-by-file path, large files, --dry-run). The native batch applies the same rule
 * in C++ (native/src/batch.cc copyOne, flag F_UPDATE); test/unit/update-rule.test.ts runs
 * both over one table of cases so that they cannot drift apart.
 */
import { STAT_RECORD_FIELDS } from './entry.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** DST's side of the rule: what an lstat of it gave. */
export interface DstFacts {
  mode: number;
  size: number;
  mtime: readonly [number, number];
}

/** The source's side: size and mtime (s, ns) from the walk. */
export interface SrcFacts {
  size: number;
  mtime: readonly [number, number];
}

/** The rule itself. */
export function sameByTime(src: SrcFacts, dst: DstFacts): boolean {
  return (dst.mode & S_IFMT) === S_IFREG && dst.size === src.size && dst.mtime[0] === src.mtime[0] && dst.mtime[1] === src.mtime[1];
}

/**
 * The rule on two stat records (model/entry.ts layout): record `i` of `src` (a regular file)
 * against record `i` of `dst`, which may hold a failed lstat (-errno: not up to date).
 * Reads the numbers in place: no object per file.
 */
export function recordsSameByTime(src: Float64Array, dst: Float64Array, i: number): boolean {
  const o = i * STAT_RECORD_FIELDS;
  return dst[o] === 0 && (dst[o + 1]! & S_IFMT) === S_IFREG && dst[o + 4] === src[o + 4]
    && dst[o + 12] === src[o + 12] && dst[o + 13] === src[o + 13];
}

/**
 * --update for a directory's metadata (set last, deepest first): DST's directory already
 * has the source's permission bits, owner (when `chown`: only root sets it) and mtime to
 * the nanosecond, so setting them again would change nothing but its ctime. As for files,
 * the atime is not compared (anyone listing DST moves it: relatime updates the atime of a
 * directory whose ctime is newer, and ours is, from setting its times), nor are extended
 * attributes (a change to them alone does not touch the mtime).
 * `dst`: DST's lstat record (model/entry.ts layout).
 */
export function dirMetaSame(src: { mode: number; uid: number; gid: number; mtime: readonly [number, number] }, dst: Float64Array, chown: boolean): boolean {
  return dst[0] === 0 && (dst[1]! & S_IFMT) === 0o040000 && (dst[1]! & 0o7777) === (src.mode & 0o7777)
    && (!chown || (dst[2] === src.uid && dst[3] === src.gid))
    && dst[12] === src.mtime[0] && dst[13] === src.mtime[1];
}
