/**
 * One phase of work on one rank: the work loop, work stealing and the rank's part in
 * termination detection.
 *
 * - The owner processes its queue LIFO, up to `task.concurrency` items at once.
 * - An idle rank asks a peer for work: first the one that last gave it work (work sits
 *   where the walk put it, often on few ranks), else a random one. Each refusal in a row
 *   doubles its wait before the next request (idleBackoffMs), up to a cap that grows with
 *   the job's size, so the requests of all idle ranks together stay a few hundred a second:
 *   at 32 ranks on two cores a round of refusals per back-off step made a storm (1,925
 *   requests in a one-item mkdir phase at -np 16) that took the CPU the busy ranks needed.
 * - A victim answers all requests that arrived in the same turn of the event loop
 *   together: it splits its queue among itself and every requester, giving away its
 *   oldest items. Items leave the victim's queue in the same step as the reply is queued
 *   for sending, so handed-over work is never lost and never duplicated.
 * - Steal replies that carry work are Safra's basic messages (see termination.ts).
 */
import type { Counters, Message, StealReplyMsg, StealRequestMsg, TokenMsg } from '../transport/messages.js';
import { WorkQueue } from './queue.js';
import type { Scheduler } from './scheduler.js';
import type { SpillStore } from './spill.js';

/**
 * A lazy source is read until the queue holds this many items. Enough for thieves to take
 * half of and for the owner to keep busy while it refills, and no more: an item may be a
 * batch of many entries (64 small files in a copy), and at 512 items a rank held ~32,000
 * entries alive that every garbage collection went through again (node bench/cpu.mjs
 * --profile wide: 2.00 CPU s at 512, 1.78 at 32).
 */
const SOURCE_HIGH_WATER = 32;

/**
 * How far below the newest item the owner looks for one whose kind has room (Task.kinds).
 * Bounded so that a queue of thousands of capped items costs nothing per start; beyond
 * it the rank waits for one of its items in flight to end.
 */
const KIND_SCAN = 256;

/**
 * The wait after the `refusals`-th refused steal request in a row: none after the first
 * (one more random try is cheap), then 1 ms doubling up to `size` × 2 ms, clamped to
 * 8..100 ms. With every rank idle that is about 500 requests a second over the whole
 * job, whatever its size; termination does not wait for them (its waves run on their own).
 */
export function idleBackoffMs(refusals: number, size: number): number {
  if (refusals <= 1) return 0;
  const cap = Math.min(100, Math.max(8, 2 * size));
  return Math.min(cap, 2 ** Math.min(10, refusals - 2));
}
import type { Task, TaskContext } from './task.js';
import { SafraTermination, type Token } from './termination.js';

export interface PhaseEnv {
  rank: number;
  size: number;
  /** Items a queue keeps in memory before spilling the oldest half (see queue.ts). */
  queueInMemory: number;
  makeSpill: () => SpillStore;
  /** Turns, timers and random choices (the event loop, or a simulation in tests). */
  scheduler: Scheduler;
  send(to: number, msg: Message): void;
  /** A job-level failure: the runtime aborts the job. */
  fail(reason: string): void;
}

export class PhaseRunner<I> {
  readonly queue: WorkQueue<I>;
  private source: AsyncIterator<I> | Iterator<I> | null = null;
  private refilling = false;
  readonly counters: Counters = { items: 0, steals: 0, stolen: 0, given: 0, stealRequests: 0 };
  private inflight = 0;
  /** Items in flight by kind (Task.kinds). */
  private readonly kindInFlight: number[];
  /** Items waiting on a timer to be enqueued (enqueueLater): the rank is not passive meanwhile. */
  private waiting = new Set<() => void>();
  private readonly concurrency: number;
  private stealOutstanding = false;
  private stealTimer: (() => void) | null = null;
  private refusals = 0;
  /** The rank that last gave this one work, asked first next time (-1: none, or it refused since). */
  private lastVictim = -1;
  private requesters: number[] = [];
  private serveScheduled = false;
  private pumpScheduled = false;
  private gated = false;
  private readonly termination: SafraTermination;
  private resolveDone!: () => void;
  private readonly done = new Promise<void>((r) => (this.resolveDone = r));
  private readonly ctx: TaskContext<I>;

