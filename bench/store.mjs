// Checkpoint store micro-benchmark: the main-thread cost of recording N entries and N
// finished files in a rank's store (src/checkpoint/rank-store.ts), as a copy of N small
// files does, on /dev/shm.
//
//   node bench/store.mjs [--store-rows N] [--reps N]
//
// Prints medians (ms) of RankStore.entry x N + flush and RankStore.doneWork x N + flush.
// Why: on trees of small files the checkpoint is a visible share of fcp's per-file cost
// (compare `fcp --no-checkpoint` in bench/copy.mjs runs by hand).

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot, parseOpts, median } from './lib.mjs';

export async function main(argv = process.argv.slice(2)) {
  const { opts } = parseOpts(argv, { 'store-rows': 'number', reps: 'number' });
  const n = opts['store-rows'] ?? 20000;
  const reps = opts.reps ?? 5;
  const { RankStore } = await import(pathToFileURL(path.join(repoRoot, 'dist/checkpoint/rank-store.js')).href);
  const es = [];
  for (let i = 0; i < n; i++) {
    es.push({
      r: 0, p: Buffer.from(`d${String(i / 10000 | 0).padStart(3, '0')}/e${String(i / 100 | 0).padStart(5, '0')}/f${String(i).padStart(8, '0')}.dat`), k: 'f',
      m: { mode: 0o100644, uid: 0, gid: 0, size: 1234, nlink: 1, dev: 45, ino: 100000 + i, atime: [1700000000, 123456789], mtime: [1700000000, 987654321] },
    });
  }
  const digest = 'ab'.repeat(16);
  const entries = [];
  const done = [];
  for (let r = 0; r < reps + 1; r++) {
    const file = `/dev/shm/fcp-bench-store-${process.pid}.db`;
    const st = new RankStore(file);
    let t = performance.now();
    for (const e of es) st.entry(e);
    st.flush();
    const te = performance.now() - t;
    t = performance.now();
    for (const e of es) st.doneWork(e, -1, e.m.size, digest);
    st.flush();
    const td = performance.now() - t;
    st.close();
    for (const s of ['', '-wal', '-shm']) fs.rmSync(file + s, { force: true });
    if (r > 0) { entries.push(te); done.push(td); } // round 0 warms up
  }
  console.log(`### checkpoint store: ${n} rows, medians of ${reps}\n`);
  console.log(`entries: ${median(entries).toFixed(1)} ms (${(median(entries) * 1000 / n).toFixed(2)} us/row); done: ${median(done).toFixed(1)} ms (${(median(done) * 1000 / n).toFixed(2)} us/row)`);
  console.log(`\nReproduce: \`node bench/store.mjs ${argv.join(' ')}\``);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) main();
