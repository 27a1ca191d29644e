// Preloaded into fcp (NODE_OPTIONS=--require) by bench/latency.mjs --per-phase,
// to cut latfs's request counts exactly at fcp's phase boundaries.
//
// With FCP_TRACE_PHASES=1, fcp's rank 0 writes "[phase] NAME N ms" on stderr
// when a phase ends. Reacting to that line from outside would be late by
// however long the benchmark takes to be scheduled (tens of ms on a busy
// machine: hundreds of requests of the next phase), so instead this hook runs
// inside rank 0: after each phase line it asks latfs for a snapshot (SIGUSR1)
// and blocks rank 0 until latfs has written it, then keeps a copy named after
// the phase. Rank 0 is held still while the counts are taken; other ranks are
// normally waiting in the collective between phases.
//
// Configured by the benchmark, not by fcp: LATBENCH_LATFS_PID, LATBENCH_STATS
// (latfs --stats file), LATBENCH_PHASE_DIR (where the copies go). Without them
// it does nothing. Nothing in src/ knows about it.

'use strict';
const fs = require('node:fs');
const path = require('node:path');

const pid = Number(process.env.LATBENCH_LATFS_PID);
const stats = process.env.LATBENCH_STATS;
const outDir = process.env.LATBENCH_PHASE_DIR;

if (pid && stats && outDir) {
  const tick = new Int32Array(new SharedArrayBuffer(4));
  const sleep = (ms) => Atomics.wait(tick, 0, 0, ms);
  const uptime = () => {
    try { return JSON.parse(fs.readFileSync(stats, 'utf8')).uptime_s; } catch { return undefined; }
  };
  let seq = 0;
  const snapshot = (name) => {
    const before = uptime();
    process.kill(pid, 'SIGUSR1');
    for (let i = 0; i < 5000; i++) {
      const now = uptime();
      if (now !== undefined && now !== before) break;
      sleep(1);
    }
    const file = path.join(outDir, `${String(seq++).padStart(2, '0')}.json`);
    fs.writeFileSync(file, JSON.stringify({ phase: name, stats: JSON.parse(fs.readFileSync(stats, 'utf8')) }));
  };
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = (chunk, ...rest) => {
    const ok = write(chunk, ...rest);
    const m = typeof chunk === 'string' && /^\[phase\] (\S+)/.exec(chunk);
    if (m) snapshot(m[1]);
    return ok;
  };
}
