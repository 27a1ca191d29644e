// Checkpoint store micro-benchmark: the main-thread cost of recording N entries and N
// finished files in a rank's store (src/checkpoint/rank-store.ts), as a copy of N small
// files does, on /dev/shm.
//
//   node bench/store.mjs [--store-rows N] [--reps N]
//
// Prints medians (ms) of both ways a rank records N small files:
// - per row: RankStore.entry x N + flush, RankStore.doneWork x N + flush (what spilled
//   walk lists and chunks of large files use);
// - per batch: RankStore.listing per directory of 100 names (the walk's records) and
//   RankStore.doneBatch per copy batch of 64 files (the native batch's), + flush: what a
//   copy of small files does since the checkpoint records batches.
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
  const listings = [];
  const batches = [];
  // per batch: the walk's stat records (15 numbers per name) of 100-name directories, and
  // copy batches of 64 files (10 numbers, 3 status fields, 16 digest bytes per file)
  const DIR = 100;
  const BATCH = 64;
  const names = [];
  for (let i = 0; i < DIR; i++) names.push(Buffer.from(`f${String(i).padStart(8, '0')}.dat`));
  const packed = Buffer.concat(names.flatMap((x) => [x, Buffer.alloc(1)]));
  const stats = new Float64Array(DIR * 15).fill(1);
  const rels = Buffer.concat(es.slice(0, BATCH).flatMap((e) => [e.p, Buffer.alloc(1)]));
  const nums = new Float64Array(BATCH * 10).fill(1);
  const status = new Float64Array(BATCH * 3);
  const digests = Buffer.alloc(BATCH * 16, 0xab);
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
    t = performance.now();
    for (let i = 0; i < n; i += DIR) st.listing(0, Buffer.from(`d${i}`), packed, stats, DIR);
    st.flush();
    const tl = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < n; i += BATCH) st.doneBatch(rels, nums, status, digests, BATCH);
    st.flush();
    const tb = performance.now() - t;
    st.close();
    for (const s of ['', '-wal', '-shm']) fs.rmSync(file + s, { force: true });
    if (r > 0) { entries.push(te); done.push(td); listings.push(tl); batches.push(tb); } // round 0 warms up
  }
  const us = (ms) => (ms * 1000 / n).toFixed(2);
  console.log(`### checkpoint store: ${n} files, medians of ${reps}\n`);
  console.log(`per row:   entries ${median(entries).toFixed(1)} ms (${us(median(entries))} us/file); done ${median(done).toFixed(1)} ms (${us(median(done))} us/file)`);
  console.log(`per batch: listings of ${DIR} ${median(listings).toFixed(1)} ms (${us(median(listings))} us/file); done batches of ${BATCH} ${median(batches).toFixed(1)} ms (${us(median(batches))} us/file)`);
  console.log(`\nReproduce: \`node bench/store.mjs ${argv.join(' ')}\``);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) main();
