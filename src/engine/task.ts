/**
 * The task interface: what a tool gives the engine, and the context it gets back.
 *
 * Like libcircle's create/process callbacks: a task seeds work, processes one item at a
 * time (maybe enqueuing more), and counts what it did. Items are plain data because a
 * thief may receive them over the wire; `isItem` validates every item that arrives.
 * The engine knows nothing of what an item means.
 */
import type { Counters } from '../transport/messages.js';

export interface TaskContext<I> {
  readonly rank: number;
  readonly size: number;
  /** Add work to this rank's queue (LIFO: the newest item is processed first). */
  enqueue(item: I): void;
  /**
   * Add work after `ms` (a retry after a backoff): until then the rank is not passive, so
   * the phase does not end while a retry waits, and nothing else waits for it.
   */
  enqueueLater(item: I, ms: number): void;
  /** Add n (default 1) to a named counter; counters are summed over ranks at the end of the phase. */
  count(name: string, n?: number): void;
  /** This rank's counters of the current phase (read-only view). */
  readonly counters: Readonly<Counters>;
}

export interface Task<I> {
  readonly name: string;
  /** Called once on every rank at the start of the phase (enqueue on rank 0 only, or everywhere). */
  seed(ctx: TaskContext<I>): void | Promise<void>;
  /**
   * Optional lazy seed: items are pulled from it only while the queue is short, so a
   * rank's whole share of a phase (millions of files) never sits in memory at once.
   */
  source?(ctx: TaskContext<I>): AsyncIterable<I> | Iterable<I>;
  /** Process one item. A throw is a job-level failure: per-item errors are counted by the task itself. */
  process(item: I, ctx: TaskContext<I>): void | Promise<void>;
  /**
   * Optional gate, asked before the owner starts another item while one is in flight: a
   * promise holds the next items back in the queue (where thieves can still take them)
   * until it resolves. A rate limit uses it so that a rank does not take items it would
   * only sit on.
   */
  ready?(): Promise<void> | null;
  /** Validate an item received from a peer. */
  isItem(x: unknown): x is I;
  /** Items processed at once on one rank (overlaps I/O latency); default 1. */
  readonly concurrency?: number;
  /**
   * Optional caps within `concurrency` by kind of item: `of(item)` is the item's kind (an
   * index into `max`), `max[kind]` the most items of that kind in flight on this rank. The
   * owner then starts the newest item whose kind has room; the others stay queued, where
   * thieves can take them (a rank that listed many directories does not start reading them
   * all at once while its peers have nothing).
   */
  readonly kinds?: { of(item: I): number; readonly max: readonly number[] };
  /** false: items stay on the rank that seeded them (e.g. verification by a chosen rank). */
  readonly stealable?: boolean;
}

export interface PhaseResult {
  /** This rank's counters, including the engine's own (`items`, `steals`, `stolen`, `stealRequests`). */
  local: Counters;
  /** Counters summed over all ranks (every rank gets them). */
  total: Counters;
  /** Each rank's counters, by rank (every rank gets them). */
  perRank: Counters[];
}

/** The result of a phase no rank had anything to do in, and so did not run (every counter 0). */
export function noPhase(size: number): PhaseResult {
  return { local: {}, total: {}, perRank: Array.from({ length: size }, () => ({})) };
}
