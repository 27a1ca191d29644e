/**
 * Termination detection: Dijkstra's token ring made correct for asynchronous delivery
 * with Safra's message counting.
 *
 * Why counting: ZeroMQ has no synchronous send, so work may be in flight when the token
 * passes a rank. Each rank counts basic messages (steal replies that carry work): +1 per
 * sent, -1 per received. The token sums the counts around the ring; a rank that received
 * work since it last forwarded the token is black and blackens the token. Rank 0 concludes
 * only when the token comes back white, rank 0 itself is white and passive, and the sum
 * (token count + rank 0's count) is zero: then no work is in flight anywhere.
 *
 * The ring runs 0 -> 1 -> ... -> size-1 -> 0. A rank forwards the token only when passive.
 */
export interface Token { round: number; black: boolean; count: number }

export class SafraTermination {
  /** Basic messages sent minus received, this phase. */
  count = 0;
  black = false;
  private held: Token | null = null;
  private round = 0;
  private roundInFlight = false;
  private done = false;

  constructor(
    private readonly rank: number,
    private readonly size: number,
    private readonly sendToken: (to: number, token: Token) => void,
    private readonly onTerminate: () => void,
  ) {}

  workSent(): void {
    this.count++;
  }

  workReceived(): void {
    this.count--;
    this.black = true;
  }

  tokenArrived(token: Token): void {
    this.held = token;
  }

  get terminated(): boolean {
    return this.done;
  }

  /** Call whenever this rank is passive (no queued or running work). */
  passive(): void {
    if (this.done) return;
    if (this.size === 1) {
      this.finish();
      return;
    }
    if (this.rank !== 0) {
      if (!this.held) return;
      const t = this.held;
      this.held = null;
      this.sendToken((this.rank + 1) % this.size, { round: t.round, black: t.black || this.black, count: t.count + this.count });
      this.black = false;
      return;
    }
    if (this.held) {
      const t = this.held;
      this.held = null;
      this.roundInFlight = false;
      if (t.round === this.round && !t.black && !this.black && t.count + this.count === 0) {
        this.finish();
        return;
      }
    }
    if (!this.roundInFlight) {
      this.round++;
      this.roundInFlight = true;
      this.black = false;
      this.sendToken(1, { round: this.round, black: false, count: 0 });
    }
  }

  private finish(): void {
    this.done = true;
    this.onTerminate();
  }
}
