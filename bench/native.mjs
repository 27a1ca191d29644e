// Native batch micro-benchmark: the cost of copying small files with the addon's
// copyFiles alone (no walk, no ranks, no checkpoint), next to `cp -a` of the same tree.
//
//   node bench/native.mjs [--small-files N] [--reps N]
//
// Shows the floor of fcp's per-file copy on this machine: what the kernel's work per
// file costs when the batch runs on one thread (flags: keep holes, xattrs, hash, chown
// when root), against cp -a's whole cost per file (walk and mkdir included).

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot, benchDir, makeTree, dropDir, parseOpts, median, timeIt } from './lib.mjs';

export async function main(argv = process.argv.slice(2)) {
  const { opts } = parseOpts(argv, { 'small-files': 'number', reps: 'number' });
  const n = opts['small-files'] ?? 20000;
  const reps = opts.reps ?? 5;
  const { loadNative, COPY_FLAGS } = await import(pathToFileURL(path.join(repoRoot, 'dist/native/loader.js')).href);
  const native = loadNative();
  if (!native) return console.log('native: the addon is not built; skipped');
  const src = path.join(benchDir, `src-small-f${n}`);
  makeTree('small', src, { files: n });
  const dst = path.join(benchDir, 'native-dst');
  // the tree's files and directories, once
  const files = [];
  const dirs = [];
  (function walk(rel) {
    for (const e of fs.readdirSync(path.join(src, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) { dirs.push(r); walk(r); } else if (e.isFile()) files.push([Buffer.from(r), fs.lstatSync(path.join(src, r), { bigint: true })]);
    }
  })('');
  const flags = COPY_FLAGS.SPARSE | COPY_FLAGS.XATTRS | COPY_FLAGS.HASH | (process.getuid?.() === 0 ? COPY_FLAGS.CHOWN : 0);
  const B = 64;
  const batchTimes = [];
  const cpTimes = [];
  for (let r = 0; r < reps + 1; r++) {
    dropDir(dst);
    for (const d of dirs) fs.mkdirSync(path.join(dst, d), { recursive: true });
    // As fcp does: each root beneath an anchor on its parent directory (src/copy/beneath.ts),
    // every file opened with openat2 beneath it.
    const anchors = Int32Array.of(native.openAnchor(Buffer.from(path.dirname(src))), native.openAnchor(Buffer.from(path.dirname(dst))));
    const roots = [Buffer.from(path.basename(src)), Buffer.from(path.basename(dst))];
    const t0 = performance.now();
    for (let i = 0; i < files.length; i += B) {
      const list = files.slice(i, i + B);
      const nums = new Float64Array(list.length * 10);
      list.forEach(([, st], k) => nums.set([0, Number(st.size), Number(st.mode), Number(st.uid), Number(st.gid),
        Number(st.atimeNs / 1000000000n), Number(st.atimeNs % 1000000000n), Number(st.mtimeNs / 1000000000n), Number(st.mtimeNs % 1000000000n),
        Number(st.blocks)], k * 10));
      await native.copyFiles(anchors, roots, list.map(([p]) => p), nums, flags);
    }
    const tb = (performance.now() - t0) / 1000;
    for (const fd of anchors) native.closeFd(fd);
    dropDir(dst);
    const tc = await timeIt('cp', ['-a', src, dst]);
    if (r > 0) { batchTimes.push(tb); cpTimes.push(tc); } // round 0 warms up
  }
  dropDir(dst);
  const b = median(batchTimes);
  const c = median(cpTimes);
  console.log(`### native batch: ${files.length} small files, one thread, batches of ${B}, medians of ${reps}\n`);
  console.log(`copyFiles alone: ${(b * 1e6 / files.length).toFixed(1)} us per file; cp -a: ${(c * 1e6 / files.length).toFixed(1)} us per file (walk, mkdir and process start included)`);
  console.log(`\nReproduce: \`node bench/native.mjs ${argv.join(' ')}\``);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) main();
