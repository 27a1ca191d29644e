/**
 * One rank's share of the job's limits: a token bucket for data bytes and one for
 * metadata operations, each refilled at (job rate / ranks sharing it). Each rank meters
 * itself; rank 0 only says how many ranks share the rate (those that had work in the
 * last progress interval, see job-limits.ts), so a rank left with work at the end of a
 * phase, or one that holds the items in flight that thieves cannot take, gets the idle
 * ranks' share instead of the job running below its limit.
 *
 * Callers wait before they register a request in flight (io/in-flight.ts), so a wait
 * here never looks like a stalled file system.
 */
import { TokenBucket } from './token-bucket.js';
import { isLimited, UNLIMITED, type JobLimits } from './rates.js';

export class Throttle {
  private readonly bytes = new TokenBucket(0);
  private readonly ops = new TokenBucket(0);
  /** false: no limit is set, and callers skip the throttle altogether (no cost). */
  active = false;
  private current: JobLimits = UNLIMITED;
  private sharers: number;
  /** took since the last sample, and takes waiting now */
  private took = false;
  private waiting = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(ranks: number, limits: JobLimits = UNLIMITED) {
    this.sharers = Math.max(1, ranks);
    this.set(limits);
  }

  /** The job-wide limits, shared evenly by `sharers` ranks (default: as before). */
  set(limits: JobLimits, sharers = this.sharers): void {
    this.current = limits;
    this.sharers = Math.max(1, sharers);
    const share = (rate: number) => (rate > 0 ? rate / this.sharers : 0);
    this.bytes.setRate(share(limits.bytesPerSecond));
    this.ops.setRate(share(limits.opsPerSecond));
    this.active = isLimited(limits);
  }

  get limits(): JobLimits {
    return this.current;
  }

  get sharedBy(): number {
    return this.sharers;
  }

  /** 1 when this rank had work to pace since the last sample (or has now), else 0; resets. */
  sample(): number {
    const busy = this.took || this.waiting > 0;
    this.took = false;
    return busy ? 1 : 0;
  }

  /**
   * null when no take is waiting for its turn, else a promise that resolves once none
   * is: the next item is then taken from the queue (Task.ready), not before, so items
   * this rank could not start yet stay where idle ranks can steal them.
   */
  idle(): Promise<void> | null {
    if (this.waiting === 0) return null;
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Wait for this rank's turn to move `bytes` bytes and make `ops` operations. */
  async take(bytes: number, ops: number): Promise<void> {
    this.took = true;
    const b = this.bytes.take(bytes);
    const o = b ? null : this.ops.take(ops);
    if (!b && !o) return;
    this.waiting++;
    try {
      if (b) {
        await b;
        const o2 = this.ops.take(ops);
        if (o2) await o2;
      } else await o;
    } finally {
      if (--this.waiting === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }
}
