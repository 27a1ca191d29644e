// Incremental-copy benchmark: a re-run of fcp --update over an unchanged tree, against
// the first copy and against rsync's no-op re-run, on tmpfs.
//
//   node bench/update.mjs [--reps N] [--warmup N] [--np N] [--update-files N] [--no-verify]
//
// Tree: mktree small --files N (default 20000; the same cached tree as copy.mjs's small
// profile when N matches). Cases:
//   fcp (first copy)      node bin/fcp.js SRC DST1 -np N --quiet, DST1 removed before each run
//   fcp --update (no-op)  node bin/fcp.js SRC DST2 -np N --quiet --json --update, where DST2
//                         is an identical copy (made once by fcp, checked with treecmp);
//                         every run's JSON must report filesRead 0 and filesUpToDate = files
//   rsync -a (no-op)      rsync -a SRC/ DST2/ onto the same identical copy (skipped with a
//                         note if rsync is not installed)
//   fcp (empty tree)      node bin/fcp.js EMPTY DST3 -np N --quiet --update: starting the
//                         ranks and ending the job with nothing to walk, the floor of any
//                         no-op run (on this machine most of it)
// Interleaved (rotated order each round), medians, ratios to the first copy. At the end
// DST2 is compared with SRC again, so neither no-op run changed anything.

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import {
  repoRoot, toolsDir, benchDir, timeIt, runCapture, lastJson, compare, ratioTable, makeTree,
  dropDir, parseOpts, shQuote, fmtBytes, srcDirFor,
} from './lib.mjs';

const SPEC = {
  reps: 'number',
  warmup: 'number',
  np: 'number',
  'update-files': 'number',
  'no-verify': 'boolean',
  help: 'boolean',
};

const HELP = `usage: node bench/update.mjs [options]   (or: npm run bench -- [options])
  --reps N             rounds per case (default 5)
  --warmup N           untimed rounds first (default 1)
  --np N               fcp ranks (default 2)
  --update-files N     files in the (small profile) tree (default 20000)
  --no-verify          skip the treecmp checks of the reference copy
Trees are cached in ${benchDir}.`;

function haveCmd(cmd) {
  return (process.env.PATH ?? '').split(':').some((d) => d && fs.existsSync(path.join(d, cmd)));
}

/** treecmp SRC DST: { ok, text } */
function treecmp(src, dst) {
  const r = spawnSync(path.join(toolsDir, 'treecmp'), ['-q', src, dst], { encoding: 'utf8' });
  const last = (r.stdout || r.stderr || '').trim().split('\n').pop();
  if (r.status !== 0) console.error(`update: treecmp ${src} ${dst} found differences:\n${r.stdout}${r.stderr}`);
  return { ok: r.status === 0, text: r.status === 0 ? `ok (${last})` : `**FAILED** (exit ${r.status}: ${last})` };
}

