/**
 * Safra's termination detection (engine/termination.ts) as the work loop uses it, checked
 * over 10,000 random jobs: rank counts, uneven seeds, random work trees, message delays
 * and delivery orders (per-pair FIFO as ZeroMQ, or any order at all), some work arriving
 * late (enqueueLater). Each job runs real Runtimes on the in-process transport under a
 * seeded simulated scheduler; a failure prints the seed that reproduces it.
 *
 * Safety: when rank 0 declares the end (its first 'term' message), every item of the
 * tree has been processed and no work message is in flight; no item is processed after.
 * Liveness: the end is always declared, within a bounded number of scheduler steps.
 */
import { describe, expect, it } from 'vitest';
import { rng } from '../helpers/rng.js';
import { simJob, treeIds, treeTask } from '../helpers/sim-job.js';

const RUNS = 10_000;
const BASE_SEED = Number(process.env.ENGINE_PROPERTY_SEED ?? 20261129);

async function oneJob(seed: number): Promise<string | null> {
  const pick = rng(seed);
  const size = 2 + pick(7); // 2..8 ranks
  const fanout = 1 + pick(3);
  const depth = 2 + pick(4);
  const maxDelayMs = [0, 1, 3, 10, 40][pick(5)]!;
  const order = pick(2) === 0 ? 'fifo' : 'any';
  const laterMs = pick(4) === 0 ? 1 + pick(30) : 0;
  const costMs = pick(3) === 0 ? 1 + pick(3) : 0;
  // uneven seeds: all roots on one rank, or some roots on some ranks, or none on rank 0
  const roots: string[][] = Array.from({ length: size }, () => []);
  const nRoots = 1 + pick(6);
  const mode = pick(3);
  for (let k = 0; k < nRoots; k++) {
    const r = mode === 0 ? size - 1 : mode === 1 ? pick(size) : 1 + pick(size - 1);
    roots[r]!.push(`r${k}`);
  }
  const expected = new Set(treeIds(seed, roots.flat(), fanout, depth));

  const processed = new Set<string>();
  let declared = false;
  let workInFlight = 0;
  let problem: string | null = null;
  const job = simJob(size, seed, {
    maxDelayMs,
    order,
    onSend: (from, _to, msg) => {
      if (msg.type === 'steal-reply' && msg.items.length > 0) workInFlight++;
      if (msg.type === 'term' && !declared) {
        declared = true;
        if (from !== 0) problem ??= `rank ${from} declared the end`;
        if (processed.size !== expected.size) problem ??= `end declared with ${expected.size - processed.size} of ${expected.size} items not processed`;
        if (workInFlight !== 0) problem ??= `end declared with ${workInFlight} work messages in flight`;
      }
    },
  });
  // Work arrives when the thief's transport delivers it: count it then.
  for (const rt of job.rts) {
    const t = job.net.transport(rt.rank);
    const inner = (t as unknown as { deliver: (from: number, msg: { type: string; items?: unknown[] }) => void });
    const deliver = inner.deliver.bind(t);
    inner.deliver = (from, msg) => {
      if (msg.type === 'steal-reply' && (msg.items?.length ?? 0) > 0) workInFlight--;
      deliver(from, msg as never);
    };
  }
  const task = treeTask(seed, fanout, depth, (r) => roots[r]!, (_rank, id) => {
    if (declared) problem ??= `item ${id} processed after the end was declared`;
    if (processed.has(id)) problem ??= `item ${id} processed twice`;
    processed.add(id);
  }, laterMs, { sim: job.sim, ms: costMs });
  const what = `size ${size}, fanout ${fanout}, depth ${depth}, delay ≤${maxDelayMs} ms, ${order}, later ${laterMs} ms, cost ${costMs} ms, ${expected.size} items`;
  try {
    const results = await job.all((rt) => rt.runPhase(task), 200_000);
    if (!declared) return `${what}: the phase ended without an end being declared`;
    if (problem) return `${what}: ${problem}`;
    if (processed.size !== expected.size) return `${what}: ${processed.size} of ${expected.size} items processed`;
    if (results[0]!.total.processed !== expected.size) return `${what}: counters say ${results[0]!.total.processed}`;
    return null;
  } catch (err) {
    return `${what}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

describe('engine: Safra termination, property test', () => {
  it(`never ends early and never hangs over ${RUNS.toLocaleString('en')} random delivery orders and delays`, async () => {
    let tokensSeen = 0;
    for (let i = 0; i < RUNS; i++) {
      const seed = BASE_SEED + i;
      const failure = await oneJob(seed);
      if (failure) expect.fail(`seed ${seed} (rerun: ENGINE_PROPERTY_SEED=${seed}): ${failure}`);
      tokensSeen++;
    }
    expect(tokensSeen).toBe(RUNS);
  }, 120_000);
});
