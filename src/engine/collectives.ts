/**
 * Collectives on the runtime's own transport, along a binary tree rooted at rank 0
 * (parent of r is (r-1)/2): reduce to rank 0, broadcast from rank 0, and what is built
 * from those (allreduce, gather, allgather, barrier). Depth is log2(size), so rank 0
 * receives from two children, never from every rank.
 *
 * One collective is not a tree: alltoall, where each rank hands every other rank its own
 * value directly. It is what lets data be partitioned over the ranks (each record sent to
 * the rank that owns it) instead of replicated on every rank as allgather does.
 *
 * Every rank calls the collectives in the same order; each call takes the next id, so
 * messages of different calls never mix even when they arrive early.
 */
import type { CollectiveMsg, Message } from '../transport/messages.js';

/** Records a rank sends per round of a routed exchange (exchange.ts), by default. */
export const DEFAULT_ROUND = 4096;

export const treeParent = (r: number) => (r - 1) >> 1;
export const treeChildren = (r: number, size: number) => [2 * r + 1, 2 * r + 2].filter((c) => c < size);

interface Slot { up: Map<number, unknown>; down?: { value: unknown }; peer: Map<number, unknown> }

export class Collectives {
  private nextId = 0;
  private readonly slots = new Map<number, Slot>();
  private readonly wakers = new Map<number, () => void>();
  private failed: Error | null = null;
  /**
   * Records a rank sends per round of a routed exchange (exchange.ts) built on these
   * collectives, unless the call says otherwise: configuration, so that tests can make
   * rounds tiny and go through many of them with little data.
   */
  readonly exchangeRound: number;

  constructor(
    readonly rank: number,
    readonly size: number,
    private readonly send: (to: number, msg: Message) => void,
    opts: { exchangeRound?: number } = {},
  ) {
    this.exchangeRound = opts.exchangeRound ?? DEFAULT_ROUND;
  }

  onMessage(from: number, msg: CollectiveMsg): void {
    const slot = this.slot(msg.id);
    if (msg.dir === 'up') slot.up.set(from, msg.value);
    else if (msg.dir === 'peer') slot.peer.set(from, msg.value);
    else slot.down = { value: msg.value };
    this.wakers.get(msg.id)?.();
  }

  /** Collectives this rank has started (the same on every rank): what a job costs in round trips among all ranks. */
  get started(): number {
    return this.nextId;
  }

  /** Reject every pending and future collective (the job is aborting). */
  fail(err: Error): void {
    this.failed = err;
    for (const wake of this.wakers.values()) wake();
  }

  private slot(id: number): Slot {
    let s = this.slots.get(id);
    if (!s) {
      s = { up: new Map(), peer: new Map() };
      this.slots.set(id, s);
    }
    return s;
  }

  private async until(id: number, ready: (s: Slot) => boolean): Promise<Slot> {
    const s = this.slot(id);
    while (!ready(s)) {
      if (this.failed) throw this.failed;
      await new Promise<void>((resolve) => this.wakers.set(id, resolve));
    }
    this.wakers.delete(id);
    this.slots.delete(id);
    if (this.failed) throw this.failed;
    return s;
  }

  /** Combine every rank's value at rank 0 (children in rank order); null elsewhere. */
  async reduce<T>(value: T, combine: (a: T, b: T) => T, validate: (x: unknown) => x is T): Promise<T | null> {
    const id = this.nextId++;
    const children = treeChildren(this.rank, this.size);
    const s = await this.until(id, (sl) => children.every((c) => sl.up.has(c)));
    let acc = value;
    for (const c of children) {
      const v = s.up.get(c);
      if (!validate(v)) throw new Error(`rank ${c} sent a malformed value in a collective`);
      acc = combine(acc, v);
    }
    if (this.rank === 0) return acc;
    this.send(treeParent(this.rank), { type: 'coll', id, dir: 'up', value: acc });
    return null;
  }

  /** Rank 0's value, on every rank. */
  async bcast<T>(value: T | null, validate: (x: unknown) => x is T): Promise<T> {
    const id = this.nextId++;
    let v: unknown = value;
    if (this.rank !== 0) {
      const s = await this.until(id, (sl) => sl.down !== undefined);
      v = s.down!.value;
      if (!validate(v)) throw new Error('rank 0 broadcast a malformed value');
    }
    for (const c of treeChildren(this.rank, this.size)) this.send(c, { type: 'coll', id, dir: 'down', value: v });
    return v as T;
  }

  async allreduce<T>(value: T, combine: (a: T, b: T) => T, validate: (x: unknown) => x is T): Promise<T> {
    const r = await this.reduce(value, combine, validate);
    return this.bcast(r, validate);
  }

  /** Every rank's value, by rank, at rank 0; null elsewhere. */
  async gather<T>(value: T, validate: (x: unknown) => x is T): Promise<T[] | null> {
    type Pairs = [number, T][];
    const isPairs = (x: unknown): x is Pairs =>
      Array.isArray(x) && x.every((p) => Array.isArray(p) && p.length === 2 && Number.isInteger(p[0]) && validate(p[1]));
    const all = await this.reduce<Pairs>([[this.rank, value]], (a, b) => a.concat(b), isPairs);
    if (!all) return null;
    const out = new Array<T>(this.size);
    for (const [r, v] of all) out[r] = v;
    return out;
  }

  async allgather<T>(value: T, validate: (x: unknown) => x is T): Promise<T[]> {
    const g = await this.gather(value, validate);
    const isArr = (x: unknown): x is T[] => Array.isArray(x) && x.length === this.size && x.every(validate);
    return this.bcast(g, isArr);
  }

  /**
   * All-to-all: `perDest[r]` goes to rank r (this rank's own share is kept, not sent);
   * returns what every rank sent to this one, indexed by source rank. Each value travels
   * once, point to point: memory is what this rank sends plus what it is sent.
   */
  async alltoall<T>(perDest: T[], validate: (x: unknown) => x is T): Promise<T[]> {
    if (perDest.length !== this.size) throw new Error(`alltoall needs one value per rank (${this.size}), got ${perDest.length}`);
    const id = this.nextId++;
    for (let r = 0; r < this.size; r++) if (r !== this.rank) this.send(r, { type: 'coll', id, dir: 'peer', value: perDest[r] });
    const others = (sl: Slot) => {
      for (let r = 0; r < this.size; r++) if (r !== this.rank && !sl.peer.has(r)) return false;
      return true;
    };
    const s = await this.until(id, others);
    const out = new Array<T>(this.size);
    for (let r = 0; r < this.size; r++) {
      if (r === this.rank) {
        out[r] = perDest[r]!;
        continue;
      }
      const v = s.peer.get(r);
      if (!validate(v)) throw new Error(`rank ${r} sent a malformed value in an all-to-all exchange`);
      out[r] = v;
    }
    return out;
  }

  async barrier(): Promise<void> {
    const isNull = (x: unknown): x is null => x === null;
    await this.allreduce<null>(null, () => null, isNull);
  }
}
