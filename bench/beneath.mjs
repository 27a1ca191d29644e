// What resolving beneath anchors costs the native batch: copyFiles by whole paths (open
// with O_NOFOLLOW: only the last component protected) against copyFiles beneath anchor
// fds (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, what fcp does), in one process,
// alternating, on one directory of small files.
//
//   node bench/beneath.mjs [--small-files N] [--reps N]

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot, benchDir, dropDir, parseOpts, median } from './lib.mjs';

export async function main(argv = process.argv.slice(2)) {
  const { opts } = parseOpts(argv, { 'small-files': 'number', reps: 'number' });
  const count = opts['small-files'] ?? 3000;
  const reps = opts.reps ?? 9;
  const { loadNative, COPY_FLAGS, COPY_NUMS } = await import(pathToFileURL(path.join(repoRoot, 'dist/native/loader.js')).href);
  const native = loadNative();
  if (!native) return console.log('beneath: the addon is not built; skipped');
  const base = path.join(benchDir, 'beneath');
  dropDir(base);
  fs.mkdirSync(path.join(base, 'src', 'd'), { recursive: true });
  for (let i = 0; i < count; i++) fs.writeFileSync(path.join(base, 'src', 'd', `f${i}`), `file ${i}\n`);
  const files = fs.readdirSync(path.join(base, 'src', 'd')).map((f) => [Buffer.from(`d/${f}`), fs.lstatSync(path.join(base, 'src', 'd', f), { bigint: true })]);
  const flags = COPY_FLAGS.SPARSE | COPY_FLAGS.XATTRS | COPY_FLAGS.HASH | (process.getuid?.() === 0 ? COPY_FLAGS.CHOWN : 0);
  const once = async (beneath) => {
    dropDir(path.join(base, 'dst'));
    fs.mkdirSync(path.join(base, 'dst', 'src', 'd'), { recursive: true });
    const anchors = Int32Array.of(native.openAnchor(Buffer.from(base)), native.openAnchor(Buffer.from(path.join(base, 'dst'))));
    const t0 = performance.now();
    for (let i = 0; i < files.length; i += 64) {
      const list = files.slice(i, i + 64);
      const nums = new Float64Array(list.length * COPY_NUMS);
      list.forEach(([, st], k) => nums.set([0, Number(st.size), Number(st.mode), Number(st.uid), Number(st.gid), 1, 0, 1, 0, Number(st.blocks)], k * COPY_NUMS));
      const rels = list.map(([p]) => p);
      if (beneath) await native.copyFiles(anchors, [Buffer.from('src'), Buffer.from('src')], rels, nums, flags);
      else await native.copyFiles([Buffer.from(path.join(base, 'src')), Buffer.from(path.join(base, 'dst', 'src'))], rels, nums, flags);
    }
    const us = (performance.now() - t0) * 1000 / files.length;
    for (const fd of anchors) native.closeFd(fd);
    return us;
  };
  const whole = [];
  const under = [];
  for (let r = 0; r < reps; r++) {
    if (r % 2) { whole.push(await once(false)); under.push(await once(true)); } else { under.push(await once(true)); whole.push(await once(false)); }
  }
  dropDir(base);
  console.log(`copyFiles, ${files.length} small files, medians of ${reps} alternating: whole paths ${median(whole).toFixed(1)} us per file, beneath anchors ${median(under).toFixed(1)} us per file`);
  console.log(`\nReproduce: \`node bench/beneath.mjs ${argv.join(' ')}\``);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
