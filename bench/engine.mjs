// Engine benchmark: the work-stealing runtime alone (no files), with the synthetic job.
//
//   node bench/engine.mjs [--engine-reps N] [--reps N] [--warmup N] [--engine-np 1,2,4,8]
//                         [--engine-depth D] [--engine-work-us U]
//
// Runs dist-test/fixtures/synthetic-job.js (a deterministic random tree of items; every rank
// agrees on it, so the expected count and checksum are known up front) for each rank
// count, in two variants:
//   work    --work-us U (default 50): each item spins U µs, like a small file's copy;
//           shows how well the ranks share real work (ideal: items/s grows with ranks
//           up to the number of cores)
//   zero    --work-us 0: pure engine overhead per item (queueing, stealing, messages)
// Per case, over the reps (medians): phase seconds (the job's own runPhase time, from
// its --json output, so node start-up and rendezvous are not in it; the wall time of
// the whole command is shown separately), items/s, total steals, and the smallest and
// largest share of the items any one rank processed (ideal: 1/ranks each).
// Every run is checked: items and checksum must equal the expected ones.
//
// Cases are interleaved (rotated order each round) like the other benches.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot, median, compare, runCapture, lastJson, parseOpts, shQuote } from './lib.mjs';

const SPEC = {
  'engine-reps': 'number',
  reps: 'number',
  warmup: 'number',
  'engine-np': 'string',
  'engine-depth': 'number',
  'engine-work-us': 'number',
  help: 'boolean',
};

const HELP = `usage: node bench/engine.mjs [options]   (or: npm run bench -- [options])
  --engine-reps N      rounds per case (default: --reps, else 5)
  --warmup N           untimed rounds first (default 1)
  --engine-np LIST     rank counts, comma-separated (default 1,2,4,8)
  --engine-depth D     synthetic tree depth (default 12: about 22.6k items)
  --engine-work-us U   simulated work per item in the "work" variant, µs (default 50)
Needs a build (dist-test/fixtures/synthetic-job.js): npm run build:test.`;

const fmtPct = (x) => `${(x * 100).toFixed(1)}`;

export async function main(argv = process.argv.slice(2)) {
  const { opts, unknown } = parseOpts(argv, SPEC);
  if (opts.help) { console.log(HELP); return; }
  if (unknown.length) console.error(`engine.mjs: ignoring unknown arguments: ${unknown.join(' ')}`);
  const reps = opts['engine-reps'] ?? opts.reps ?? 5;
  const warmup = opts.warmup ?? 1;
  const depth = opts['engine-depth'] ?? 12;
  const workUs = opts['engine-work-us'] ?? 50;
  const nps = (opts['engine-np'] ?? '1,2,4,8').split(',').map(Number);
  if (!nps.length || nps.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--engine-np: want positive integers, got "${opts['engine-np']}"`);
  if (!(reps >= 1)) throw new Error('--engine-reps must be at least 1');
  const job = path.join(repoRoot, 'dist-test/fixtures/synthetic-job.js');
  if (!fs.existsSync(job)) throw new Error(`${job} not found: build first (npm run build)`);

  const variants = [
    { key: 'work', workUs },
    ...(workUs !== 0 ? [{ key: 'zero', workUs: 0 }] : []),
  ];
  // One case per (variant, ranks). run() returns the phase seconds (what compare()
  // collects); the rest of the JSON is kept per case for the table.
  const cases = [];
  for (const v of variants) {
    for (const np of nps) {
      const c = { name: `${v.key} np${np}`, v, np, runs: [], warm: true };
      c.run = async () => {
        const args = [job, '--np', String(np), '--depth', String(depth), '--work-us', String(v.workUs), '--json'];
        const r = await runCapture(process.execPath, args);
        const out = lastJson(r.stdout);
        if (out.items !== out.expectedItems || out.hash !== out.expectedHash) {
          throw new Error(`synthetic job ${args.slice(1).join(' ')}: processed ${out.items} items (expected ${out.expectedItems}), checksum ${out.hash} (expected ${out.expectedHash})`);
        }
        if (!c.warm) c.runs.push({ ...out, wall: r.seconds });
        return out.seconds;
      };
      cases.push(c);
    }
  }

  const cores = os.availableParallelism?.() ?? os.cpus().length;
  console.log(`## engine: synthetic job, work stealing without files (depth ${depth}, ${reps} reps, ${warmup} warm-up, ${cores} cores)\n`);
  let n = 0;
  const total = reps * cases.length;
  await compare(cases, {
    reps,
    warmup,
    prepare: (c, how) => {
      c.warm = !!how?.warmup;
      console.error(`engine: ${how?.warmup ? 'warm-up' : `run ${++n}/${total}`}: ${c.name}`);
    },
  });

  const line = (cells) => `| ${cells.join(' | ')} |`;
  for (const v of variants) {
    const title = v.workUs ? `${v.workUs} µs of CPU work per item` : 'zero work per item (pure engine overhead)';
    console.log(`### ${v.key}: ${title}\n`);
    console.log(line(['ranks', 'items', 'median s', 'min–max s', 'items/s', 'steals (median)', 'min/max per-rank items share %', 'wall s (median)']));
    console.log(line(['---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']));
    for (const c of cases.filter((x) => x.v === v)) {
      const secs = c.runs.map((r) => r.seconds);
      const med = median(secs);
      const items = c.runs[0].items;
      const shares = c.runs.map((r) => r.ranks.map((k) => k.items / r.items));
      const minShare = median(shares.map((s) => Math.min(...s)));
      const maxShare = median(shares.map((s) => Math.max(...s)));
      console.log(line([
        c.np,
        items,
        med.toFixed(3),
        `${Math.min(...secs).toFixed(3)}–${Math.max(...secs).toFixed(3)}`,
        Math.round(items / med),
        median(c.runs.map((r) => r.steals)),
        `${fmtPct(minShare)} / ${fmtPct(maxShare)} (ideal ${fmtPct(1 / c.np)})`,
        median(c.runs.map((r) => r.wall)).toFixed(3),
      ]));
    }
    console.log('');
  }
  console.log('"median s": the job\'s runPhase time (its --json "seconds"); items/s = items / median s; shares are medians over the reps of the smallest and largest fraction of the items one rank processed; "wall s": the whole command, including node start-up and rendezvous of every rank. Every run\'s item count and checksum matched the expected ones.\n');

  const entry = path.relative(repoRoot, process.argv[1] ?? 'bench/engine.mjs');
  const cmdline = ['node', entry, ...argv].map((w, i) => (i ? shQuote(w) : w)).join(' ');
  console.log(`Reproduce: \`cd ${shQuote(repoRoot)} && ${cmdline}\`\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e) => { console.error(`engine.mjs: ${e.stack ?? e}`); process.exitCode = 1; });
}
