/**
 * The walk copies as it goes (src/phases/walk-copy.ts): small plain files of a directory
 * are copied while the walk still reads the rest of the tree, and a job killed then is
 * resumed exactly from its checkpoint. On latfs (every request sleeps), so the walk takes
 * long enough to be caught in the middle; real rank processes, real files, real SQLite.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { isRoot, lastJson, run, scratch, startGroup, until } from '../helpers/run.js';
import { fcpBin, treecmp } from '../helpers/trees.js';
import { mountLatfs, unmountAll } from '../helpers/latfs.js';
import { doneRows } from '../../src/checkpoint/done-batch.js';
import { unpackNames } from '../../src/checkpoint/listing.js';

const hasFuse = spawnSync('sh', ['-c', 'command -v fusermount3']).status === 0;
/** A chain of LEVELS directories, FILES small files in each: its walk is LEVELS reads one after another. */
const LEVELS = 60;
const FILES = 25;

interface Summary { files: number; dirs: number; filesCopied: number; filesSkipped: number; errors: number; spilled: { listRanks: number } }

/** What the rank files of checkpoint `ck` have committed: the paths recorded done, and the names the walk listed. */
function committed(ck: string): { done: Set<string>; listed: number } {
  const done = new Set<string>();
  let listed = 0;
  if (!existsSync(ck)) return { done, listed };
  for (const f of readdirSync(ck).filter((n) => /^g\d+-r\d+\.db$/.test(n))) {
    let db: Database.Database;
    try {
      db = new Database(join(ck, f), { readonly: true, fileMustExist: true });
    } catch {
      continue; // being created
    }
    try {
      for (const b of db.prepare('SELECT rels, nums, status, digests FROM done_batches').all() as { rels: Buffer; nums: Buffer; status: Buffer; digests: Buffer | null }[]) {
        for (const row of doneRows(b.rels, b.nums, b.status, b.digests)) done.add(row[1].toString());
      }
      for (const l of db.prepare('SELECT names FROM listings').all() as { names: Buffer }[]) listed += unpackNames(l.names).length;
    } catch {
      // tables not made yet
    } finally {
      db.close();
    }
  }
  return { done, listed };
}

describe.skipIf(!isRoot || !hasFuse)('the walk copies as it goes (latfs)', () => {
  let s: { dir: string; cleanup: () => void };
  beforeAll(() => {
    s = scratch('overlap-walkcopy');
  });
  afterEach(async () => unmountAll());
  afterAll(() => s?.cleanup());

  it('kill -9 while the walk still reads and files are recorded done: --resume at another -np is exact and copies none of those again', async () => {
    const back = join(s.dir, 'back');
    let dir = join(back, 'src');
    for (let l = 0; l < LEVELS; l++) {
      mkdirSync(dir, { recursive: true });
      for (let f = 0; f < FILES; f++) writeFileSync(join(dir, `f${f}`), `level ${l} file ${f}\n`.repeat(1 + f));
      dir = join(dir, `level${l}`);
    }
    mkdirSync(dir);
    const entries = LEVELS * FILES + LEVELS + 1;
    // 2 ms a request: reading one level (its names and their lstat) takes over 50 ms, the walk seconds.
    const m = await mountLatfs(back, ['--meta-us', '2000', '--data-us', '2000'], 'overlap');
    const src = m.path('src');
    const dst = m.path('dst');
    const ck = join(s.dir, 'ck');
    // Copy items are slowed too, so the copy stays behind the walk as it would on a busy PFS.
    const job = startGroup(process.execPath, [fcpBin, src, dst, '-np', '2', '--checkpoint-dir', ck, '--checkpoint-interval', '0.2', '--test-slow-copy-ms', '50', '--quiet']);
    // Kill every rank as soon as a copied file is recorded in the checkpoint.
    await until(() => job.ended() || committed(ck).done.size > 0, 30_000, 25);
    expect(job.ended(), 'the copy ended before it could be killed').toBe(false);
    job.kill();
    await job.exited;
    const atKill = committed(ck);
    expect(atKill.done.size).toBeGreaterThan(0);
    // The walk had not listed the whole tree: files were recorded done during the walk.
    expect(atKill.listed).toBeLessThan(entries);
    // Each file recorded done is in DST, whole; its inode change time tells a copy made again.
    const ctimes = new Map([...atKill.done].map((p) => [p, lstatSync(join(dst, p), { bigint: true }).ctimeNs]));

    const r = await run(process.execPath, [fcpBin, '--resume', src, dst, '-np', '3', '--checkpoint-dir', ck, '--json'], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    const sum = lastJson<Summary>(r.stdout);
    expect(sum.errors).toBe(0);
    expect(sum.files).toBe(LEVELS * FILES);
    expect(sum.filesSkipped).toBeGreaterThanOrEqual(atKill.done.size);
    expect(sum.filesCopied + sum.filesSkipped).toBe(LEVELS * FILES);
    for (const [p, ctime] of ctimes) expect(lstatSync(join(dst, p), { bigint: true }).ctimeNs, `${p} was copied again`).toBe(ctime);
    await m.unmount();
    const cmp = await treecmp(join(back, 'src'), join(back, 'dst'));
    expect(cmp.lines, cmp.output).toEqual([]);
    expect(cmp.code).toBe(0);
  }, 300_000);
});

describe('the walk copies as it goes (tmpfs)', () => {
  it('lists spilled to the checkpoint: files the walk copied are not copied again from its listings, larger ones are copied after it', async () => {
    const s = scratch('overlap-spill');
    try {
      const src = join(s.dir, 'src');
      // 1,800 symlinks fill a rank's lists past the 1,000 entries --mem-limit 1M leaves
      // in memory; the small files the walk copies are in the same listings.
      for (let d = 0; d < 12; d++) {
        const dir = join(src, `d${d}`);
        mkdirSync(dir, { recursive: true });
        for (let i = 0; i < 150; i++) {
          symlinkSync(`target${i}`, join(dir, `l${i}`));
          writeFileSync(join(dir, `f${i}`), `file ${d} ${i}\n`);
        }
        writeFileSync(join(dir, 'big'), Buffer.alloc(5 << 20, d + 1)); // over 4 MiB: left for the copy phase
      }
      const dst = join(s.dir, 'dst');
      const r = await run(process.execPath, [fcpBin, src, dst, '-np', '1', '--mem-limit', '1M', '--json', '--quiet'], { timeoutMs: 120_000 });
      expect(r.code, r.stderr).toBe(0);
      const sum = lastJson<Summary>(r.stdout);
      expect(sum.spilled.listRanks).toBe(1);
      expect(sum.files).toBe(12 * 151);
      expect(sum.filesCopied).toBe(12 * 151);
      const cmp = await treecmp(src, dst);
      expect(cmp.lines, cmp.output).toEqual([]);
      expect(cmp.code).toBe(0);
    } finally {
      s.cleanup();
    }
  }, 120_000);
});
