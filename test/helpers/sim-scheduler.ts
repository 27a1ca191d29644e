/**
 * A simulated scheduler for the engine's unit tests: a discrete-event queue on a virtual
 * clock, driven by a seeded PRNG. Events run in time order; events due at the same time
 * run in a random order (so `soon` and equal delays explore interleavings too). Time
 * jumps to the next event: a 50 ms backoff costs nothing.
 */
import type { Scheduler } from '../../src/engine/scheduler.js';
import { rng } from './rng.js';

interface Event { at: number; tie: number; fn: () => void; cancelled: boolean }

export class SimScheduler implements Scheduler {
  now = 0;
  steps = 0;
  private readonly heap: Event[] = [];
  readonly rand: (n: number) => number;

  constructor(seed: number) {
    this.rand = rng(seed);
  }

  soon(fn: () => void): void {
    this.push(this.now, fn);
  }

  after(ms: number, fn: () => void): () => void {
    const ev = this.push(this.now + Math.max(0, ms), fn);
    return () => {
      ev.cancelled = true;
    };
  }

  random(): number {
    return this.rand(0x40000000) / 0x40000000;
  }

  get pending(): number {
    return this.heap.length;
  }

  /** Run the next event; false when there is none. */
  step(): boolean {
    for (;;) {
      const ev = this.pop();
      if (!ev) return false;
      if (ev.cancelled) continue;
      this.now = ev.at;
      this.steps++;
      ev.fn();
      return true;
    }
  }

  /**
   * Run events until `done()` or `maxSteps`; between bursts, let promise continuations
   * (collectives, the end of a phase) run. Returns whether `done()` became true: false
   * means the simulation stalled (no event left) or ran out of steps (a hang).
   */
  async run(done: () => boolean, maxSteps: number): Promise<boolean> {
    // Promise chains (a collective's steps, the end of a phase) settle in a few dozen
    // microtask turns; a macrotask turn is the fallback before calling it a stall.
    const settle = async () => {
      for (let k = 0; k < 64 && this.heap.length === 0 && !done(); k++) await null;
      if (this.heap.length === 0 && !done()) await new Promise<void>((r) => setImmediate(r));
    };
    await settle();
    while (!done()) {
      // One event, then one microtask turn: a promise the event resolved (an item that
      // took simulated time) continues before the next event, as it would in Node.
      if (this.step()) {
        if (this.steps > maxSteps) return false;
        await null;
        continue;
      }
      await settle();
      if (this.heap.length === 0 && !done()) {
        await new Promise<void>((r) => setImmediate(r));
        if (this.heap.length === 0 && !done()) return false;
      }
    }
    return true;
  }

  private push(at: number, fn: () => void): Event {
    const ev: Event = { at, tie: this.rand(0x40000000), fn, cancelled: false };
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
    return ev;
  }

  private pop(): Event | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

const less = (a: Event, b: Event) => a.at < b.at || (a.at === b.at && a.tie < b.tie);
