/**
 * The file system requests a rank has in flight, so that one that never returns (a hung
 * server: Lustre OST, NFS hard mount) is named instead of freezing the job silently.
 *
 * Cheap on the hot path: a native batch of files is one record, not one per file; the
 * batch publishes which file it is on through a shared cursor (see copyFiles in
 * native/src/batch.cc), read here only when the watchdog ticks (a few times a second).
 *
 * The watchdog does two things:
 * - a batch that has been on one file for `handoffMs` gives the files it has not started
 *   to `handoff` (they become a new batch), so a stuck file holds back only itself;
 * - a request older than `stallMs` is reported once through `onStall` (the job then
 *   stops: see phases/run.ts).
 */

export interface Stall { op: string; path: Buffer | string; seconds: number }

interface Single { kind: 'one'; op: string; path: Buffer | string; since: number }

interface Batch {
  kind: 'batch';
  op: string;
  /** the path of file i of the batch (only built when it is reported) */
  pathOf: (i: number) => Buffer | string;
  length: number;
  cursor: Int32Array;
  /** cursor value last seen, and since when it has not moved */
  at: number;
  since: number;
  /** the files from index `from` on were taken from the worker (stopping: by drain, for nobody) */
  handoff: (from: number, stopping: boolean) => void;
  handedOff: boolean;
}

type Request = Single | Batch;

/**
 * Batches stuck at once past which no more are handed on: the files after a stuck one in
 * the same directory wait for that directory's lock in the kernel and get stuck too, each
 * holding a thread-pool thread (16): the rest of the job keeps the others.
 */
const MAX_STUCK = 4;

export interface InFlightOptions {
  stallMs: number;
  /** a batch on one file this long hands the rest on (default: 2 s, at most stallMs / 2) */
  handoffMs?: number;
  onStall: (s: Stall) => void;
  now?: () => number;
}

export class InFlight {
  private readonly reqs = new Set<Request>();
  private timer: NodeJS.Timeout | null = null;
  private stalled = false;
  private readonly handoffMs: number;
  private readonly now: () => number;

  constructor(private readonly o: InFlightOptions) {
    this.handoffMs = o.handoffMs ?? Math.min(2000, o.stallMs / 2);
    this.now = o.now ?? Date.now;
  }

  /** Start checking (every quarter of the shorter threshold, at most once a second). */
  start(): void {
    const every = Math.max(50, Math.min(1000, this.handoffMs / 4, this.o.stallMs / 4));
    this.timer = setInterval(() => this.check(), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One request (an fs call, a chunk); call the returned function when it returns. */
  begin(op: string, path: Buffer | string): () => void {
    const r: Single = { kind: 'one', op, path, since: this.now() };
    this.reqs.add(r);
    return () => this.reqs.delete(r);
  }

  /** fn as one request (op, path) in flight. */
  async track<T>(op: string, path: Buffer | string, fn: () => Promise<T>): Promise<T> {
    const end = this.begin(op, path);
    try {
      return await fn();
    } finally {
      end();
    }
  }

  /**
   * A native batch with its cursor (Int32Array(1), 0 before it starts); call the returned
   * function when the batch returns.
   */
  beginBatch(op: string, length: number, cursor: Int32Array, pathOf: (i: number) => Buffer | string, handoff: (from: number, stopping: boolean) => void): () => void {
    const r: Batch = { kind: 'batch', op, pathOf, length, cursor, at: 0, since: this.now(), handoff, handedOff: false };
    this.reqs.add(r);
    if (this.draining) this.cutShort(r);
    return () => this.reqs.delete(r);
  }

  /** Set once the job stops: take no new work (see drain). */
  draining = false;

  /**
   * The job is stopping: wait (at most `ms`) for the requests in flight to return, so what
   * they finished is recorded before the checkpoint closes (on a full disk a batch's last
   * files fail at once; a hung request never returns, hence the bound).
   */
  async drain(ms: number): Promise<void> {
    this.draining = true;
    // A batch of small files on a slow file system runs for seconds: each finishes the file
    // it is on and starts no other, so it returns well within the bound and what it did
    // is recorded (its files left are not in DST: the resume copies them).
    for (const r of this.reqs) if (r.kind === 'batch') this.cutShort(r);
    const until = this.now() + ms;
    while (this.reqs.size > 0 && this.now() < until) await new Promise((r) => setTimeout(r, 10));
  }

  /** Take the files batch r has not started from it (the worker races to claim the next one). */
  private cutShort(r: Batch): void {
    for (;;) {
      const c = Atomics.load(r.cursor, 0);
      if (c < 0 || c >= r.length) return; // handed on already, or on its last file
      if (Atomics.compareExchange(r.cursor, 0, c, -1) === c) {
        r.handedOff = true;
        r.handoff(c, true);
        return;
      }
    }
  }

  /** Requests in flight now (for tests and progress). */
  get size(): number {
    return this.reqs.size;
  }

  /** One watchdog tick (public for tests). */
  check(): void {
    const now = this.now();
    let stuck = 0;
    for (const r of this.reqs) if (r.kind === 'batch' && r.at >= 1 && now - r.since >= this.handoffMs) stuck++;
    for (const r of this.reqs) {
      if (r.kind === 'batch' && !r.handedOff) {
        const c = Atomics.load(r.cursor, 0);
        if (c !== r.at) {
          r.at = c;
          r.since = now;
        }
        // On file c-1 too long, with files after it not started: take those (the worker
        // stops before the next one; a racing claim by the worker makes the swap fail).
        if (c >= 1 && c < r.length && now - r.since >= this.handoffMs && stuck <= MAX_STUCK && Atomics.compareExchange(r.cursor, 0, c, -1) === c) {
          r.handedOff = true;
          r.handoff(c, false);
        }
      }
      if (this.stalled) continue;
      const age = now - r.since;
      if (age >= this.o.stallMs) {
        // A batch not started yet (cursor 0) waits for a thread, not for the file system.
        if (r.kind === 'batch' && r.at === 0) continue;
        this.stalled = true;
        const path = r.kind === 'one' ? r.path : r.pathOf(r.at - 1);
        this.o.onStall({ op: r.op, path, seconds: Math.round(age / 1000) });
      }
    }
  }
}
