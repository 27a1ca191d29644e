// Startup benchmark: how long from launch until an fcp job of N ranks is working, for
// `-np N` self-launch on this machine.
//
//   node bench/startup.mjs [--reps N] [--warmup N] [--startup-np 4,16,64]
//
// Each run copies a tree of one tiny file, so nearly all of the time is startup (node
// boot of every rank, module loading, rendezvous, connecting, the first barrier) and
// shutdown. Per rank count it reports, as medians over the reps:
//   wall     launch to exit of `node bin/fcp.js SRC DST -np N --quiet` (what a user waits)
//   to job   launch of rank 0 to the start of the copy job (all ranks connected, work
//            about to be handed out): fcp's own FCP_TRACE_PHASES=1 line
//            "[phase] startup (process start to job) X ms", measured by rank 0 from its
//            process start, so it includes rank 0's node boot.
//   floor    N bare `node -e 0` processes started at once and waited for: a lower bound
//            for any one-process-per-rank launch on this many cores.
// Goals: to job < 0.5 s at 4 ranks and < 2 s at 64.
//
// Cases are interleaved (rotated order each round) like the other benches; the source
// tree lives on tmpfs under /dev/shm/fcp-bench.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot, benchDir, median, dropDir, parseOpts } from './lib.mjs';

const SPEC = { reps: 'number', warmup: 'number', 'startup-np': 'string', help: 'boolean' };
const GOALS = { 4: 0.5, 64: 2 };

const HELP = `usage: node bench/startup.mjs [options]   (or: npm run bench -- [options])
  --reps N             rounds per case (default 5)
  --warmup N           untimed rounds first (default 1)
  --startup-np LIST    rank counts, comma-separated (default 4,16,64)`;

/** Run a command; resolve with wall seconds and stderr; reject on failure. */
function timed(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code === 0) resolve({ secs, stderr });
      else reject(new Error(`${[cmd, ...args].join(' ')} failed (${signal ?? `exit ${code}`})\n${stderr.slice(-3000)}`));
    });
  });
}

/** N bare node processes at once. */
function floor(n) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let left = n;
    for (let i = 0; i < n; i++) {
      const c = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
      c.on('error', reject);
      c.on('close', () => { if (--left === 0) resolve(Number(process.hrtime.bigint() - t0) / 1e9); });
    }
  });
}

const fmt = (s) => (s === null || s === undefined ? '–' : s.toFixed(3));

export async function main(argv) {
  const { opts, unknown } = parseOpts(argv, SPEC);
  if (opts.help) {
    console.log(HELP);
    return;
  }
  if (unknown.length) console.warn(`bench/startup.mjs: ignoring options it does not know: ${unknown.join(' ')}`);
  const reps = opts.reps ?? 5;
  const warmup = opts.warmup ?? 1;
  const nps = (opts['startup-np'] ?? '4,16,64').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);

  const base = path.join(benchDir, 'startup');
  const src = path.join(base, 'src');
  dropDir(base);
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'tiny'), 'x\n');
  const fcp = path.join(repoRoot, 'bin', 'fcp.js');

  const cases = nps.map((np) => ({ np, wall: [], toJob: [], floor: [] }));
  const runCase = async (c, record) => {
    const dst = path.join(base, `dst-${c.np}`);
    dropDir(dst);
    const r = await timed(process.execPath, [fcp, src, dst, '-np', String(c.np), '--quiet'], { FCP_TRACE_PHASES: '1' });
    const m = /\[phase\] startup \(process start to job\) ([\d.]+) ms/.exec(r.stderr);
    if (!fs.existsSync(path.join(dst, 'tiny'))) throw new Error(`fcp -np ${c.np} did not copy the file`);
    const fl = await floor(c.np);
    if (record) {
      c.wall.push(r.secs);
      c.floor.push(fl);
      if (m) c.toJob.push(Number(m[1]) / 1000);
    }
  };

  console.log(`## startup: -np N self-launch, one tiny file (${reps} reps, ${warmup} warm-up, nproc ${os.availableParallelism?.() ?? os.cpus().length})\n`);
  for (let w = 0; w < warmup; w++) for (const c of cases) await runCase(c, false);
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < cases.length; k++) await runCase(cases[(r + k) % cases.length], true);
  }
  dropDir(base);

  const line = (cells) => `| ${cells.join(' | ')} |`;
  console.log(line(['ranks', 'to job s (median)', 'to job min–max', 'wall s (median)', 'wall min–max', `floor: N× node -e 0`, 'goal (to job)', 'met']));
  console.log(line(['---:', '---:', '---:', '---:', '---:', '---:', '---:', '---']));
  for (const c of cases) {
    const tj = c.toJob.length ? median(c.toJob) : null;
    const goal = GOALS[c.np];
    console.log(line([
      c.np,
      fmt(tj),
      c.toJob.length ? `${fmt(Math.min(...c.toJob))}–${fmt(Math.max(...c.toJob))}` : '(no trace)',
      fmt(median(c.wall)),
      `${fmt(Math.min(...c.wall))}–${fmt(Math.max(...c.wall))}`,
      fmt(median(c.floor)),
      goal === undefined ? '–' : `< ${goal}`,
      goal === undefined || tj === null ? '–' : tj < goal ? 'yes' : 'NO',
    ]));
  }
  console.log('\n"to job": rank 0\'s process start until every rank is connected and the copy starts (FCP_TRACE_PHASES); "wall": the whole command; "floor": N bare node processes started together.\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e.stack ?? e);
    process.exit(1);
  });
}
