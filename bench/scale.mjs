// Scale benchmark: does the memory of fcp and fsum stay flat as the number of files grows?
//
//   node bench/scale.mjs [--scale-files 300000,1000000] [--scale-reps N] [--reps N]
//                        [--warmup N] [--np N] [--no-fsum] [--clean]
//   npm run bench -- --scale ...       (or --only ...,scale,...)
//
// Opt-in: under run.mjs (npm run bench) it only runs with --scale or when --only names
// scale, because making a 1M-file tree takes minutes (once: trees are cached in
// /dev/shm/fcp-bench, shared with copy.mjs's small profile naming) and every copy of it
// takes a minute or more. Run directly (node bench/scale.mjs) it always runs.
//
// For each file count F: mktree small --files F (0-64 KiB files, 100 per directory), then
//   1. one untimed run of node bin/fcp.js SRC DST -np N --quiet --json under lib.mjs
//      peakRssTree: the largest VmHWM of any process of the job (every rank), with
//      GNU time's %M as a cross-check; its JSON must report F files and 0 errors
//   2. fcp and cp -a SRC DST, interleaved, --scale-reps rounds, medians
//   3. (unless --no-fsum) one run each of node bin/fsum.js SRC -np N --quiet --json and
//      the same with -o SUMFILE, under peakRssTree: both must report F files, 0 errors
//      and the same signature, and the sum file one line per entry
// and tables: files | fcp s | cp -a s | ratio | peak RSS MiB (max over ranks) | per rank;
// files | fsum s | peak RSS | per rank | fsum -o s | peak RSS | per rank.

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  repoRoot, benchDir, timeIt, compare, makeTree, dropDir, parseOpts, shQuote, fmtBytes,
  srcDirFor, room, peakRssTree, lastJson, kibToMiB,
} from './lib.mjs';

const KiB = 1024;

const SPEC = {
  scale: 'boolean',
  only: 'string',
  'scale-files': 'string',
  'scale-reps': 'number',
  reps: 'number',
  warmup: 'number',
  np: 'number',
  clean: 'boolean',
  'no-fsum': 'boolean',
  help: 'boolean',
};

const HELP = `usage: node bench/scale.mjs [options]
       npm run bench -- --scale [options]     (skipped under run.mjs without --scale or --only scale)
  --scale-files LIST   file counts of the small-profile trees, comma-separated (default 300000,1000000)
  --scale-reps N       timed rounds per case (default: --reps, else 3)
  --warmup N           untimed rounds of both cases first (default 0; the peak-RSS run
                       already warms fcp up)
  --np N               fcp and fsum ranks (default 2)
  --no-fsum            measure fcp only (not fsum and fsum -o)
  --clean              remove the cached trees at the end (the 1M-file tree is ~5 GiB)
Trees are cached in ${benchDir}.`;

