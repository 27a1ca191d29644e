/**
 * A token bucket whose callers pay first and then wait out their debt: `take(n)` removes
 * n tokens at once and, when that leaves the bucket below zero, resolves once the refill
 * has covered this caller's share of the debt. Items larger than the bucket (an 8 MiB
 * batch against a few MiB/s) therefore pass without any special case, the first item
 * waits for its own cost too (no burst at the start), and the rate over time is the rate
 * set, however the work is cut.
 *
 * Waiting is a timer, never a blocked event loop; waiters go in the order they took.
 * `setRate` takes effect at once, also for callers already waiting (their debt is in
 * tokens, not in time): an operator who raises the limit sees it within a timer tick.
 */
export class TokenBucket {
  private rate = 0;
  private tokens = 0;
  /** tokens added since creation (less the cap's losses): what a waiter's turn is measured in */
  private filled = 0;
  private last: number;
  private readonly waiters: { goAt: number; resolve: () => void }[] = [];
  private timer: NodeJS.Timeout | null = null;

  /**
   * @param burstSeconds the most an idle bucket saves up, in seconds of its rate (what may
   *   pass at once after a pause)
   */
  constructor(rate: number, private readonly burstSeconds = 0.1, private readonly now: () => number = () => performance.now()) {
    this.last = now();
    this.setRate(rate);
  }

  /** Tokens per second; 0: unlimited (everyone waiting goes at once). */
  setRate(rate: number): void {
    this.refill();
    this.rate = Math.max(0, rate);
    if (this.rate === 0) {
      this.tokens = 0;
      this.filled = 0;
      for (const w of this.waiters.splice(0)) w.resolve();
    }
    this.schedule();
  }

  get limited(): boolean {
    return this.rate > 0;
  }

  /** Take n tokens; null when the caller may go on now, else a promise of its turn. */
  take(n: number): Promise<void> | null {
    if (this.rate === 0 || n <= 0) return null;
    this.refill();
    this.tokens -= n;
    if (this.tokens >= 0) return null;
    // Its turn comes when the bucket is back at zero: the debt includes the waiters' before it.
    const goAt = this.filled - this.tokens;
    return new Promise<void>((resolve) => {
      this.waiters.push({ goAt, resolve });
      this.schedule();
    });
  }

  /** Callers waiting now (for tests). */
  get waiting(): number {
    return this.waiters.length;
  }

  private refill(): void {
    const t = this.now();
    const dt = (t - this.last) / 1000;
    this.last = t;
    if (this.rate === 0 || dt <= 0) return;
    const add = dt * this.rate;
    const cap = this.rate * this.burstSeconds;
    const next = Math.min(cap, this.tokens + add);
    this.filled += Math.max(0, next - this.tokens);
    this.tokens = next;
  }

  private release(): void {
    this.timer = null;
    this.refill();
    while (this.waiters.length > 0 && this.waiters[0]!.goAt <= this.filled + 1e-6) this.waiters.shift()!.resolve();
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const head = this.waiters[0];
    if (!head || this.rate === 0) return;
    const ms = Math.max(1, ((head.goAt - this.filled) / this.rate) * 1000);
    this.timer = setTimeout(() => this.release(), ms);
  }
}
