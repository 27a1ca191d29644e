/**
 * FCP_TRACE_PHASES=1 (a named debug switch, not a test hook): rank 0 writes each phase's
 * wall time on stderr, `[phase] NAME MS ms`; bench/latency.mjs cuts latfs's counts there.
 * FCP_TRACE_PHASES=2: every rank writes `[phase rR] NAME MS ms cpu USER+SYS ms` instead, its
 * own CPU time in the phase (main thread and thread pool): where a job's CPU goes, by rank.
 */
import type { Runtime } from '../engine/runtime.js';

export function phaseTimer(rt: Runtime): (name: string) => void {
  const level = process.env.FCP_TRACE_PHASES;
  if (level === '2') return cpuTimer(rt.rank);
  if (level !== '1' || rt.rank !== 0) return () => {};
  let last = process.hrtime.bigint();
  process.stderr.write(`[phase] startup (process start to job) ${performance.now().toFixed(1)} ms\n`);
  return (name) => {
    const now = process.hrtime.bigint();
    process.stderr.write(`[phase] ${name} ${(Number(now - last) / 1e6).toFixed(1)} ms\n`);
    last = now;
  };
}

function cpuTimer(rank: number): (name: string) => void {
  const ms = (c: NodeJS.CpuUsage) => `${((c.user + c.system) / 1000).toFixed(0)} ms`;
  let last = process.hrtime.bigint();
  let lastCpu = process.cpuUsage();
  process.stderr.write(`[phase r${rank}] startup ${performance.now().toFixed(1)} ms cpu ${ms(lastCpu)}\n`);
  return (name) => {
    const now = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    process.stderr.write(`[phase r${rank}] ${name} ${(Number(now - last) / 1e6).toFixed(1)} ms cpu ${ms(process.cpuUsage(lastCpu))}\n`);
    last = now;
    lastCpu = cpu;
  };
}
