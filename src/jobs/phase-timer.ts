/**
 * FCP_TRACE_PHASES=1 (a named debug switch, not a test hook): rank 0 writes each phase's
 * wall time on stderr, `[phase] NAME MS ms`; bench/latency.mjs cuts latfs's counts there.
 */
import type { Runtime } from '../engine/runtime.js';

export function phaseTimer(rt: Runtime): (name: string) => void {
  if (process.env.FCP_TRACE_PHASES !== '1' || rt.rank !== 0) return () => {};
  let last = process.hrtime.bigint();
  process.stderr.write(`[phase] startup (process start to job) ${performance.now().toFixed(1)} ms\n`);
  return (name) => {
    const now = process.hrtime.bigint();
    process.stderr.write(`[phase] ${name} ${(Number(now - last) / 1e6).toFixed(1)} ms\n`);
    last = now;
  };
}