export async function main(argv = process.argv.slice(2), { direct = false } = {}) {
  const { opts, unknown } = parseOpts(argv, SPEC);
  if (opts.help) { console.log(HELP); return; }
  const only = (opts.only ?? '').split(/[\s,]+/).filter(Boolean);
  if (!direct && !opts.scale && !only.includes('scale')) {
    console.log('## scale: skipped\n\nMemory vs number of files (300k and 1M-file copies) takes many minutes, so it only runs with `--scale` or `--only scale` (or directly: `node bench/scale.mjs`).\n');
    return;
  }
  if (unknown.length) console.error(`scale.mjs: ignoring unknown arguments: ${unknown.join(' ')}`);
  const reps = opts['scale-reps'] ?? opts.reps ?? 3;
  const warmup = opts.warmup ?? 0;
  const np = opts.np ?? 2;
  const counts = (opts['scale-files'] ?? '300000,1000000').split(',').map(Number);
  if (!counts.length || counts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--scale-files: want positive integers, got "${opts['scale-files']}"`);
  if (!(reps >= 1)) throw new Error('--scale-reps must be at least 1');
  const bin = path.join(repoRoot, 'bin/fcp.js');
  if (!fs.existsSync(bin)) throw new Error(`${bin} not found: build first (npm run build)`);
  const withFsum = !opts['no-fsum'];
  const fsumBin = path.join(repoRoot, 'bin/fsum.js');
  const sumFile = path.join(benchDir, 'scale.sum');

  const dst = path.join(benchDir, 'scale-dst');
  const fcpArgs = (src, ...more) => [bin, src, dst, '-np', String(np), '--quiet', ...more];
  const used = [];
  const rows = [];
  console.log(`## scale: fcp -np ${np} memory and time vs number of files (mktree small, tmpfs ${benchDir})\n`);

  /** fsum and fsum -o on one tree, each under peakRssTree; both checked against the tree. */
  const fsumRuns = async (files, src, tree) => {
    const args = ['-np', String(np), '--quiet', '--json'];
    console.error(`scale: ${files}: fsum peak RSS run`);
    const plain = await peakRssTree(process.execPath, [fsumBin, src, ...args]);
    const p = lastJson(plain.stdout);
    if (p.files !== tree.files || p.errors !== 0) throw new Error(`fsum hashed ${p.files} files (want ${tree.files}) with ${p.errors} errors`);
    console.error(`scale: ${files}: fsum -o peak RSS run`);
    fs.rmSync(sumFile, { force: true });
    const out = await peakRssTree(process.execPath, [fsumBin, src, ...args, '-o', sumFile]);
    const o = lastJson(out.stdout);
    fs.rmSync(sumFile, { force: true });
    if (o.signature !== p.signature || o.errors !== 0) throw new Error(`fsum -o: signature ${o.signature} with ${o.errors} errors, want ${p.signature} and 0`);
    const entries = p.files + p.dirs + p.symlinks + p.specials;
    if (o.sumFileEntries !== entries) throw new Error(`fsum -o wrote ${o.sumFileEntries} entries, want ${entries}`);
    return { plain, out };
  };

  for (const files of counts) {
    const mk = { files };
    const src = srcDirFor('small', mk);
    dropDir(dst);
    // Room: the tree (unless cached) and one copy. Measured ~4.7 KiB of tmpfs per
    // small-profile file (page rounding included); 6 KiB is the estimate. Inodes:
    // files + one directory per 100 files, per tree.
    const cached = fs.existsSync(src) && fs.existsSync(`${src}.summary.json`);
    const est = { bytes: files * 6 * KiB, inodes: Math.ceil(files * 1.01) + 10 };
    const need = {
      bytes: (cached ? 0 : est.bytes) + est.bytes + 256 * 1024 ** 2,
      inodes: (cached ? 0 : est.inodes) + est.inodes + 10000,
    };
    const have = room();
    if (have.bytes < need.bytes || have.inodes < need.inodes) {
      const why = `needs about ${fmtBytes(need.bytes)} and ${need.inodes} inodes free in ${benchDir}, have ${fmtBytes(have.bytes)} and ${have.inodes}`;
      console.log(`${files} files: skipped, ${why}.\n`);
      rows.push({ files, skipped: why });
      continue;
    }

    console.error(`scale: ${files}: ${cached ? 'using cached' : 'generating (this takes a while)'} tree ${src}`);
    const tree = makeTree('small', src, mk);
    used.push(src);

    console.error(`scale: ${files}: peak RSS run`);
    const rss = await peakRssTree(process.execPath, fcpArgs(src, '--json'));
    const j = lastJson(rss.stdout);
    if (j.files !== tree.files || j.errors !== 0) {
      throw new Error(`fcp copied ${j.files} files (want ${tree.files}) with ${j.errors} errors`);
    }
    dropDir(dst);

    let n = 0;
    const cases = [
      { name: 'fcp', run: () => timeIt(process.execPath, fcpArgs(src)) },
      { name: 'cp -a', run: () => timeIt('cp', ['-a', src, dst]) },
    ];
    const res = await compare(cases, {
      reps,
      warmup,
      prepare: (c, how) => {
        dropDir(dst);
        console.error(`scale: ${files}: ${how?.warmup ? 'warm-up' : `run ${++n}/${reps * cases.length}`}: ${c.name}`);
      },
    });
    dropDir(dst);
    const [f, c] = res;
    const sum = withFsum ? await fsumRuns(files, src, tree) : null;
    rows.push({ files: tree.files, tree, fcp: f, cp: c, rss, sum });
  }

  const line = (cells) => `| ${cells.join(' | ')} |`;
  console.log(line(['files', 'fcp s', 'cp -a s', 'ratio', 'peak RSS MiB (max over ranks)', 'per rank MiB', 'GNU time %M MiB', 'fcp min–max s', 'cp -a min–max s']));
  console.log(line(['---:', '---:', '---:', '---:', '---:', '---', '---:', '---:', '---:']));
  const mm = (t) => `${Math.min(...t).toFixed(2)}–${Math.max(...t).toFixed(2)}`;
  for (const r of rows) {
    if (r.skipped) { console.log(line([r.files, 'skipped', '', '', '', '', '', '', ''])); continue; }
    const per = perRank(r.rss);
    console.log(line([
      r.files, r.fcp.median.toFixed(2), r.cp.median.toFixed(2), `${(r.fcp.median / r.cp.median).toFixed(2)}×`,
      kibToMiB(r.rss.maxKiB), per, kibToMiB(r.rss.timeKiB), mm(r.fcp.times), mm(r.cp.times),
    ]));
  }
  const done = rows.filter((r) => !r.skipped);
  if (withFsum && done.length) {
    console.log(`\nfsum -np ${np} on the same trees (one run each, wall time of that run):\n`);
    console.log(line(['files', 'fsum s', 'peak RSS MiB', 'per rank MiB', 'fsum -o s', 'peak RSS MiB', 'per rank MiB']));
    console.log(line(['---:', '---:', '---:', '---', '---:', '---:', '---']));
    for (const r of done) {
      console.log(line([r.files, r.sum.plain.seconds.toFixed(2), kibToMiB(r.sum.plain.maxKiB), perRank(r.sum.plain), r.sum.out.seconds.toFixed(2), kibToMiB(r.sum.out.maxKiB), perRank(r.sum.out)]));
    }
  }
  console.log(`\n${reps} timed reps per case (medians), interleaved; ratio = fcp / cp -a, lower is faster. Peak RSS: one extra untimed fcp run per size (largest VmHWM of any process of the job, polled every 50 ms, or GNU time's %M if higher); its --json summary reported every file copied with 0 errors.`);
  if (done.length >= 2) {
    const a = done[0];
    const b = done[done.length - 1];
    console.log(`Peak RSS ${kibToMiB(a.rss.maxKiB)} MiB at ${a.files} files vs ${kibToMiB(b.rss.maxKiB)} MiB at ${b.files} files: ${(b.rss.maxKiB / a.rss.maxKiB).toFixed(2)}× the memory for ${(b.files / a.files).toFixed(2)}× the files.`);
    if (withFsum) {
      for (const k of ['plain', 'out']) {
        const [x, y] = [a.sum[k].maxKiB, b.sum[k].maxKiB];
        console.log(`${k === 'plain' ? 'fsum' : 'fsum -o'}: ${kibToMiB(x)} MiB at ${a.files} files vs ${kibToMiB(y)} MiB at ${b.files} files: ${(y / x).toFixed(2)}×.`);
      }
    }
  }
  console.log('');

  if (opts.clean) {
    for (const src of used) { dropDir(src); fs.rmSync(`${src}.summary.json`, { force: true }); }
    console.error(`scale: removed cached trees: ${used.join(' ') || '(none)'}`);
  }
  const entry = path.relative(repoRoot, process.argv[1] ?? 'bench/scale.mjs');
  const cmdline = ['node', entry, ...argv].map((w, i) => (i ? shQuote(w) : w)).join(' ');
  console.log(`Reproduce: \`cd ${shQuote(repoRoot)} && ${cmdline}\`\n`);
}

/** "r0 123.4, r1 120.1": each process's peak, by rank. */
function perRank(rss) {
  return rss.procs
    .filter((p) => p.hwmKiB > 0)
    .sort((a, b) => (a.rank ?? 1e9) - (b.rank ?? 1e9))
    .map((p) => `${p.rank !== null ? `r${p.rank}` : p.name} ${kibToMiB(p.hwmKiB)}`)
    .join(', ');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2), { direct: true }).catch((e) => { console.error(`scale.mjs: ${e.stack ?? e}`); process.exitCode = 1; });
}
