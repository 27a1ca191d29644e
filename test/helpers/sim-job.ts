/**
 * Many ranks of the engine in one process: Runtimes over an in-process network driven
 * by a simulated scheduler (sim-scheduler.ts). Nothing here touches a socket, a timer or
 * Math.random, so a run is reproducible from its seed.
 */
import { Runtime } from '../../src/engine/runtime.js';
import type { Task, TaskContext } from '../../src/engine/task.js';
import { InProcessNetwork } from '../../src/engine/in-process-transport.js';
import type { Message } from '../../src/transport/messages.js';
import { SimScheduler } from './sim-scheduler.js';

export interface SimJobOptions {
  /** Each message is late by a random 0..maxDelayMs ms (default 0). */
  maxDelayMs?: number;
  order?: 'fifo' | 'any';
  onSend?: (from: number, to: number, msg: Message) => void;
  onDeliver?: (from: number, to: number, msg: Message) => void;
  exchangeRound?: number;
  /** Extra delay of one message, in ms, on top of maxDelayMs (e.g. one kind made very late). */
  extraDelayMs?: (from: number, to: number, msg: Message) => number;
}

export interface SimJob {
  sim: SimScheduler;
  net: InProcessNetwork;
  rts: Runtime[];
  /** The exit code each rank left with (abort), or null. */
  exits: (number | null)[];
  printed: string[];
  /** Run `fn` on every rank at once; resolves with every rank's result, or rejects on a hang. */
  all<T>(fn: (rt: Runtime) => Promise<T>, maxSteps?: number): Promise<T[]>;
}

export function simJob(size: number, seed: number, o: SimJobOptions = {}): SimJob {
  const sim = new SimScheduler(seed);
  const maxDelay = o.maxDelayMs ?? 0;
  const net = new InProcessNetwork(size, {
    scheduler: sim,
    order: o.order ?? 'fifo',
    delayMs: maxDelay > 0 || o.extraDelayMs
      ? (from, to, msg) => (maxDelay > 0 ? sim.rand(maxDelay + 1) : 0) + (o.extraDelayMs?.(from, to, msg) ?? 0)
      : undefined,
    onSend: o.onSend,
    onDeliver: o.onDeliver,
  });
  const exits: (number | null)[] = Array(size).fill(null);
  const printed: string[] = [];
  const rts = Array.from({ length: size }, (_, r) => new Runtime({
    tool: 'sim',
    scheduler: sim,
    exchangeRound: o.exchangeRound,
    exit: (code) => {
      exits[r] = code;
      return undefined as never;
    },
    print: (line) => void printed.push(line),
  }, r, size, net.transport(r)));
  return {
    sim, net, rts, exits, printed,
    async all<T>(fn: (rt: Runtime) => Promise<T>, maxSteps = 1_000_000): Promise<T[]> {
      const out: T[] = [];
      let left = size;
      let failure: unknown = null;
      rts.forEach((rt, r) => {
        fn(rt).then((v) => { out[r] = v; left--; }, (err) => { failure ??= err; left--; });
      });
      const ok = await sim.run(() => left === 0, maxSteps);
      if (failure) throw failure;
      if (!ok) throw new Error(`seed ${seed}: no end after ${sim.steps} steps (${left} of ${size} ranks still running, ${net.inFlight} messages in flight)`);
      return out;
    },
  };
}

/** FNV-1a, 32 bits. */
export function idHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

export interface TreeItem { id: string; depth: number }

/** A random tree every rank agrees on: an item's child count comes from a hash of (seed, id). */
export function childCount(seed: number, item: TreeItem, fanout: number, depth: number): number {
  return item.depth >= depth ? 0 : idHash(`${seed}/${item.id}`) % (fanout + 1);
}

export function treeIds(seed: number, roots: string[], fanout: number, depth: number): string[] {
  const ids: string[] = [];
  const stack: TreeItem[] = roots.map((id) => ({ id, depth: 0 }));
  while (stack.length) {
    const it = stack.pop()!;
    ids.push(it.id);
    const n = childCount(seed, it, fanout, depth);
    for (let k = 0; k < n; k++) stack.push({ id: `${it.id}.${k}`, depth: it.depth + 1 });
  }
  return ids;
}

export const isTreeItem = (x: unknown): x is TreeItem =>
  typeof x === 'object' && x !== null && typeof (x as TreeItem).id === 'string' && Number.isInteger((x as TreeItem).depth);

/**
 * A task over that tree: roots seeded on the ranks `seedsOf(rank)` names, every processed
 * id reported to `onProcess`; children whose hash is 0 mod 7 come `laterMs` late (as a
 * retry does) when laterMs > 0; with `cost`, an item takes that many simulated ms (as
 * I/O does: the rank's queue builds up meanwhile and thieves can take from it).
 */
export function treeTask(
  seed: number, fanout: number, depth: number, seedsOf: (rank: number) => string[],
  onProcess: (rank: number, id: string) => void, laterMs = 0,
  cost?: { sim: SimScheduler; ms: number },
): Task<TreeItem> {
  const work = (item: TreeItem, ctx: TaskContext<TreeItem>): void => {
    onProcess(ctx.rank, item.id);
    ctx.count('processed');
    const n = childCount(seed, item, fanout, depth);
    for (let k = 0; k < n; k++) {
      const child = { id: `${item.id}.${k}`, depth: item.depth + 1 };
      if (laterMs > 0 && idHash(child.id) % 7 === 0) ctx.enqueueLater(child, idHash(`${child.id}/later`) % laterMs);
      else ctx.enqueue(child);
    }
  };
  return {
    name: 'tree',
    seed(ctx) {
      for (const id of seedsOf(ctx.rank)) ctx.enqueue({ id, depth: 0 });
    },
    process(item, ctx) {
      if (!cost || cost.ms <= 0) return work(item, ctx);
      // the item's effects happen when it ends, as a copy's do
      return new Promise<void>((resolve) => cost.sim.after(cost.ms, () => {
        work(item, ctx);
        resolve();
      }));
    },
    isItem: isTreeItem,
  };
}
