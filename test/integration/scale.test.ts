/**
 * Scale: a memory budget so small that queues and file lists must spill to SQLite, and
 * 64 ranks on a 2-core machine. Nothing may be lost either way.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, repoRoot, run, scratch, toolsDir } from '../helpers/run.js';

const fcp = join(repoRoot, 'bin/fcp.js');
let work: { dir: string; cleanup: () => void };

interface Summary { files: number; errors: number; spilled: { listRanks: number; queueItems: number }; ranks: unknown[] }

const mktree = (profile: string, dir: string, ...extra: string[]) => {
  const r = spawnSync('python3', [join(toolsDir, 'mktree'), profile, dir, ...extra], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
};
const treecmp = (a: string, b: string) => spawnSync('python3', [join(toolsDir, 'treecmp'), a, b], { encoding: 'utf8' });

beforeAll(() => {
  work = scratch('scale');
});
afterAll(() => work?.cleanup());

describe('bounded memory', () => {
  it('50,000 files with a memory budget that forces queues and lists to spill: nothing lost', async () => {
    const src = join(work.dir, 'spill-src');
    // 50,000 files in one directory (a streamed directory read, batches in the queue) ...
    mktree('wide', join(src, 'wide'), '--files', '40000');
    // ... and 10,000 in a tree
    mktree('small', join(src, 'tree'), '--files', '10000');
    // --update (into a new DST): the walk lists every file for the copy phase, as whenever
    // it cannot copy them itself (phases/walk-copy.ts); by default small files never enter
    // the lists (that path, spilled, is walk-copy.test.ts's, and the last run here).
    for (const [np, ckpt] of [['2', []], ['3', ['--no-checkpoint']]] as const) {
      const dst = join(work.dir, `spill-dst-${np}`);
      const r = await run(process.execPath, [fcp, src, dst, '-np', np, '--mem-limit', '2M', '--json', '--update', ...ckpt], { timeoutMs: 180_000 });
      expect(r.code, r.stderr).toBe(0);
      const s = lastJson<Summary>(r.stdout);
      expect(s.files).toBe(50_000);
      expect(s.spilled.listRanks).toBe(Number(np)); // every rank's lists went to SQLite
      expect(s.spilled.queueItems).toBeGreaterThan(0); // and some queued work too
      const cmp = treecmp(src, dst);
      expect(cmp.status, cmp.stdout.slice(-2000)).toBe(0);
    }
    // The walk copying as it goes, under the same budget: its queue spills, nothing is lost.
    const dst = join(work.dir, 'spill-dst-walkcopy');
    const r = await run(process.execPath, [fcp, src, dst, '-np', '2', '--mem-limit', '2M', '--json'], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    const s = lastJson<Summary>(r.stdout);
    expect(s.files).toBe(50_000);
    expect(s.spilled.queueItems).toBeGreaterThan(0);
    const cmp = treecmp(src, dst);
    expect(cmp.status, cmp.stdout.slice(-2000)).toBe(0);
  }, 400_000);
});

describe('spilled lists read back from the checkpoint', () => {
  it('symlinks, FIFOs, hard links, sparse files and xattrs survive lists that spill with a checkpoint (read from its listings)', async () => {
    const src = join(work.dir, 'listed-src');
    mktree('features', join(src, 'features'));
    mktree('small', join(src, 'tree'), '--files', '8000');
    const dst = join(work.dir, 'listed-dst');
    // --mem-limit 1M: 1,000 entries per rank in memory, so both ranks' lists spill (--update:
    // into a new DST, every file goes through the lists, see the test above)
    const r = await run(process.execPath, [fcp, src, dst, '-np', '2', '--mem-limit', '1M', '--json', '--update'], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    const s = lastJson<Summary>(r.stdout);
    expect(s.spilled.listRanks).toBe(2);
    const cmp = treecmp(src, dst);
    expect(cmp.status, cmp.stdout.slice(-2000)).toBe(0);
  }, 240_000);
});

describe('many ranks', () => {
  it('64 ranks on a 2-core machine copy a small tree and terminate correctly', async () => {
    const src = join(work.dir, 'np64-src');
    mktree('small', src, '--files', '3000');
    const dst = join(work.dir, 'np64-dst');
    const r = await run(process.execPath, [fcp, src, dst, '-np', '64', '--json'], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    const s = lastJson<Summary>(r.stdout);
    expect(s.ranks).toHaveLength(64);
    expect(s.files).toBe(3000);
    expect(treecmp(src, dst).status).toBe(0);
  }, 240_000);
});
