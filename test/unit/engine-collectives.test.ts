/**
 * Collectives and the routed exchange on the in-process transport, with messages late
 * and in any order: every rank gets the same, right answer.
 */
import { describe, expect, it } from 'vitest';
import { exchange } from '../../src/engine/exchange.js';
import { isCounters, type Counters } from '../../src/transport/messages.js';
import { simJob } from '../helpers/sim-job.js';

const isNum = (x: unknown): x is number => typeof x === 'number';
const isStr = (x: unknown): x is string => typeof x === 'string';

describe('engine: collectives with many ranks in one process', () => {
  for (const size of [2, 7, 16]) {
    it(`${size} ranks: barrier, bcast, allreduce, gather, allgather and alltoall give every rank the right answer`, async () => {
      const job = simJob(size, size * 31, { maxDelayMs: 10, order: 'any' });
      const passed: number[] = [];
      const results = await job.all(async (rt) => {
        const c = rt.collectives;
        await rt.barrier();
        passed.push(rt.rank);
        const b = await c.bcast<string>(rt.rank === 0 ? 'from-0' : null, isStr);
        const sum = await c.allreduce<number>(rt.rank + 1, (a, x) => a + x, isNum);
        const counters = await rt.allreduceCounters({ one: 1, rank: rt.rank });
        const gathered = await c.gather<number>(rt.rank * 10, isNum);
        const all = await c.allgather<string>(`r${rt.rank}`, isStr);
        const fromEach = await c.alltoall<string>(Array.from({ length: size }, (_, to) => `${rt.rank}->${to}`), isStr);
        return { b, sum, counters, gathered, all, fromEach };
      });
      expect(passed.sort((a, b) => a - b)).toEqual([...Array(size).keys()]);
      results.forEach((r, rank) => {
        expect(r.b).toBe('from-0');
        expect(r.sum).toBe((size * (size + 1)) / 2);
        expect(r.counters).toEqual({ one: size, rank: (size * (size - 1)) / 2 });
        expect(r.gathered).toEqual(rank === 0 ? [...Array(size).keys()].map((x) => x * 10) : null);
        expect(r.all).toEqual([...Array(size).keys()].map((x) => `r${x}`));
        expect(r.fromEach).toEqual([...Array(size).keys()].map((from) => `${from}->${rank}`));
      });
    });
  }

  it('a barrier holds every rank until the last one arrives', async () => {
    const job = simJob(7, 5, { maxDelayMs: 2, order: 'any' });
    const events: string[] = [];
    await job.all(async (rt) => {
      // rank 6 arrives late: it first waits 100 simulated ms
      if (rt.rank === 6) await new Promise<void>((r) => job.sim.after(100, r));
      events.push(`in${rt.rank}`);
      await rt.barrier();
      events.push(`out${rt.rank}`);
    });
    const lastIn = events.lastIndexOf('in6');
    const firstOut = events.findIndex((e) => e.startsWith('out'));
    expect(lastIn).toBeGreaterThanOrEqual(0);
    expect(firstOut).toBeGreaterThan(lastIn);
  });

  it('a malformed value in a collective is refused, naming the rank', async () => {
    const job = simJob(3, 9);
    const isCount = (x: unknown): x is Counters => isCounters(x);
    const errors: string[] = [];
    await job.all(async (rt) => {
      try {
        await rt.collectives.allreduce<Counters>(rt.rank === 2 ? ({ bad: 'x' } as unknown as Counters) : { n: 1 }, (a, b) => ({ n: (a.n ?? 0) + (b.n ?? 0) }), isCount);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }, 10_000).catch(() => {});
    expect(errors).toContain('rank 2 sent a malformed value in a collective');
  });
});

describe('engine: routed exchange with many ranks in one process', () => {
  for (const size of [2, 7, 16]) {
    it(`${size} ranks, uneven streams, round size from the runtime's configuration: every record exactly once at its rank`, async () => {
      const round = 5;
      const job = simJob(size, size * 7 + 1, { maxDelayMs: 4, order: 'any', exchangeRound: round });
      const countOf = (r: number) => (r === 0 ? 60 : r % 3 === 0 ? 7 : 0);
      const destOf = (src: number, seq: number) => (src * 31 + seq * 17) % size;
      const got: [number, string][][] = Array.from({ length: size }, () => []);
      const stats = await job.all(async (rt) => {
        function* stream(): Generator<[number, string]> {
          for (let seq = 0; seq < countOf(rt.rank); seq++) yield [destOf(rt.rank, seq), `${rt.rank}/${seq}`];
        }
        return exchange(rt.collectives, stream(), isStr, (from, recs) => {
          expect(recs.length).toBeLessThanOrEqual(round);
          for (const rec of recs) got[rt.rank]!.push([from, rec]);
        });
      });
      let total = 0;
      for (let r = 0; r < size; r++) {
        const want: string[] = [];
        for (let src = 0; src < size; src++) for (let seq = 0; seq < countOf(src); seq++) if (destOf(src, seq) === r) want.push(`${src}/${seq}`);
        expect(got[r]!.map(([, rec]) => rec).sort()).toEqual(want.sort());
        for (const [from, rec] of got[r]!) expect(rec.startsWith(`${from}/`)).toBe(true);
        total += want.length;
      }
      // every rank took part in every round: rank 0's 60 records at 5 per round
      expect(stats.map((s) => s.rounds)).toEqual(Array(size).fill(12));
      expect(stats.reduce((a, s) => a + s.received, 0)).toBe(total);
    });
  }

  it('nothing to send anywhere: no round at all', async () => {
    const job = simJob(7, 3, { maxDelayMs: 3, order: 'any' });
    const stats = await job.all((rt) => exchange(rt.collectives, [], isStr, () => { throw new Error('nothing should arrive'); }));
    expect(stats.map((s) => s.rounds)).toEqual(Array(7).fill(0));
  });
});
