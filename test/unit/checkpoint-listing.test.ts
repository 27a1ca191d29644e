/**
 * The walk's checkpoint records: listings (one row per stat'ed batch of a directory)
 * written by a rank, merged by a resume into keyed entries, give back exactly the entries
 * the walk recorded (not the failed or excluded slots), with their metadata and hard-link
 * keys; a spilled list's own entry rows and an older rank file without listings merge too.
 * Small files finished by a native copy batch, recorded as one row, come back as the done
 * rows a resume and --verify need.
 */
import { linkSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RankStore } from '../../src/checkpoint/rank-store.js';
import { readVerifiable } from '../../src/checkpoint/verifiable.js';
import { OP_UP_TO_DATE } from '../../src/native/loader.js';
import { CheckpointDir } from '../../src/checkpoint/checkpoint-dir.js';
import { ResumeState } from '../../src/checkpoint/resume-state.js';
import { NOT_RECORDED, UP_TO_DATE, packNames, unpackNames } from '../../src/checkpoint/listing.js';
import { entryFromStats, putStatRecord, STAT_RECORD_FIELDS, type Entry } from '../../src/model/entry.js';
import { Sqlite } from '../../src/util/cjs-deps.js';

const B = (s: string) => Buffer.from(s, 'latin1');
/** A path in SRC from a latin1 name: one byte per character (names are bytes). */
const abs = (rel: string) => Buffer.concat([Buffer.from(`${src}/`), B(rel)]);

let dir: string;
let src: string;
let ck: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fcp-listing-'));
  src = join(dir, 'src');
  ck = join(dir, 'ck');
  mkdirSync(join(src, 'sub'), { recursive: true });
  mkdirSync(ck);
  writeFileSync(join(src, 'a'), 'aaa');
  linkSync(join(src, 'a'), join(src, 'a-link'));
  symlinkSync('nowhere', join(src, 'l'));
  writeFileSync(abs('x\xff'), 'x');
  writeFileSync(join(src, 'sub', 'deep'), 'deep');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const statOf = (rel: string) => lstatSync(abs(rel), { bigint: true });
/** The entry the walk makes of `rel`, as a resume gets it back (merged.db keeps no st_blocks: a resume's copy looks for holes itself). */
const entryOf = (rel: string): Entry => {
  const e = entryFromStats(0, B(rel), statOf(rel));
  delete e.m.blocks;
  return e;
};
const sortKey = (e: Entry) => `${e.r}:${e.p.toString('hex')}`;
const sorted = (l: Entry[]) => [...l].sort((x, y) => (sortKey(x) < sortKey(y) ? -1 : 1));

/** Stat records of `names` in `rel`, with the given slots failed or excluded. */
function records(rel: string, names: string[], failed: number[] = [], excluded: number[] = []): Float64Array {
  const a = new Float64Array(names.length * STAT_RECORD_FIELDS);
  names.forEach((n, i) => {
    if (failed.includes(i)) a[i * STAT_RECORD_FIELDS] = -2;
    else putStatRecord(a, i, statOf(rel ? `${rel}/${n}` : n));
    if (excluded.includes(i)) a[i * STAT_RECORD_FIELDS] = NOT_RECORDED;
  });
  return a;
}

