// CPU cost benchmark: CPU seconds (user + sys, every process of the job) that fcp spends
// on a tree, side by side with `cp -a`, alternating runs, medians.
//
//   node bench/cpu.mjs [--reps N] [--np N] [--small-files N] [--profile small|mixed|wide]
//                      [--baseline-root DIR] [--extra-args "..."] [--also-args "..."]
//
// Why a CPU benchmark beside the wall-clock ones: on a shared or busy machine wall time
// swings with whatever else runs, while the CPU a job burns moves much less, so a change
// to per-file overhead shows here even when copy.mjs's ratios are noisy. It is a cost, not
// a speed: parallel ranks can finish sooner while burning more CPU.
//
// --baseline-root DIR also times DIR/bin/fcp.js (another checkout, e.g. a git worktree of
// an older commit with its own `npm install`), so a change is measured against its parent
// in the same run.
//
// GNU time's %U/%S cover the process and every child it waited for: with -np N the ranks
// started by rank 0 are included; cp -a is one process.

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';
import { repoRoot, benchDir, makeTree, dropDir, parseOpts, median } from './lib.mjs';

const SPEC = {
  reps: 'number', np: 'number', 'small-files': 'number', profile: 'string',
  'baseline-root': 'string', 'extra-args': 'string', 'also-args': 'string', help: 'boolean',
};

const HELP = `usage: node bench/cpu.mjs [options]
  --reps N              rounds (default 5)
  --np N                fcp ranks (default 2)
  --profile P           mktree profile: small (default), mixed, wide
  --small-files N       files of the small tree (default 20000)
  --baseline-root DIR   also run DIR/bin/fcp.js (an older checkout) in the same rounds
  --extra-args "..."    more fcp arguments
  --also-args "..."     also run fcp with these arguments added, in the same rounds (e.g. "--report /dev/shm/r")`;

/** Run a command under GNU time; resolve { wall, cpu } in seconds. */
function cpuOf(cmd, args) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%U %S', cmd, ...args], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /(\d+\.\d+) (\d+\.\d+)\s*$/.exec(err);
      if (code !== 0 || !m) return reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err.slice(-400)}`));
      resolve({ wall, cpu: Number(m[1]) + Number(m[2]) });
    });
  });
}

export async function main(argv = process.argv.slice(2)) {
  const { opts: o, unknown } = parseOpts(argv, SPEC);
  if (unknown.length) console.warn(`cpu: ignoring ${unknown.join(' ')}`);
  if (o.help) return console.log(HELP);
  if (!fs.existsSync('/usr/bin/time')) return console.log('cpu: /usr/bin/time (GNU time) not found; skipped');
  const reps = o.reps ?? 5;
  const np = o.np ?? 2;
  const profile = o.profile ?? 'small';
  const files = profile === 'small' ? (o['small-files'] ?? 20000) : undefined;
  const src = path.join(benchDir, `cpu-${profile}${files ? `-${files}` : ''}`);
  const tree = makeTree(profile, src, files ? { files } : {});
  const dst = path.join(benchDir, 'cpu-dst');
  const extra = (o['extra-args'] ?? '').split(/\s+/).filter(Boolean);
  const cases = [
    { name: `fcp -np ${np}`, cmd: process.execPath, args: [path.join(repoRoot, 'bin/fcp.js'), src, dst, '-np', String(np), '-q', ...extra] },
    { name: 'cp -a', cmd: 'cp', args: ['-a', src, dst] },
  ];
  if (o['also-args']) {
    const also = o['also-args'].split(/\s+/).filter(Boolean);
    cases.splice(1, 0, { name: `fcp -np ${np} ${also.join(' ')}`, cmd: process.execPath, args: [...cases[0].args, ...also] });
  }
  if (o['baseline-root']) {
    const b = path.resolve(o['baseline-root']);
    cases.splice(1, 0, { name: `baseline fcp -np ${np}`, cmd: process.execPath, args: [path.join(b, 'bin/fcp.js'), src, dst, '-np', String(np), '-q', ...extra] });
  }
  const res = new Map(cases.map((c) => [c.name, []]));
  for (let r = 0; r < reps + 1; r++) {
    // rotate the order each round so no case always runs right after another
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(i + r) % cases.length];
      dropDir(dst);
      const x = await cpuOf(c.cmd, c.args);
      if (r > 0) res.get(c.name).push(x); // round 0 warms up
    }
  }
  dropDir(dst);
  const base = median(res.get('cp -a').map((x) => x.cpu));
  console.log(`### CPU cost: ${profile} (${tree.files ?? '?'} files), ${reps} rounds, medians\n`);
  console.log('| case | CPU s | CPU ratio to cp -a | wall s |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, xs] of res) {
    const cpu = median(xs.map((x) => x.cpu));
    console.log(`| ${name} | ${cpu.toFixed(3)} | ${(cpu / base).toFixed(2)}× | ${median(xs.map((x) => x.wall)).toFixed(3)} |`);
  }
  console.log(`\nReproduce: \`node bench/cpu.mjs ${argv.join(' ')}\``);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(e.message);
    process.exit(1);
  });
}