export async function main(argv = process.argv.slice(2)) {
  const { opts, unknown } = parseOpts(argv, SPEC);
  if (opts.help) { console.log(HELP); return; }
  if (unknown.length) console.error(`update.mjs: ignoring unknown arguments: ${unknown.join(' ')}`);
  const reps = opts.reps ?? 5;
  const warmup = opts.warmup ?? 1;
  const np = opts.np ?? 2;
  const files = opts['update-files'] ?? 20000;
  if (!(reps >= 1)) throw new Error('--reps must be at least 1');
  const bin = path.join(repoRoot, 'bin/fcp.js');
  if (!fs.existsSync(bin)) throw new Error(`${bin} not found: build first (npm run build)`);

  const mk = { files };
  const src = srcDirFor('small', mk);
  console.error(`update: ${fs.existsSync(src) ? 'using cached' : 'generating'} tree ${src}`);
  const tree = makeTree('small', src, mk);
  const dstFirst = path.join(benchDir, 'update-dst-first');
  const dstSync = path.join(benchDir, 'update-dst-sync');
  const emptySrc = path.join(benchDir, 'update-empty-src');
  const emptyDst = path.join(benchDir, 'update-empty-dst');
  dropDir(dstFirst);
  dropDir(dstSync);
  dropDir(emptyDst);
  fs.mkdirSync(emptySrc, { recursive: true });

  console.log(`## update: no-op fcp --update and rsync -a re-runs vs the first copy (tmpfs ${benchDir})\n`);

  // The identical copy both no-op cases run against: made once, untimed.
  const fcpArgs = (dst, ...more) => [bin, src, dst, '-np', String(np), '--quiet', ...more];
  await timeIt(process.execPath, fcpArgs(dstSync));
  const refCheck = opts['no-verify'] ? null : treecmp(src, dstSync);
  if (refCheck && !refCheck.ok) throw new Error(`reference copy ${dstSync} differs from ${src}: ${refCheck.text}`);

  const haveRsync = haveCmd('rsync');
  let rsyncFirst = null;
  if (haveRsync) {
    // Untimed: rsync must itself find nothing to do on the fcp-made copy, or its
    // "no-op" runs would not be no-ops (the first would repair, the rest be cheaper).
    const r = spawnSync('rsync', ['-a', '-i', `${src}/`, `${dstSync}/`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`rsync -a -i failed (exit ${r.status}): ${r.stderr}`);
    rsyncFirst = r.stdout.split('\n').filter(Boolean).length;
  }

  const updateRuns = []; // JSON summaries of the measured --update runs
  const names = { first: `fcp -np ${np} (first copy)`, update: `fcp -np ${np} --update (no-op)`, rsync: 'rsync -a (no-op)', empty: `fcp -np ${np} --update (empty tree: start and exit only)` };
  const cases = [
    { name: names.first, run: () => timeIt(process.execPath, fcpArgs(dstFirst)) },
    {
      name: names.update,
      run: async () => {
        const r = await runCapture(process.execPath, fcpArgs(dstSync, '--json', '--update'));
        const j = lastJson(r.stdout);
        updateRuns.push(j);
        if (j.filesRead !== 0 || j.filesUpToDate !== tree.files) {
          throw new Error(`fcp --update on an unchanged copy: filesRead ${j.filesRead} (want 0), filesUpToDate ${j.filesUpToDate} (want ${tree.files})`);
        }
        return r.seconds;
      },
    },
    ...(haveRsync ? [{ name: names.rsync, run: () => timeIt('rsync', ['-a', `${src}/`, `${dstSync}/`]) }] : []),
    { name: names.empty, run: () => timeIt(process.execPath, [bin, emptySrc, emptyDst, '-np', String(np), '--quiet', '--update']) },
  ];

  let n = 0;
  const results = await compare(cases, {
    reps,
    warmup,
    prepare: (c, how) => {
      if (c.name === names.first) dropDir(dstFirst);
      console.error(`update: ${how?.warmup ? 'warm-up' : `run ${++n}/${reps * cases.length}`}: ${c.name}`);
    },
  });
  const firstCheck = opts['no-verify'] ? null : treecmp(src, dstFirst);
  const endCheck = opts['no-verify'] ? null : treecmp(src, dstSync);
  dropDir(dstFirst);
  dropDir(dstSync);
  dropDir(emptyDst);
  dropDir(emptySrc);

  console.log(ratioTable(`small: ${tree.files} files, ${tree.dirs} dirs, ${fmtBytes(tree.bytes)}`, results, names.first));
  const fr = updateRuns.map((j) => j.filesRead);
  console.log(`--update JSON check: filesRead ${[...new Set(fr)].join('/')} and filesUpToDate ${[...new Set(updateRuns.map((j) => j.filesUpToDate))].join('/')} of ${tree.files} in all ${updateRuns.length} runs (warm-up included): ${fr.every((x) => x === 0) ? 'ok' : '**FAILED**'}.`);
  if (!haveRsync) console.log('rsync -a (no-op): skipped, rsync is not installed.');
  else console.log(`rsync -a -i on the fcp-made copy before timing: ${rsyncFirst} changed entries (0 = rsync agrees the copy is identical, so its timed runs are true no-ops).`);
  if (opts['no-verify']) console.log('treecmp checks: skipped (--no-verify).');
  else console.log(`treecmp: reference copy ${refCheck.text}; last first copy ${firstCheck.text}; reference copy after all no-op runs ${endCheck.text}.`);
  console.log(`Untimed warm-up rounds: ${warmup}.\n`);

  const entry = path.relative(repoRoot, process.argv[1] ?? 'bench/update.mjs');
  const cmdline = ['node', entry, ...argv].map((w, i) => (i ? shQuote(w) : w)).join(' ');
  console.log(`Reproduce: \`cd ${shQuote(repoRoot)} && ${cmdline}\`\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e) => { console.error(`update.mjs: ${e.stack ?? e}`); process.exitCode = 1; });
}