describe('checkpoint listings', () => {
  it('names pack and unpack byte-exactly (empty name for a root, any bytes but NUL and /)', () => {
    const names = [B(''), B('a'), B('x\xff'), B('\x01 b')];
    expect(unpackNames(packNames(names))).toEqual(names);
    expect(unpackNames(packNames([]))).toEqual([]);
  });

  it('a merge expands listings into the entries the walk recorded; kept entries and completeness as before', () => {
    const store = new RankStore(join(ck, 'g1-r0.db'));
    const rootRec = new Float64Array(STAT_RECORD_FIELDS);
    putStatRecord(rootRec, 0, lstatSync(src, { bigint: true }));
    store.listing(0, B(''), Buffer.alloc(1), rootRec, 1);
    const top = ['a', 'a-link', 'l', 'gone', 'x\xff', 'sub', 'skipped'];
    store.listing(0, B(''), packNames(top.map(B)), records('', top.map((n) => (n === 'gone' || n === 'skipped' ? 'a' : n)), [3], [6]), 5);
    store.listing(0, B('sub'), packNames([B('deep')]), records('sub', ['deep']), 1);
    store.dirComplete(0, B(''));
    store.close();

    const cd = new CheckpointDir(ck, 1000);
    const merged = cd.merge();
    const rs = new ResumeState(merged, 0, 1);
    try {
      expect(rs.isComplete(0, B(''))).toBe(true);
      expect(rs.isComplete(0, B('sub'))).toBe(false);
      // Kept: children of complete directories (not the root, not sub/deep), failed and excluded slots left out.
      const want = ['a', 'a-link', 'l', 'x\xff', 'sub'].map(entryOf);
      const kept = [...rs.keptEntries()];
      expect(sorted(kept)).toEqual(sorted(want));
      const a = kept.find((e) => e.p.equals(B('a')))!;
      expect(a.h).toBeDefined();
      expect(kept.find((e) => e.p.equals(B('a-link')))!.h).toBe(a.h);
      expect(kept.find((e) => e.p.equals(B('l')))!.k).toBe('l');
      // Every recorded entry is in merged.db, with parent and depth (sub/deep too, and the root).
      const db = new Sqlite(merged, { readonly: true });
      const rows = db.prepare('SELECT path, parent, depth FROM entries ORDER BY path').all() as { path: Buffer; parent: Buffer | null; depth: number }[];
      db.close();
      expect(rows.map((r) => r.path.toString('latin1'))).toEqual(['', 'a', 'a-link', 'l', 'sub', 'sub/deep', 'x\xff']);
      expect(rows[0]!.parent).toBeNull();
      expect(rows.find((r) => r.path.equals(B('sub/deep')))).toMatchObject({ parent: B('sub'), depth: 2 });
    } finally {
      rs.close();
    }
  });

  it('kept entries are shared among the ranks of a resume whatever their number', () => {
    const store = new RankStore(join(ck, 'g1-r0.db'));
    const names = ['a', 'a-link', 'l', 'x\xff', 'sub'];
    store.listing(0, B(''), packNames(names.map(B)), records('', names), names.length);
    store.dirComplete(0, B(''));
    store.close();
    const merged = new CheckpointDir(ck, 1000).merge();
    for (const size of [1, 2, 3]) {
      const all: Entry[] = [];
      for (let r = 0; r < size; r++) {
        const rs = new ResumeState(merged, r, size);
        all.push(...rs.keptEntries());
        rs.close();
      }
      expect(sorted(all)).toEqual(sorted(names.map(entryOf)));
    }
  });

  it('entry rows of spilled lists and an older rank file without listings merge as well', () => {
    const store = new RankStore(join(ck, 'g1-r0.db'));
    store.entry(entryOf('a'));
    store.listing(0, B(''), packNames([B('a'), B('l')]), records('', ['a', 'l']), 2);
    store.dirComplete(0, B(''));
    store.close();
    // An older fcp's rank file: entries rows only.
    const old = new Sqlite(join(ck, 'g2-r0.db'));
    old.exec(`CREATE TABLE entries (id INTEGER PRIMARY KEY, root INTEGER NOT NULL, path BLOB NOT NULL, parent BLOB, kind TEXT NOT NULL,
      mode INTEGER, uid INTEGER, gid INTEGER, size INTEGER, nlink INTEGER, dev REAL, ino REAL,
      atime_s INTEGER, atime_ns INTEGER, mtime_s INTEGER, mtime_ns INTEGER, hkey TEXT, depth INTEGER);
      CREATE TABLE complete (root INTEGER NOT NULL, path BLOB NOT NULL);
      CREATE TABLE done (root INTEGER NOT NULL, path BLOB NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,
      size INTEGER NOT NULL, mtime_s INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, digest TEXT);
      CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);`);
    const s = entryOf('sub');
    old.prepare(`INSERT INTO entries (root, path, parent, kind, mode, uid, gid, size, nlink, dev, ino, atime_s, atime_ns, mtime_s, mtime_ns, hkey, depth)
      VALUES (0, ?, ?, 'd', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 1)`).run(s.p, B(''), s.m.mode, s.m.uid, s.m.gid, s.m.size, s.m.nlink, s.m.dev, s.m.ino,
      s.m.atime[0], s.m.atime[1], s.m.mtime[0], s.m.mtime[1]);
    old.close();
    const merged = new CheckpointDir(ck, 1000).merge();
    const rs = new ResumeState(merged, 0, 1);
    try {
      expect(sorted([...rs.keptEntries()])).toEqual(sorted(['a', 'l', 'sub'].map(entryOf)));
    } finally {
      rs.close();
    }
  });
});

