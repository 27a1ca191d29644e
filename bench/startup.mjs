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
//   cpu      user+sys of every process of the command (GNU time; ranks are its children)
// Goals (issue 15): to job <= 1.3x the floor, and wall <= 1.2x to job (the copy of one
// tiny file, its phases, collectives and goodbyes take little after the job starts).
//
// --baseline-root DIR also runs DIR/bin/fcp.js (another checkout, e.g. a git worktree of
// main) in the same rounds, so a change is measured against its parent on the same load.
//
// Cases are interleaved (rotated order each round) like the other benches; the source
// tree lives on tmpfs under /dev/shm/fcp-bench.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot, benchDir, median, dropDir, parseOpts } from './lib.mjs';

const SPEC = { reps: 'number', warmup: 'number', 'startup-np': 'string', 'baseline-root': 'string', help: 'boolean' };
/** Goals: time to job at most FLOOR_GOAL x the floor; the whole command at most WALL_GOAL x its time to job. */
const FLOOR_GOAL = 1.3;
const WALL_GOAL = 1.2;

const HELP = `usage: node bench/startup.mjs [options]   (or: npm run bench -- [options])
  --reps N             rounds per case (default 5)
  --warmup N           untimed rounds first (default 1)
  --startup-np LIST    rank counts, comma-separated (default 4,16,64)
  --baseline-root DIR  also run DIR/bin/fcp.js (an older checkout) in the same rounds`;

const hasGnuTime = fs.existsSync('/usr/bin/time');

/** Run a command (under GNU time when there is one); resolve with wall and CPU seconds and stderr; reject on failure. */
function timed(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const t0 = process.hrtime.bigint();
    // GNU time's line goes last on stderr, after everything the command wrote.
    const [c, a] = hasGnuTime ? ['/usr/bin/time', ['-f', 'cpu %U %S', cmd, ...args]] : [cmd, args];
    const child = spawn(c, a, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /cpu (\d+\.\d+) (\d+\.\d+)\s*$/.exec(stderr);
      const cpu = m ? Number(m[1]) + Number(m[2]) : null;
      if (code === 0) resolve({ secs, cpu, stderr });
      else reject(new Error(`${[cmd, ...args].join(' ')} failed (${signal ?? `exit ${code}`})\n${stderr.slice(-3000)}`));
    });
  });
}

/**
 * N bare node processes at once, in the environments fcp's ranks get: the first in this
 * one, the others without NODE_EXTRA_CA_CERTS (rank 0 drops it for the ranks it starts:
 * Node parses that file at startup, which a floor that kept it would count N times).
 */
function floor(n) {
  const { NODE_EXTRA_CA_CERTS: _, ...rankEnv } = process.env;
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let left = n;
    for (let i = 0; i < n; i++) {
      const c = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore', env: i === 0 ? process.env : rankEnv });
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
  const builds = [{ name: 'fcp', fcp: path.join(repoRoot, 'bin', 'fcp.js') }];
  if (opts['baseline-root']) builds.push({ name: 'baseline', fcp: path.join(path.resolve(opts['baseline-root']), 'bin', 'fcp.js') });

  // One case per build and rank count; the floor is timed right after each run, under the same load.
  const cases = nps.flatMap((np) => builds.map((b) => ({ ...b, np, wall: [], toJob: [], floor: [], cpu: [] })));
  const runCase = async (c, record) => {
    const dst = path.join(base, `dst-${c.np}`);
    dropDir(dst);
    const r = await timed(process.execPath, [c.fcp, src, dst, '-np', String(c.np), '--quiet'], { FCP_TRACE_PHASES: '1' });
    const m = /\[phase\] startup \(process start to job\) ([\d.]+) ms/.exec(r.stderr);
    if (!fs.existsSync(path.join(dst, 'tiny'))) throw new Error(`${c.name} -np ${c.np} did not copy the file`);
    const fl = await floor(c.np);
    if (record) {
      c.wall.push(r.secs);
      c.floor.push(fl);
      if (r.cpu !== null) c.cpu.push(r.cpu);
      if (m) c.toJob.push(Number(m[1]) / 1000);
    }
  };

  console.log(`## startup: -np N self-launch, one tiny file (${reps} reps, ${warmup} warm-up, nproc ${os.availableParallelism?.() ?? os.cpus().length}, load ${os.loadavg()[0].toFixed(1)})\n`);
  for (let w = 0; w < warmup; w++) for (const c of cases) await runCase(c, false);
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < cases.length; k++) await runCase(cases[(r + k) % cases.length], true);
  }
  dropDir(base);

  const line = (cells) => `| ${cells.join(' | ')} |`;
  const range = (a) => (a.length ? `${fmt(Math.min(...a))}–${fmt(Math.max(...a))}` : '–');
  const ratio = (a, b) => (a === null || b === null || !b ? null : a / b);
  const x = (r) => (r === null ? '–' : `${r.toFixed(2)}×`);
  const met = (r, goal) => (r === null ? '–' : r <= goal ? 'yes' : 'NO');
  console.log(line([...(builds.length > 1 ? ['build'] : []), 'ranks', 'to job s', 'to job min–max', 'wall s', 'wall min–max', 'floor s', 'CPU s',
    `to job ÷ floor (goal ≤ ${FLOOR_GOAL})`, 'met', `wall ÷ to job (goal ≤ ${WALL_GOAL})`, 'met']));
  console.log(line([...(builds.length > 1 ? ['---'] : []), '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---', '---:', '---']));
  for (const c of cases) {
    const tj = c.toJob.length ? median(c.toJob) : null;
    const wall = median(c.wall);
    const fl = median(c.floor);
    // Ratios per run (each run's floor was timed next to it), then the median.
    const toFloor = c.toJob.length === c.floor.length && c.toJob.length ? median(c.toJob.map((t, i) => t / c.floor[i])) : ratio(tj, fl);
    const wallToJob = c.toJob.length === c.wall.length && c.toJob.length ? median(c.wall.map((w, i) => w / c.toJob[i])) : ratio(wall, tj);
    console.log(line([
      ...(builds.length > 1 ? [c.name] : []),
      c.np,
      fmt(tj),
      c.toJob.length ? range(c.toJob) : '(no trace)',
      fmt(wall),
      range(c.wall),
      fmt(fl),
      c.cpu.length ? fmt(median(c.cpu)) : '–',
      x(toFloor), met(toFloor, FLOOR_GOAL),
      x(wallToJob), met(wallToJob, WALL_GOAL),
    ]));
  }
  console.log('\nMedians. "to job": rank 0\'s process start until every rank is connected and the copy starts (FCP_TRACE_PHASES); "wall": the whole command; "floor": N bare node processes started together, right after each run; "CPU": user+sys of all processes of the command.\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e.stack ?? e);
    process.exit(1);
  });
}
