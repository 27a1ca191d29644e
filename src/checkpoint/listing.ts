/**
 * How the walk records what it found: one row per stat'ed batch of one directory (a
 * "listing"), not one row per entry.
 *
 * A listing is the directory's path, its names packed NUL-terminated, and the batch's
 * stat records exactly as the walk got them (model/entry.ts STAT_RECORD_FIELDS doubles per
 * name, host byte order), so recording costs the walk one row per batch of up to 512
 * names and no work per entry. A resume's merge expands listings into the keyed entries
 * table of merged.db (entryRow), where the lookups happen.
 *
 * A slot whose first field is not 0 holds no entry: a failed lstat (-errno) or a name
 * the walk chose not to record (NOT_RECORDED, e.g. excluded by a filter).
 */
import { depthOf, joinPath } from '../model/paths.js';
import { entryFromStatAt, STAT_RECORD_FIELDS, type Entry } from '../model/entry.js';
import type { FileRun } from '../model/file-run.js';

/** Marks a slot the walk did not record (positive, so never mistaken for -errno). */
export const NOT_RECORDED = 1;

/**
 * Marks a regular file the walk found up to date in DST (--update's time rule, see
 * model/update-rule.ts): recorded, and already done. This run has no more work for it (it
 * never enters the file lists); a resume's merge makes it an entry and a done row (no
 * digest: not read), as if the copy had found it up to date.
 */
export const UP_TO_DATE = 2;

/** Names packed for a listing: each followed by a NUL (the layout scanDir returns). */
export function packNames(names: Buffer[]): Buffer {
  let len = 0;
  for (const n of names) len += n.length + 1;
  const out = Buffer.allocUnsafe(len);
  let o = 0;
  for (const n of names) {
    n.copy(out, o);
    o += n.length;
    out[o++] = 0;
  }
  return out;
}

/** The NUL-terminated names of a packed buffer, as views (no copies). */
export function unpackNames(packed: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let s = 0; s < packed.length; ) {
    let e = packed.indexOf(0, s);
    if (e < 0) e = packed.length;
    out.push(packed.subarray(s, e));
    s = e + 1;
  }
  return out;
}

/** An array of doubles as the bytes stored in a row (a view, no copy; host byte order). */
export const statBytes = (a: Float64Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Doubles stored by statBytes, back as an array (copied: SQLite hands blobs over at any byte offset). */
export function doublesOf(b: Buffer): Float64Array {
  const a = new Float64Array(b.length / 8);
  Buffer.from(a.buffer).set(b);
  return a;
}

/**
 * An entries-table row (column order of rank-store.ts ENTRY_COLUMNS) for one entry: the
 * same values whether the entry was recorded alone or expanded from a listing.
 */
export function entryRow(e: Entry): unknown[] {
  const m = e.m;
  const slash = e.p.lastIndexOf(0x2f);
  const parent = e.p.length === 0 ? null : slash < 0 ? Buffer.alloc(0) : e.p.subarray(0, slash);
  return [e.r, e.p, parent, e.k, m.mode, m.uid, m.gid, m.size, m.nlink, m.dev, m.ino,
    m.atime[0], m.atime[1], m.mtime[0], m.mtime[1], e.h ?? null, depthOf(e.p)];
}

/**
 * The entries of one listing row. `dir` is the directory's path relative to its root; a
 * root itself is recorded as the single name '' under ''. `upToDate`: whether files the
 * walk found up to date are among them (a merge: yes; this run's own lists: no, they
 * need no work).
 */
export function* listingEntries(root: number, dir: Buffer, names: Buffer, stats: Buffer, upToDate: 'include' | 'skip' = 'include'): Generator<Entry> {
  const a = doublesOf(stats);
  const list = unpackNames(names);
  if (a.length !== list.length * STAT_RECORD_FIELDS) throw new Error(`a listing of ${list.length} names has ${a.length} stat fields`);
  for (let i = 0; i < list.length; i++) {
    const slot = a[i * STAT_RECORD_FIELDS];
    if (slot !== 0 && !(slot === UP_TO_DATE && upToDate === 'include')) continue;
    yield entryFromStatAt(root, joinPath(dir, list[i]!), a, i);
  }
}

/**
 * What listingEntries gives with upToDate 'skip', with the plain files (regular, one
 * link, a name) as one packed run (model/file-run.ts) and everything else as entries: the
 * copy of a spilled list takes a listing as the walk recorded it, no object per file.
 */
export function* listingPacked(root: number, dir: Buffer, names: Buffer, stats: Buffer): Generator<FileRun | Entry> {
  const a = doublesOf(stats);
  const list = unpackNames(names);
  if (a.length !== list.length * STAT_RECORD_FIELDS) throw new Error(`a listing of ${list.length} names has ${a.length} stat fields`);
  const idx: number[] = [];
  for (let i = 0; i < list.length; i++) {
    const o = i * STAT_RECORD_FIELDS;
    if (a[o] !== 0) continue;
    if ((a[o + 1]! & S_IFMT) === S_IFREG && a[o + 5] === 1 && list[i]!.length > 0) idx.push(i);
    else yield entryFromStatAt(root, joinPath(dir, list[i]!), a, i);
  }
  if (idx.length > 0) yield { r: root, dir, names: list, stats: a, idx };
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** The entries of one listing row as entries-table rows (a merge). */
export function* listingRows(root: number, dir: Buffer, names: Buffer, stats: Buffer): Generator<unknown[]> {
  for (const e of listingEntries(root, dir, names, stats)) yield entryRow(e);
}

/**
 * The `done` rows (root, path, off, len, size, mtime_s, mtime_ns, digest) of the files one
 * listing row marks UP_TO_DATE: whole files, not read (no digest), as doneRows gives them
 * for files the copy found up to date.
 */
export function* listingDoneRows(root: number, dir: Buffer, names: Buffer, stats: Buffer): Generator<[number, Buffer, number, number, number, number, number, null]> {
  const a = doublesOf(stats);
  const list = unpackNames(names);
  for (let i = 0; i < list.length; i++) {
    const o = i * STAT_RECORD_FIELDS;
    if (a[o] !== UP_TO_DATE) continue;
    yield [root, joinPath(dir, list[i]!), -1, a[o + 4]!, a[o + 4]!, a[o + 12]!, a[o + 13]!, null];
  }
}
