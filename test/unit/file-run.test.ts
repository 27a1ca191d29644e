/**
 * Plain files kept packed (src/model/file-run.ts): the walk's lists hold them as runs and
 * give back the same entries as if each had been added alone (in memory and once
 * spilled); the copy cuts runs into packed batches in copyFiles' layout, bounded like
 * batches(); a packed copy item is checked like every item that arrives from a peer.
 */
import { mkdtempSync, rmSync, writeFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { entryFromStatAt, putStatRecord, STAT_RECORD_FIELDS, type Entry } from '../../src/model/entry.js';
import { PACKED_NUMS, keptRun, packedEntry, runEntries, type FileRun } from '../../src/model/file-run.js';
import { packedBatches } from '../../src/copy/plan.js';
import { isCopyItem, itemBytes, itemOps } from '../../src/copy/copy-item.js';
import { statBytes } from '../../src/checkpoint/listing.js';
import { WalkLists } from '../../src/walk/walk-lists.js';
import { RankStore } from '../../src/checkpoint/rank-store.js';
import { COPY_NUMS } from '../../src/native/loader.js';

const B = (s: string) => Buffer.from(s, 'latin1');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cpu-file-run-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A run of `n` real files of sizes 0, 100, 200... in directory 'd' (slot 1 left out: a subdirectory, say). */
function makeRun(n: number, r = 0): FileRun {
  const names: Buffer[] = [];
  const stats = new Float64Array((n + 1) * STAT_RECORD_FIELDS);
  const idx: number[] = [];
  for (let i = 0; i <= n; i++) {
    const name = `f${i}\xe9`;
    writeFileSync(join(dir, `x${i}`), Buffer.alloc(i * 100));
    names.push(B(name));
    putStatRecord(stats, i, lstatSync(join(dir, `x${i}`), { bigint: true }));
    if (i !== 1) idx.push(i);
  }
  return { r, dir: B('d'), names, stats, idx };
}

const plain = (e: Entry) => ({ r: e.r, p: e.p.toString('latin1'), k: e.k, m: e.m, h: e.h });

describe('file runs', () => {
  it('unpack to the entries the walk would have made one by one', () => {
    const run = makeRun(5);
    const got = [...runEntries(run)].map(plain);
    const want = run.idx.map((i) => plain(entryFromStatAt(0, B(`d/f${i}\xe9`), run.stats, i)));
    expect(got).toEqual(want);
    expect(got).toHaveLength(5);
  });

  it('a run of few files among many slots keeps a copy of their slots only, with the same entries', () => {
    const batch = makeRun(6);
    const few = keptRun(batch.r, batch.dir, batch.names, batch.stats, [2, 5]);
    expect(few.stats).toHaveLength(2 * STAT_RECORD_FIELDS);
    expect(few.names).toHaveLength(2);
    expect([...runEntries(few)].map(plain)).toEqual([2, 5].map((i) => plain(entryFromStatAt(0, B(`d/f${i}\xe9`), batch.stats, i))));
    // its names are copies, not views of the batch's
    batch.names[2]![0] = 0x5a;
    expect(few.names[0]!.toString('latin1')).toBe('f2\xe9');
    // half or more of the batch: kept as it is
    const most = keptRun(batch.r, batch.dir, batch.names, batch.stats, [0, 2, 3, 4]);
    expect(most.stats).toBe(batch.stats);
  });

  it('WalkLists gives runs back as files, beside loose files, and as runs', () => {
    const lists = new WalkLists();
    const run = makeRun(4);
    const loose = entryFromStatAt(0, B('loose'), run.stats, 0);
    lists.add(loose);
    lists.addRun(run);
    expect([...lists.files()].map((e) => e.p.toString('latin1'))).toEqual(['loose', 'd/f0\xe9', 'd/f2\xe9', 'd/f3\xe9', 'd/f4\xe9']);
    expect([...lists.filesPacked()]).toEqual([loose, run]);
  });

  it('WalkLists past its budget spills runs as entries (scratch store): the same files, no runs left', () => {
    const store = new RankStore(join(dir, 'scratch.db'));
    try {
      const lists = new WalkLists(store, 3, false);
      const a = makeRun(3);
      const b = makeRun(3);
      lists.addRun(a);
      lists.addRun(b); // over budget: both spill
      const c = makeRun(2);
      lists.addRun(c); // after the spill: straight to the store
      expect(lists.isSpilled).toBe(true);
      expect([...lists.filesPacked()].some((x) => 'idx' in x)).toBe(false);
      const want = [a, b, c].flatMap((r) => [...runEntries(r)].map(plain));
      const got = [...lists.files()].map(plain);
      expect(got.map((e) => e.p).sort()).toEqual(want.map((e) => e.p).sort());
      expect(got).toHaveLength(8);
    } finally {
      store.close();
    }
  });
});

describe('spilled lists from the checkpoint\'s listings', () => {
  it('come back with plain files as runs and the rest (a hard-linked file, a directory) as entries', () => {
    const store = new RankStore(join(dir, 'rank.db'));
    try {
      const lists = new WalkLists(store, 2, true);
      const run = makeRun(4); // slot 1 stays out of the run: make it a hard-linked file
      run.stats[1 * STAT_RECORD_FIELDS + 5] = 2;
      const linked = entryFromStatAt(0, B('d/f1\xe9'), run.stats, 1);
      // as the walk does: the batch's listing, then the lists
      store.listing(0, run.dir, Buffer.concat(run.names.flatMap((n) => [n, Buffer.alloc(1)])), run.stats, 5);
      lists.add(linked);
      lists.addRun(run); // over the budget: spilled, files dropped (the listing has them)
      expect(lists.isSpilled).toBe(true);
      const back = [...lists.filesPacked()];
      expect(back.filter((x): x is Entry => !('idx' in x)).map(plain)).toEqual([plain(linked)]);
      const runs = back.filter((x): x is FileRun => 'idx' in x);
      expect(runs).toHaveLength(1);
      expect([...runEntries(runs[0]!)].map(plain)).toEqual([...runEntries(run)].map(plain));
      expect([...lists.hardlinked()].map(plain)).toEqual([plain(linked)]);
      // files() as before: every file, one by one
      expect([...lists.files()].map((e) => e.p.toString('latin1')).sort()).toEqual(['d/f0\xe9', 'd/f1\xe9', 'd/f2\xe9', 'd/f3\xe9', 'd/f4\xe9']);
    } finally {
      store.close();
    }
  });
});

describe('files the walk handed to the copy (phases/walk-copy.ts)', () => {
  it('are left out of spilled lists read back from the listings, which still hold them; larger ones and the rest come back', () => {
    const store = new RankStore(join(dir, 'rank.db'));
    try {
      const lists = new WalkLists(store, 1, true);
      lists.handsOnFilesUpTo(250); // sizes 0, 200 (f0, f2) were copied by the walk
      const run = makeRun(4);
      run.stats[1 * STAT_RECORD_FIELDS + 5] = 2; // slot 1: a hard-linked file, of 100 bytes
      const linked = entryFromStatAt(0, B('d/f1\xe9'), run.stats, 1);
      store.listing(0, run.dir, Buffer.concat(run.names.flatMap((n) => [n, Buffer.alloc(1)])), run.stats, 5);
      lists.add(linked);
      lists.addRun({ ...run, idx: [3, 4] }); // the walk keeps only the larger plain files
      expect(lists.isSpilled).toBe(true);
      const names = (xs: Iterable<Entry | FileRun>) => [...xs].flatMap((x) => ('idx' in x ? [...runEntries(x)] : [x])).map((e) => e.p.toString('latin1')).sort();
      expect(names(lists.filesPacked())).toEqual(['d/f1\xe9', 'd/f3\xe9', 'd/f4\xe9']);
      expect(names(lists.files())).toEqual(['d/f1\xe9', 'd/f3\xe9', 'd/f4\xe9']);
    } finally {
      store.close();
    }
  });
});

describe('packedBatches', () => {
  it('packs files up to the size limit in copyFiles layout, bounded in count', () => {
    const run = makeRun(6);
    const cut = [...packedBatches([run], 450, 2)];
    // sizes 0, 200, 300, 400, 500, 600: 500 and 600 are over the limit
    expect(cut.map((b) => b.rels.map((p) => p.toString('latin1')))).toEqual([['d/f0\xe9', 'd/f2\xe9'], ['d/f3\xe9', 'd/f4\xe9']]);
    for (const b of cut) {
      expect(b.nums).toHaveLength(b.rels.length * PACKED_NUMS);
      b.rels.forEach((p, i) => {
        const e = packedEntry(b.rels, b.nums, i);
        const orig = entryFromStatAt(0, p, run.stats, Number(p.toString('latin1').slice(3, -1)));
        expect(e.m.size).toBe(orig.m.size);
        expect([e.m.mode, e.m.uid, e.m.gid, e.m.atime, e.m.mtime, e.m.blocks]).toEqual([orig.m.mode, orig.m.uid, orig.m.gid, orig.m.atime, orig.m.mtime, orig.m.blocks]);
      });
    }
  });

  it('cuts by bytes too, and over runs', () => {
    const cut = [...packedBatches([makeRun(3), makeRun(3)], 1000, 64, 250)];
    expect(cut.map((b) => b.rels.length)).toEqual([3, 3]);
    for (const b of cut) expect(b.nums).toHaveLength(b.rels.length * PACKED_NUMS);
  });

  it('PACKED_NUMS is copyFiles\' count of numbers per file', () => {
    expect(PACKED_NUMS).toBe(COPY_NUMS);
  });
});

describe('packed copy items', () => {
  const item = () => {
    const [b] = [...packedBatches([makeRun(3)], 1e9)];
    return { t: 'p', p: b!.rels, n: statBytes(b!.nums) } as const;
  };

  it('are accepted when whole, and cost their bytes and one operation per file', () => {
    const i = item();
    expect(isCopyItem(i, 1)).toBe(true);
    expect(itemBytes(i)).toBe(0 + 200 + 300);
    expect(itemOps(i)).toBe(3);
    // as they arrive: numbers at an odd byte offset
    const odd = Buffer.alloc(i.n.length + 1).subarray(1);
    i.n.copy(odd);
    expect(isCopyItem({ ...i, n: odd }, 1)).toBe(true);
  });

  it('are refused with a path out of its root, a root out of range, or numbers that do not fit', () => {
    const i = item();
    expect(isCopyItem({ ...i, p: [B('../x'), ...i.p.slice(1)] }, 1)).toBe(false);
    expect(isCopyItem({ ...i, p: [B('/etc/passwd'), ...i.p.slice(1)] }, 1)).toBe(false);
    expect(isCopyItem({ ...i, p: i.p.slice(1) }, 1)).toBe(false);
    expect(isCopyItem(i, 0)).toBe(false);
    const nums = new Float64Array(i.n.length / 8);
    Buffer.from(nums.buffer).set(i.n);
    for (const [k, v] of [[1, -1], [6, 1e9], [8, 0.5], [2, NaN]] as const) {
      const bad = nums.slice();
      bad[PACKED_NUMS + k] = v;
      expect(isCopyItem({ ...i, n: statBytes(bad) }, 1)).toBe(false);
    }
  });
});
