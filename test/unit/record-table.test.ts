/**
 * fsum's bounded-memory record path: the SQLite record table gives records back intact
 * and in compareRecords order, the merge-join diff gives what diffRecords gives, and the
 * streaming sum file reader reads what parseSumFile parses.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import { MASK128, fromHex, initHashing, toHex } from '../../src/checksum/hasher.js';
import { RecordTable } from '../../src/checksum/record-table.js';
import { compareRecords, recordDigest, type SumRecord } from '../../src/checksum/records.js';
import { diffRecords, diffSorted } from '../../src/checksum/diff.js';
import { parseSumFile, readSumFile, writeSumFile, SumFileError } from '../../src/checksum/sumfile.js';
import { rng } from '../helpers/rng.js';

beforeAll(async () => {
  await initHashing();
});

const hex = (n: number) => n.toString(16).padStart(32, '0');
const PATHS = ['', 'a', 'a b', 'a/b', 'a\x00', 'b', '\xff', 'z/\x01'].map((s) => Buffer.from(s, 'latin1'));

/** Records with fake digests (diffs compare fields, not digests). */
function randomRecords(rand: (n: number) => number, n: number): SumRecord[] {
  const seen = new Set<string>();
  const out: SumRecord[] = [];
  for (let i = 0; i < n; i++) {
    const r = rand(2);
    const p = Buffer.concat([PATHS[rand(PATHS.length)]!, Buffer.from(String(rand(5)))]);
    const k = `${r}:${p.toString('hex')}`;
    if (seen.has(k)) continue;
    seen.add(k);
    const kind = (['f', 'd', 'l'] as const)[rand(3)]!;
    const err = rand(10) === 0;
    out.push({
      r, p, k: kind,
      size: kind === 'd' ? null : rand(3),
      dig: err ? '' : hex(rand(3)),
      content: kind === 'd' || err ? null : hex(rand(2) + 100),
      meta: rand(2) ? { mode: 0o644 + rand(2), uid: rand(2), gid: 5, mtime: [rand(2) - 1, 999_999_999] } : null,
      chunks: kind === 'f' && rand(2) ? [[0, 4, hex(rand(2))], [4, 4, hex(7)]] : null,
      err,
    });
  }
  return out;
}

describe('RecordTable', () => {
  it('gives every record back intact, in (root, path) order when ordered', () => {
    const rand = rng(7);
    const recs = randomRecords(rand, 300);
    const t = new RecordTable({ ordered: true });
    const heap = new RecordTable({ ordered: false });
    try {
      for (const x of recs) {
        t.add(x);
        heap.add(x);
      }
      const sorted = [...recs].sort(compareRecords);
      expect([...t.sorted()]).toEqual(sorted);
      expect([...t.sorted({ readable: true })]).toEqual(sorted.filter((x) => !x.err));
      expect(t.count({ readable: true })).toBe(recs.filter((x) => !x.err).length);
      expect([...t.sorted({ root: 1, as: 0 })]).toEqual(sorted.filter((x) => x.r === 1).map((x) => ({ ...x, r: 0 })));
      expect(heap.count()).toBe(recs.length);
      const back = new RecordTable({ ordered: true });
      back.addTuples([...heap.tuples()]);
      expect([...back.sorted()]).toEqual(sorted);
      back.close();
    } finally {
      t.close();
      heap.close();
    }
  });
});

describe('diffSorted', () => {
  it('finds what diffRecords finds, in the same order', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = rng(seed);
      const a = randomRecords(rand, 60).filter((x) => seed % 2 === 0 || !x.err);
      const b = randomRecords(rand, 60);
      // plenty of shared keys: b also takes some of a's records, as they are or changed
      const keys = new Set(b.map((x) => `${x.r}:${x.p.toString('hex')}`));
      for (const x of a) {
        if (keys.has(`${x.r}:${x.p.toString('hex')}`) || rand(3) === 0) continue;
        b.push(rand(2) ? { ...x } : { ...x, dig: hex(rand(3) + 50), size: x.size === null ? null : x.size + rand(2) });
      }
      const sort = (xs: SumRecord[]) => [...xs].sort(compareRecords);
      const want = diffRecords(a, b);
      expect(new Set(want.map((d) => d.kind)).size, `seed ${seed}`).toBeGreaterThan(1);
      expect([...diffSorted(sort(a), sort(b))]).toEqual(want);
    }
  });
});

describe('readSumFile', () => {
  it('reads, record by record, what parseSumFile parses, and refuses what it refuses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fsum-unit-'));
    try {
      const recs = randomRecords(rng(3), 200).filter((x) => !x.err && x.chunks === null && x.meta === null);
      // real digests, so that the file verifies
      const records = recs.map((x) => ({ ...x, dig: toHex(recordDigest(x, x.r)) }));
      const signature = toHex(records.reduce((s, x) => (s + fromHex(x.dig)) & MASK128, 0n));
      const path = join(dir, 'sums');
      await writeSumFile(path, { chunk: 1 << 20, meta: false, rootPaths: [Buffer.from('/a'), Buffer.from('/b c')], signature, records });
      const text = readFileSync(path, 'latin1');
      const whole = parseSumFile(text);
      const got: SumRecord[] = [];
      const head = await readSumFile(path, (x) => got.push(x));
      expect(got).toEqual(whole.records);
      expect(head.signature).toBe(signature);
      expect(head.rootPaths.map((p) => p.toString())).toEqual(['/a', '/b c']);
      for (const bad of [text.slice(0, -1), text.replace(/\n[^\n]*\n$/, '\n'), `${text}# trailing comment\nxyz\n`, '']) {
        writeFileSync(path, bad, 'latin1');
        await expect(readSumFile(path, () => {})).rejects.toThrow(SumFileError);
      }
      await expect(readSumFile(join(dir, 'nope'), () => {})).rejects.toThrow(/ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
