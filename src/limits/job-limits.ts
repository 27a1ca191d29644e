/**
 * The job's rate limits, set up on every rank: --bwlimit and --max-ops as given, and with
 * --limits-file what the file says (its keys win over the options; a key taken out of the
 * file gives the option's value back). Rank 0 reads the file, once before the job's work
 * (a collective broadcast, so every rank starts with the same limits) and then whenever
 * it changes.
 *
 * Shares: each rank reports with its progress (every second) whether it had work to pace;
 * rank 0 sums that and, when the number of such ranks changed, tells every rank to split
 * the rate among that many (Runtime.announceRates, down the tree). At the start every
 * rank counts.
 */
import type { Runtime } from '../engine/runtime.js';
import { LimitsFile } from './limits-file.js';
import { effectiveLimits, isJobLimits, isLimited, sameLimits, showLimits, type JobLimits } from './rates.js';
import { Throttle } from './throttle.js';
import { showPath } from '../model/paths.js';

export interface LimitsOptions {
  /** --bwlimit and --max-ops (0: unlimited) */
  cli: JobLimits;
  /** --limits-file, or null */
  file: string | null;
  /** how often rank 0 looks at the file (default 2 s) */
  checkMs?: number;
  /** one line on stderr (rank 0): bad lines, changes of the limits */
  warn: (line: string) => void;
}

export interface JobThrottle {
  /** null: no limit now and none can come (no --limits-file): callers skip it, at no cost */
  throttle: Throttle | null;
  /** Every rank shares the rate again (a stage where all work, outside a phase's progress reports). */
  allRanks(): void;
  stop(): void;
}

/** The progress gauge's name: ranks that had work to pace in the last interval. */
const GAUGE = 'limitedRanks';

/** Collective (when --limits-file is given): every rank calls it at the same point. */
export async function startJobLimits(rt: Runtime, o: LimitsOptions): Promise<JobThrottle> {
  if (o.file === null && !isLimited(o.cli)) return { throttle: null, allRanks: () => {}, stop: () => {} };
  const path = o.file;
  const file = rt.rank === 0 && path !== null
    ? new LimitsFile({ path, everyMs: o.checkMs ?? 2000, warn: o.warn, onChange: (t) => changed(effectiveLimits(o.cli, t)) })
    : null;
  const initial = path === null ? o.cli : await rt.collectives.bcast<JobLimits>(file ? effectiveLimits(o.cli, file.readNow()) : null, isJobLimits);
  const throttle = new Throttle(rt.size, initial);
  const announce = () => {
    if (rt.size > 1) rt.announceRates({ ...throttle.limits, ranks: throttle.sharedBy });
  };
  function changed(l: JobLimits): void {
    if (sameLimits(l, throttle.limits)) return;
    throttle.set(l);
    announce();
    o.warn(`limits now ${showLimits(l)} (from '${showPath(path!)}')`);
  }
  rt.onRates((r) => throttle.set({ bytesPerSecond: r.bytesPerSecond, opsPerSecond: r.opsPerSecond }, r.ranks));
  // The ranks with work in the last two intervals share the rate: one more is counted at
  // once (the limit must hold), one fewer only when it stayed out a whole interval (a rank
  // between two steals is not idle). At the start of a phase every rank counts again (those
  // idle in the last phase, as all but one in a small mkdir, are busy in this one).
  let previous = rt.size;
  rt.setProgressGauge({
    name: GAUGE,
    sample: () => throttle.sample(),
    onTotal: (now) => {
      const busy = Math.max(now, previous);
      previous = now;
      // Nobody had work to pace (none left, or the limits are not reached): keep the shares.
      if (busy < 1 || busy === throttle.sharedBy || !throttle.active) return;
      throttle.set(throttle.limits, busy);
      announce();
    },
    // A new phase: every rank counts again until the reports say otherwise (the ranks idle
    // in the last phase, mkdir on one rank, are busy in this one).
    onPhase: () => allRanks(),
  });
  function allRanks(): void {
    previous = rt.size;
    throttle.set(throttle.limits, rt.size);
  }
  file?.start();
  return {
    throttle,
    allRanks,
    stop: () => {
      file?.stop();
      rt.onRates(null);
      rt.setProgressGauge(null);
    },
  };
}
