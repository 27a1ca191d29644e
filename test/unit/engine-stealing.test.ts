/**
 * Work stealing on the in-process transport: many ranks in one process, work seeded
 * unevenly, messages late and out of order. Every item is processed exactly once, and
 * work seeded on one rank spreads to the others.
 */
import { describe, expect, it } from 'vitest';
import { simJob, treeIds, treeTask } from '../helpers/sim-job.js';
import type { Task } from '../../src/engine/task.js';

describe('engine: work stealing with many ranks in one process', () => {
  const cases: { size: number; seeds: (rank: number, size: number) => string[]; name: string }[] = [
    { size: 2, name: 'all roots on rank 1', seeds: (r) => (r === 1 ? ['a', 'b', 'c'] : []) },
    { size: 7, name: 'all roots on rank 0', seeds: (r) => (r === 0 ? ['a', 'b', 'c', 'd'] : []) },
    { size: 7, name: 'roots on every third rank, 0 to 3 each', seeds: (r) => (r % 3 === 0 ? Array.from({ length: r % 4 }, (_, k) => `${r}-${k}`) : []) },
    { size: 16, name: 'all roots on the last rank', seeds: (r, n) => (r === n - 1 ? ['a', 'b', 'c', 'd', 'e', 'f'] : []) },
    { size: 16, name: 'one root on every rank', seeds: (r) => [`${r}`] },
  ];
  for (const { size, name, seeds } of cases) {
    for (const order of ['fifo', 'any'] as const) {
      it(`${size} ranks, ${name}, delivery ${order}: every item exactly once, work spread over the ranks`, async () => {
        const seed = size * 1000 + name.length;
        const roots = Array.from({ length: size }, (_, r) => seeds(r, size));
        const expected = treeIds(seed, roots.flat(), 3, 7);
        expect(expected.length).toBeGreaterThan(500);
        const seen = new Map<string, number>();
        const byRank = new Array<number>(size).fill(0);
        const job = simJob(size, seed, { maxDelayMs: 5, order });
        const task = treeTask(seed, 3, 7, (r) => roots[r]!, (rank, id) => {
          seen.set(id, (seen.get(id) ?? 0) + 1);
          byRank[rank]!++;
        }, 20, { sim: job.sim, ms: 1 });
        const results = await job.all((rt) => rt.runPhase(task));
        expect(seen.size).toBe(expected.length);
        expect([...seen.values()].every((n) => n === 1)).toBe(true);
        for (const id of expected) expect(seen.has(id)).toBe(true);
        // every rank got the same totals, and they match what was done
        for (const r of results) expect(r.total.processed).toBe(expected.length);
        expect(results[0]!.perRank.map((c) => c.processed ?? 0)).toEqual(byRank);
        // work moved: more than one rank processed items, and steals were counted
        expect(byRank.filter((n) => n > 0).length).toBeGreaterThan(1);
        expect(results[0]!.total.steals).toBeGreaterThan(0);
        expect(results[0]!.total.given).toBe(results[0]!.total.stolen);
      });
    }
  }

  it('phases in a row on 7 ranks: each phase ends on every rank before the next one starts', async () => {
    const job = simJob(7, 77, { maxDelayMs: 3, order: 'any' });
    const log: string[] = [];
    const results = await job.all(async (rt) => {
      const out: number[] = [];
      for (let p = 0; p < 4; p++) {
        const roots = (r: number) => (r === (p * 3) % 7 ? [`p${p}`] : []);
        const task = treeTask(100 + p, 2, 6, roots, () => void log.push(`${p}`));
        out.push((await rt.runPhase(task)).total.processed!);
      }
      return out;
    });
    const expected = [0, 1, 2, 3].map((p) => treeIds(100 + p, [`p${p}`], 2, 6).length);
    for (const r of results) expect(r).toEqual(expected);
    // the log of processed items is phase 0's, then 1's...: no phase overlapped another
    const phases = log.map(Number);
    expect(phases).toEqual([...phases].sort((a, b) => a - b));
  });
});

describe('engine: caps on items in flight by kind (Task.kinds)', () => {
  // Rank 0 lists 24 directories at once; reading one takes 10 ms and yields 6 files of 2 ms.
  interface KItem { k: 'dir' | 'file'; id: string }
  const isKItem = (x: unknown): x is KItem => typeof x === 'object' && x !== null && ((x as KItem).k === 'dir' || (x as KItem).k === 'file') && typeof (x as KItem).id === 'string';
  const run = async (capped: boolean) => {
    const size = 6;
    const job = simJob(size, 4242, { maxDelayMs: 1, order: 'fifo' });
    const inFlight = Array.from({ length: size }, () => ({ dir: 0, file: 0, maxDir: 0 }));
    const dirsBy = new Array<number>(size).fill(0);
    const seen = new Map<string, number>();
    const task: Task<KItem> = {
      name: 'kinds',
      concurrency: 8,
      ...(capped ? { kinds: { of: (it: KItem) => (it.k === 'dir' ? 0 : 1), max: [2, 8] } } : {}),
      seed(ctx) {
        if (ctx.rank === 0) for (let d = 0; d < 24; d++) ctx.enqueue({ k: 'dir', id: `d${d}` });
      },
      process(item, ctx) {
        const f = inFlight[ctx.rank]!;
        f[item.k]++;
        if (item.k === 'dir') f.maxDir = Math.max(f.maxDir, f.dir);
        return new Promise<void>((resolve) => job.sim.after(item.k === 'dir' ? 10 : 2, () => {
          f[item.k]--;
          seen.set(item.id, (seen.get(item.id) ?? 0) + 1);
          if (item.k === 'dir') {
            dirsBy[ctx.rank]!++;
            for (let i = 0; i < 6; i++) ctx.enqueue({ k: 'file', id: `${item.id}/f${i}` });
          }
          ctx.count('processed');
          resolve();
        }));
      },
      isItem: isKItem,
    };
    const results = await job.all((rt) => rt.runPhase(task));
    return { maxDir: Math.max(...inFlight.map((f) => f.maxDir)), dirsBy, seen, total: results[0]!.total.processed };
  };

  it('a rank starts at most max[kind] items of a kind; the rest stay queued and thieves read them; each item once', async () => {
    const capped = await run(true);
    expect(capped.total).toBe(24 * 7);
    expect(capped.seen.size).toBe(24 * 7);
    expect([...capped.seen.values()].every((n) => n === 1)).toBe(true);
    expect(capped.maxDir).toBe(2);
    // Rank 0 kept at most 2 directories going and the others read the rest.
    expect(capped.dirsBy[0]).toBeLessThan(24 / 2);
    expect(capped.dirsBy.filter((n) => n > 0).length).toBeGreaterThan(3);
    // Without the caps the rank that listed them started 8 at once (the engine's concurrency).
    const uncapped = await run(false);
    expect(uncapped.total).toBe(24 * 7);
    expect(uncapped.maxDir).toBe(8);
  });

  it('refuses a kind with no room', () => {
    const job = simJob(1, 1);
    const task: Task<KItem> = { name: 'bad', kinds: { of: () => 0, max: [0] }, seed() {}, process() {}, isItem: isKItem };
    return expect(job.rts[0]!.runPhase(task)).rejects.toThrow(/at least one item in flight/);
  });
});