describe('files the walk found up to date (--update)', () => {
  it('stay out of this run\'s spilled lists; a merge makes them entries and done rows without a digest, so a resume skips them', () => {
    const store = new RankStore(join(ck, 'g1-r0.db'));
    const names = ['a', 'l', 'x\xff', 'sub'];
    const a = records('', names);
    a[0] = UP_TO_DATE; // 'a' (hard-linked in this tree, but the slot is what counts here)
    a[2 * STAT_RECORD_FIELDS] = UP_TO_DATE; // 'x\xff'
    store.listing(0, B(''), packNames(names.map(B)), a, names.length);
    store.dirComplete(0, B(''));
    // This run's lists, read back from the listings once spilled: only what needs work.
    expect([...store.readListed()].map((e) => e.p.toString('latin1'))).toEqual(['l', 'sub']);
    store.close();
    const merged = new CheckpointDir(ck, 1000).merge();
    const rs = new ResumeState(merged, 0, 1);
    try {
      expect(sorted([...rs.keptEntries()]).map((e) => e.p.toString('latin1'))).toEqual(['a', 'l', 'sub', 'x\xff']);
      const x = entryOf('x\xff');
      expect(rs.doneFor(x).whole).toMatchObject({ size: x.m.size, digest: null });
      expect(rs.doneFor(entryOf('l')).whole).toBeUndefined();
      // changed since (another mtime): not done any more
      expect(rs.doneFor({ ...x, m: { ...x.m, mtime: [x.m.mtime[0] + 1, 0] } }).whole).toBeUndefined();
    } finally {
      rs.close();
    }
  });
});

describe('checkpoint done batches', () => {
  it('a batch row gives back one done row per file copied or up to date, digests only for what was read', () => {
    const store = new RankStore(join(ck, 'g1-r0.db'));
    const rels = ['a', 'x\xff', 'sub/deep', 'failed'].map(B);
    // root, size, mode, uid, gid, atime s/ns, mtime s/ns, blocks (the batch's arguments)
    const nums = new Float64Array([0, 3, 0o644, 0, 0, 1, 2, 100, 5, 8, 1, 1, 0o600, 0, 0, 1, 2, 200, 6, 8, 0, 4, 0o644, 0, 0, 1, 2, 300, 7, -1, 0, 9, 0o644, 0, 0, 1, 2, 400, 8, 8]);
    // -errno, op, hole bytes: copied, copied, up to date, failed
    const status = new Float64Array([0, 0, 0, 0, 0, 0, 0, OP_UP_TO_DATE, 0, -13, 1, 0]);
    const digests = Buffer.alloc(64);
    for (let i = 0; i < 4; i++) digests.fill(i + 1, 16 * i, 16 * i + 16);
    store.doneBatch(packNames(rels), nums, status, digests, 4);
    store.close();
    const hex = (i: number) => Buffer.alloc(16, i + 1).toString('hex');
    // --verify reads a rank's own file: the files read, with their digests, up to the chunk size
    expect([...readVerifiable(join(ck, 'g1-r0.db'), 2)]).toEqual([{ root: 1, path: B('x\xff'), off: -1, len: 1, size: 1, digest: hex(1) }]);
    expect([...readVerifiable(join(ck, 'g1-r0.db'), 1 << 20)].map((r) => r.path.toString('latin1'))).toEqual(['a', 'x\xff']);
    const merged = new CheckpointDir(ck, 1000).merge();
    const db = new Sqlite(merged, { readonly: true });
    const rows = db.prepare('SELECT root, path, off, len, size, mtime_s, mtime_ns, digest FROM done ORDER BY path').all();
    db.close();
    expect(rows).toEqual([
      { root: 0, path: B('a'), off: -1, len: 3, size: 3, mtime_s: 100, mtime_ns: 5, digest: hex(0) },
      { root: 0, path: B('sub/deep'), off: -1, len: 4, size: 4, mtime_s: 300, mtime_ns: 7, digest: null },
      { root: 1, path: B('x\xff'), off: -1, len: 1, size: 1, mtime_s: 200, mtime_ns: 6, digest: hex(1) },
    ]);
    // The resume's view of one of them
    const rs = new ResumeState(merged, 0, 1);
    try {
      expect(rs.doneFor({ r: 0, p: B('sub/deep'), k: 'f', m: { mode: 0o644, uid: 0, gid: 0, size: 4, nlink: 1, dev: 0, ino: 0, atime: [1, 2], mtime: [300, 7] } }).whole).toBeDefined();
    } finally {
      rs.close();
    }
  });
});
