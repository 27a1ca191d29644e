/**
 * Periodic asynchronous progress reduction along the collectives' tree.
 *
 * Every interval each rank sends its parent the sum of its own counters and the latest
 * sums its children sent; rank 0 hands the total to a callback. Nobody waits for
 * anybody, so a busy rank only makes the total a little stale, and rank 0 receives from
 * two children, not from every rank.
 */
import type { Counters, Message, ProgressMsg } from '../transport/messages.js';
import { treeChildren, treeParent } from './collectives.js';

export function addCounters(a: Counters, b: Readonly<Counters>): Counters {
  for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v;
  return a;
}

export class ProgressReducer {
  private readonly latest = new Map<number, ProgressMsg>();
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly rank: number,
    private readonly size: number,
    private readonly send: (to: number, msg: Message) => void,
  ) {}

  onMessage(from: number, msg: ProgressMsg): void {
    const prev = this.latest.get(from);
    if (!prev || prev.phase < msg.phase || (prev.phase === msg.phase && prev.seq < msg.seq)) this.latest.set(from, msg);
  }

  /** Report `local()` (this rank's counters of phase `phase()`) every `intervalMs`; rank 0 calls `onTotal`. */
  start(intervalMs: number, phase: () => number, local: () => Readonly<Counters> | null, onTotal: (phase: number, total: Counters) => void): void {
    this.stop();
    this.timer = setInterval(() => {
      const p = phase();
      const own = local();
      if (!own) return;
      const sum = addCounters({}, own);
      for (const c of treeChildren(this.rank, this.size)) {
        const m = this.latest.get(c);
        if (m && m.phase === p) addCounters(sum, m.counters);
      }
      if (this.rank === 0) onTotal(p, sum);
      else this.send(treeParent(this.rank), { type: 'progress', phase: p, seq: this.seq++, counters: sum });
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