  constructor(readonly phase: number, private readonly task: Task<I>, private readonly env: PhaseEnv, early: { token: Token; from: number } | null) {
    this.concurrency = Math.max(1, task.concurrency ?? 1);
    if (task.kinds && task.kinds.max.some((m) => !(m >= 1))) throw new Error(`${task.name}: every kind needs room for at least one item in flight`);
    this.kindInFlight = (task.kinds?.max ?? []).map(() => 0);
    this.queue = new WorkQueue<I>(env.queueInMemory, env.makeSpill);
    this.termination = new SafraTermination(
      env.rank,
      env.size,
      (to, t) => env.send(to, { type: 'token', phase, ...t }),
      () => this.concluded(),
    );
    if (early) this.termination.tokenArrived(early.token, early.from);
    const counters = this.counters;
    this.ctx = {
      rank: env.rank,
      size: env.size,
      enqueue: (item: I) => {
        this.queue.push(item);
        this.schedulePump();
      },
      enqueueLater: (item: I, ms: number) => {
        const cancel = env.scheduler.after(ms, () => {
          this.waiting.delete(cancel);
          if (this.terminated) return;
          this.queue.push(item);
          this.pump();
        });
        this.waiting.add(cancel);
      },
      count: (name: string, n = 1) => {
        counters[name] = (counters[name] ?? 0) + n;
      },
      counters,
    };
  }

  private finished = false;
  private seeding = true;

  get terminated(): boolean {
    return this.finished;
  }

  async run(): Promise<Counters> {
    await this.task.seed(this.ctx);
    if (this.task.source) {
      const src = this.task.source(this.ctx);
      this.source = Symbol.asyncIterator in src ? (src as AsyncIterable<I>)[Symbol.asyncIterator]() : (src as Iterable<I>)[Symbol.iterator]();
    }
    this.seeding = false;
    this.pump();
    try {
      await this.done;
    } finally {
      if (this.queue.spilledTotal > 0) this.counters.spilledItems = this.queue.spilledTotal;
      this.queue.close();
    }
    return this.counters;
  }

