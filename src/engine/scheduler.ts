/**
 * Where the work loop gets its turns, timers and random choices. The real one is the
 * Node event loop and Math.random; engine unit tests pass a simulated one (a seeded
 * discrete-event queue, test/helpers/sim-scheduler.ts), so that many ranks in one
 * process run in a chosen, reproducible interleaving and a failure names its seed.
 */
export interface Scheduler {
  /** Run `fn` on a later turn, after messages that already arrived (setImmediate). */
  soon(fn: () => void): void;
  /** Run `fn` after `ms` milliseconds; the returned function cancels it. */
  after(ms: number, fn: () => void): () => void;
  /** A number in [0, 1), as Math.random. */
  random(): number;
}

export const realScheduler: Scheduler = {
  soon: (fn) => void setImmediate(fn),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  random: Math.random,
};
