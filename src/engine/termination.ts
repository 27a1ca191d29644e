/**
 * Termination detection: Safra's algorithm (Dijkstra's token, made correct for
 * asynchronous delivery by counting messages), with the token's round trip run as a wave
 * over the job's binary tree instead of around a ring.
 *
 * Why counting: ZeroMQ has no synchronous send, so work may be in flight when a wave
 * passes a rank. Each rank counts basic messages (steal replies that carry work): +1 per
 * sent, -1 per received, over the whole phase. A rank that received work since it last
 * reported is black.
 *
 * Why a tree: a ring's round trip is `size` hops one after the other, and each hop waits
 * for a rank to be scheduled; at 64 ranks on two cores the ring took most of a second per
 * phase of a one-file copy. The tree's is 2·log2(size) hops.
 *
 * A wave: rank 0 sends the round's token down the tree (each rank forwards it to its
 * children at once, busy or not). A rank reports up once it has the round, is passive,
 * and every child has reported: black if it or any child is black, and its count plus its
 * children's. It then turns white. Rank 0, passive with every child's report in, concludes
 * when no report is black, it is white itself (it turned white when it started the round)
 * and the counts sum to zero; else it starts the next round. Rounds never overlap.
 *
 * Why that is safe with reports taken at different times: were work left when rank 0
 * concludes, some rank received a message after its report; take the earliest such
 * message. Its sender had reported after sending it (else the sender, active after its
 * report, would have received an earlier such message), so it is counted as sent and
 * not as received. For the sum to be zero some message must be counted as received and
 * not as sent: sent after its sender's report (so after the round began), received before
 * its receiver's report, which made the receiver black in this round. Then the round
 * cannot conclude. (The engine's property test checks this over 10,000 random jobs.)
 */
import { treeChildren, treeParent } from './collectives.js';

/** One round's token: going down (round only) or a subtree's report going up. */
export interface Token { round: number; up: boolean; black: boolean; count: number }

export class SafraTermination {
  /** Basic messages sent minus received, this phase. */
  count = 0;
  black = false;
  /** The round this rank is in (has from its parent, or started) and has not reported yet; 0: none. */
  private round = 0;
  /** The latest round this rank took part in (a down token of an earlier one is stale). */
  private lastRound = 0;
  /** Children's reports of that round. */
  private reports = 0;
  private reportBlack = false;
  private reportCount = 0;
  private done = false;
  private readonly children: number[];

  constructor(
    private readonly rank: number,
    private readonly size: number,
    private readonly sendToken: (to: number, token: Token) => void,
    private readonly onTerminate: () => void,
  ) {
    this.children = treeChildren(rank, size);
  }

  workSent(): void {
    this.count++;
  }

  workReceived(): void {
    this.count--;
    this.black = true;
  }

  /**
   * A token from `from`: the next round from the parent (passed on down at once), or a
   * child's report of the current round. Anything else (a rank that is neither, a round
   * this rank is not in) is ignored.
   */
  tokenArrived(token: Token, from: number): void {
    if (this.done) return;
    if (!token.up) {
      if (this.rank === 0 || from !== treeParent(this.rank) || token.round <= this.lastRound) return;
      this.startRound(token.round);
      return;
    }
    if (token.round !== this.round || !this.children.includes(from)) return;
    this.reports++;
    this.reportBlack ||= token.black;
    this.reportCount += token.count;
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
    if (this.round > 0 && this.reports === this.children.length) {
      const black = this.reportBlack || this.black;
      const count = this.reportCount + this.count;
      const round = this.round;
      this.round = this.rank === 0 ? round : 0;
      this.black = false;
      if (this.rank !== 0) {
        this.sendToken(treeParent(this.rank), { round, up: true, black, count });
        return;
      }
      if (!black && count === 0) {
        this.finish();
        return;
      }
      this.startRound(round + 1);
      return;
    }
    if (this.rank === 0 && this.round === 0) this.startRound(1);
  }

  private startRound(round: number): void {
    this.round = round;
    this.lastRound = round;
    this.reports = 0;
    this.reportBlack = false;
    this.reportCount = 0;
    // Rank 0's own colour covers what it receives during the round (see the header).
    if (this.rank === 0) this.black = false;
    for (const c of this.children) this.sendToken(c, { round, up: false, black: false, count: 0 });
  }

  private finish(): void {
    this.done = true;
    this.onTerminate();
  }
}