  /** Pull from the lazy source until the queue is full enough or the source ends. */
  private async refill(): Promise<void> {
    this.refilling = true;
    try {
      while (this.source && this.queue.length < SOURCE_HIGH_WATER) {
        const r = await this.source.next();
        if (r.done) {
          this.source = null;
          break;
        }
        this.queue.push(r.value);
      }
    } catch (err) {
      this.env.fail(`${this.task.name}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    this.refilling = false;
    this.pump();
  }

  onStealRequest(from: number, msg: StealRequestMsg): void {
    if (msg.phase !== this.phase || this.terminated) {
      this.env.send(from, { type: 'steal-reply', phase: msg.phase, items: [] });
      return;
    }
    this.requesters.push(from);
    if (!this.serveScheduled) {
      this.serveScheduled = true;
      this.env.scheduler.soon(() => this.serveRequests());
    }
  }

  onStealReply(from: number, msg: StealReplyMsg): void {
    if (msg.phase !== this.phase) {
      if (msg.items.length > 0) this.env.fail(`rank ${from} sent work of phase ${msg.phase} during phase ${this.phase}`);
      return;
    }
    this.stealOutstanding = false;
    if (msg.items.length === 0) {
      this.refusals++;
      if (from === this.lastVictim) this.lastVictim = -1;
      const backoff = idleBackoffMs(this.refusals, this.env.size);
      if (backoff > 0) {
        this.stealTimer = this.env.scheduler.after(backoff, () => {
          this.stealTimer = null;
          this.pump();
        });
        return;
      }
      this.pump();
      return;
    }
    this.termination.workReceived();
    for (const item of msg.items) {
      if (!this.task.isItem(item)) {
        this.env.fail(`rank ${from} sent a malformed ${this.task.name} work item`);
        return;
      }
    }
    for (const item of msg.items as I[]) this.queue.push(item);
    this.counters.steals!++;
    this.counters.stolen! += msg.items.length;
    this.refusals = 0;
    this.lastVictim = from;
    this.pump();
  }

  onToken(from: number, msg: TokenMsg): void {
    this.termination.tokenArrived({ round: msg.round, up: msg.up, black: msg.black, count: msg.count }, from);
    this.pump();
  }

  /** Rank 0 announced the end of this phase. */
  onTerminate(): void {
    this.concluded();
  }

  private concluded(): void {
    if (this.finished) return;
    this.finished = true;
    this.stealTimer?.();
    this.stealTimer = null;
    for (const cancel of this.waiting) cancel();
    this.waiting.clear();
    // Termination is only ever concluded with no work anywhere; answer late requests empty.
    for (const r of this.requesters.splice(0)) this.env.send(r, { type: 'steal-reply', phase: this.phase, items: [] });
    if (this.env.rank === 0) for (let r = 1; r < this.env.size; r++) this.env.send(r, { type: 'term', phase: this.phase });
    this.resolveDone();
  }

  private serveRequests(): void {
    this.serveScheduled = false;
    const reqs = this.requesters.splice(0);
    if (reqs.length === 0) return;
    const n = this.task.stealable === false ? 0 : this.queue.length;
    // Split the queue among the victim and every requester; a busy victim keeps less.
    const keep = this.inflight > 0 ? Math.floor(n / (reqs.length + 1)) : Math.ceil(n / (reqs.length + 1));
    const give = n - keep;
    const per = Math.floor(give / reqs.length);
    let extra = give % reqs.length;
    for (const r of reqs) {
      const m = per + (extra > 0 ? 1 : 0);
      if (extra > 0) extra--;
      const items = this.queue.takeOldest(m);
      if (items.length > 0) {
        this.termination.workSent();
        this.counters.given! += items.length;
      }
      this.env.send(r, { type: 'steal-reply', phase: this.phase, items });
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    this.env.scheduler.soon(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.terminated) return;
    // At most `concurrency` starts per call: synchronous items finish inside runItem, and
    // the loop must still yield to the event loop between them (steal requests, heartbeats).
    for (let started = 0; started < this.concurrency && this.inflight < this.concurrency && this.queue.length > 0; started++) {
      if (this.inflight > 0 && this.task.ready && !this.mayStart()) break;
      const item = this.takeNext();
      if (item === undefined) break; // every queued item's kind is at its cap: one ending pumps again
      this.inflight++;
      this.runItem(item);
    }
    if (this.source && !this.refilling && this.queue.length < SOURCE_HIGH_WATER / 2) void this.refill();
    // While an asynchronous seed or source still has work the rank is not passive.
    if (this.inflight > 0 || this.queue.length > 0 || this.seeding || this.source || this.refilling || this.waiting.size > 0) return;
    this.termination.passive();
    if (this.terminated || this.env.size === 1 || this.stealOutstanding || this.stealTimer) return;
    let victim = this.lastVictim;
    if (victim < 0) {
      victim = Math.floor(this.env.scheduler.random() * (this.env.size - 1));
      if (victim >= this.env.rank) victim++;
    }
    this.stealOutstanding = true;
    this.counters.stealRequests!++;
    this.env.send(victim, { type: 'steal-req', phase: this.phase });
  }

  /** The task's gate (see Task.ready): false holds the queue until it opens, then pumps. */
  private mayStart(): boolean {
    if (this.gated) return false;
    const wait = this.task.ready!();
    if (!wait) return true;
    this.gated = true;
    void wait.then(() => {
      this.gated = false;
      this.pump();
    });
    return false;
  }

  /** The newest queued item, or with kinds (Task.kinds) the newest whose kind has room. */
  private takeNext(): I | undefined {
    const kinds = this.task.kinds;
    if (!kinds) return this.queue.pop();
    return this.queue.popNewestWhere((it) => {
      const k = kinds.of(it);
      return this.kindInFlight[k]! < kinds.max[k]!;
    }, KIND_SCAN);
  }

  private runItem(item: I): void {
    const kind = this.task.kinds ? this.task.kinds.of(item) : -1;
    if (kind >= 0) this.kindInFlight[kind]!++;
    const ended = () => {
      if (kind >= 0) this.kindInFlight[kind]!--;
    };
    let p: void | Promise<void>;
    try {
      p = this.task.process(item, this.ctx);
    } catch (err) {
      ended();
      this.itemFailed(err);
      return;
    }
    if (p && typeof (p as Promise<void>).then === 'function') {
      (p as Promise<void>).then(() => {
        ended();
        this.itemDone();
      }, (err) => {
        ended();
        this.itemFailed(err);
      });
    } else {
      ended();
      this.itemDone();
    }
  }

  private itemDone(): void {
    this.inflight--;
    this.counters.items!++;
    // Defer so a long run of synchronous items still lets messages (steal requests, heartbeats) in.
    this.schedulePump();
  }

  private itemFailed(err: unknown): void {
    this.inflight--;
    this.env.fail(`${this.task.name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
