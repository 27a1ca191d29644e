/**
 * A synthetic task for testing and benchmarking the engine alone (no files).
 *
 * Items form a random tree: an item's number of children is drawn from a PRNG seeded by
 * (seed, item id), so every rank agrees on the tree and the expected total is computed
 * up front. Each processed item adds 1 to `items` and its id's hash to a checksum;
 * equal counts and checksums mean every item was processed exactly once.
 *
 * usage: node dist/testing/synthetic-job.js [--np N] [--seed S] [--roots R] [--fanout F]
 *          [--depth D] [--work-us U] [--seed-everywhere] [--delay-work-ms M]
 *          [--later-ms M] [--endpoint-file F] [--heartbeat-timeout MS] [--rendezvous DIR] [--json]
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Task } from '../engine/task.js';
import { EXIT } from '../engine/runtime.js';
import { endJob, startJob } from '../launch/job.js';

interface Item { id: string; depth: number }

/** 32-bit FNV-1a: a sum over up to 2^21 items stays exact in a double, whatever the order. */
function idHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

function childCount(seed: number, item: Item, fanout: number, depth: number): number {
  if (item.depth >= depth) return 0;
  const x = idHash(`${seed}/${item.id}`);
  return x % (fanout + 1);
}

export function expectedTotals(seed: number, roots: number, fanout: number, depth: number): { items: number; hash: number } {
  let items = 0;
  let hash = 0;
  const stack: Item[] = [];
  for (let r = 0; r < roots; r++) stack.push({ id: `${r}`, depth: 0 });
  while (stack.length) {
    const it = stack.pop()!;
    items++;
    hash += idHash(it.id);
    const n = childCount(seed, it, fanout, depth);
    for (let k = 0; k < n; k++) stack.push({ id: `${it.id}.${k}`, depth: it.depth + 1 });
  }
  return { items, hash };
}

function busy(us: number): void {
  const end = process.hrtime.bigint() + BigInt(Math.round(us * 1000));
  while (process.hrtime.bigint() < end) { /* spin: simulated CPU work */ }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      np: { type: 'string', default: '1' },
      seed: { type: 'string', default: '1' },
      roots: { type: 'string', default: '4' },
      fanout: { type: 'string', default: '4' },
      depth: { type: 'string', default: '10' },
      'work-us': { type: 'string', default: '0' },
      'seed-everywhere': { type: 'boolean', default: false },
      'delay-work-ms': { type: 'string', default: '0' },
      // every 7th child is enqueued only after up to M ms (enqueueLater, as a retry is)
      'later-ms': { type: 'string', default: '0' },
      'endpoint-file': { type: 'string' },
      'heartbeat-timeout': { type: 'string' },
      'startup-timeout': { type: 'string' },
      rendezvous: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const seed = Number(values.seed);
  const roots = Number(values.roots);
  const fanout = Number(values.fanout);
  const depth = Number(values.depth);
  const workUs = Number(values['work-us']);
  const laterMs = Number(values['later-ms']);

  const job = await startJob({
    tool: 'synthetic',
    np: Number(values.np),
    besidePath: join(tmpdir(), 'synthetic'),
    rendezvous: values.rendezvous,
    delayWorkMs: Number(values['delay-work-ms']),
    heartbeatTimeoutMs: values['heartbeat-timeout'] ? Number(values['heartbeat-timeout']) : undefined,
    startupTimeoutMs: values['startup-timeout'] ? Number(values['startup-timeout']) : undefined,
  });
  const { rt } = job;
  if (values['endpoint-file']) {
    writeFileSync(`${values['endpoint-file']}.${rt.rank}`, JSON.stringify({ rank: rt.rank, pid: process.pid, endpoint: rt.endpoint }));
  }

  const task: Task<Item> = {
    name: 'synthetic',
    concurrency: 1,
    seed(ctx) {
      for (let r = 0; r < roots; r++) {
        if (values['seed-everywhere'] ? r % ctx.size === ctx.rank : ctx.rank === 0) ctx.enqueue({ id: `${r}`, depth: 0 });
      }
    },
    process(item, ctx) {
      if (workUs > 0) busy(workUs);
      ctx.count('processed');
      ctx.count('hash', idHash(item.id));
      const n = childCount(seed, item, fanout, depth);
      for (let k = 0; k < n; k++) {
        const child = { id: `${item.id}.${k}`, depth: item.depth + 1 };
        if (laterMs > 0 && idHash(child.id) % 7 === 0) ctx.enqueueLater(child, idHash(`${child.id}/later`) % laterMs);
        else ctx.enqueue(child);
      }
    },
    isItem: (x): x is Item =>
      typeof x === 'object' && x !== null && typeof (x as Item).id === 'string' && Number.isInteger((x as Item).depth),
  };

  const t0 = process.hrtime.bigint();
  const res = await rt.runPhase(task);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const dropped = await rt.allreduceCounters(rt.dropped);
  if (rt.rank === 0) {
    const exp = expectedTotals(seed, roots, fanout, depth);
    const out = {
      items: res.total.processed ?? 0,
      expectedItems: exp.items,
      hash: res.total.hash ?? 0,
      expectedHash: exp.hash,
      seconds,
      itemsPerSecond: (res.total.processed ?? 0) / seconds,
      steals: res.total.steals ?? 0,
      dropped,
      ranks: res.perRank.map((c) => ({ items: c.processed ?? 0, steals: c.steals ?? 0, requests: c.stealRequests ?? 0, given: c.given ?? 0 })),
    };
    if (values.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else process.stdout.write(`items ${out.items}/${out.expectedItems} in ${seconds.toFixed(2)} s, ${Math.round(out.itemsPerSecond)} items/s, steals ${out.steals}\n`);
    await endJob(job, out.items === exp.items && out.hash === exp.hash ? EXIT.OK : EXIT.ENTRIES_FAILED);
  }
  await endJob(job, EXIT.OK);
}

main().catch((err) => {
  process.stderr.write(`synthetic: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(EXIT.ABORTED);
});
