/**
 * Liveness: every rank sends a heartbeat to its ring successor each `everyMs` and watches
 * its predecessor; any message counts as a sign of life. A predecessor silent for
 * `timeoutMs` is declared dead (`onDead` gets the reason; the runtime aborts the job
 * naming it), so a killed rank or a lost host stops the job within seconds instead of
 * hanging it. Once the job is finishing, silence means a peer that left, not one that died.
 */
import type { Message } from '../transport/messages.js';

export interface HeartbeatOptions {
  rank: number;
  size: number;
  everyMs: number;
  timeoutMs: number;
  send(to: number, msg: Message): void;
  /** "rank 3 (host, pid 1234)" */
  describe(rank: number): string;
  /** True once the job's work is done: a silent peer is then not reported. */
  finishing(): boolean;
  onDead(reason: string): void;
}

export class Heartbeat {
  private readonly pred: number;
  private lastSeenPred = Date.now();
  private lastCheck = Date.now();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: HeartbeatOptions) {
    this.pred = (o.rank - 1 + o.size) % o.size;
  }

  /** A message arrived from `from` (call for every message, heartbeats included). */
  heard(from: number): void {
    if (from === this.pred) this.lastSeenPred = Date.now();
  }

  start(): void {
    const { everyMs, timeoutMs } = this.o;
    const succ = (this.o.rank + 1) % this.o.size;
    this.lastSeenPred = this.lastCheck = Date.now();
    this.timer = setInterval(() => {
      const now = Date.now();
      // If this rank itself was stalled (a long synchronous step), messages from the
      // predecessor may be waiting unread: do not blame it for our own silence.
      if (now - this.lastCheck > 3 * everyMs) this.lastSeenPred = now;
      this.lastCheck = now;
      this.o.send(succ, { type: 'hb' });
      if (now - this.lastSeenPred > timeoutMs && !this.o.finishing()) {
        this.o.onDead(`${this.o.describe(this.pred)} stopped responding (no message for ${Math.round((now - this.lastSeenPred) / 1000)} s, noticed by rank ${this.o.rank}): it died or its host is unreachable`);
      }
    }, everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
