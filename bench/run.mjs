// `npm run bench` entry: print the machine context, then run every
// registered bench module with the same argv (e.g. `npm run bench -- --reps 3`).
//
// Each module is an ESM file in bench/ exporting `async function main(argv)`;
// modules ignore (with a warning) options they do not know, since they all see
// the same argv. To add one, append its file name to MODULES.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { repoRoot } from './lib.mjs';

/** Bench modules, run in this order. Listed files that do not exist yet are skipped. */
const MODULES = [
  'copy.mjs',
  'cpu.mjs',
  'engine.mjs',
  'fsum.mjs',
  'startup.mjs',
  'update.mjs',
  'store.mjs',
  'native.mjs',
  'latency.mjs', // on latfs mounts (root only); short under run.mjs: 200 µs, 2,000 files, -np 1/2/8
  'cluster.mjs', // simulated nodes: namespaces + a latfs mount each (root only); 1, 2, 4 nodes × 2 ranks
  'scale.mjs', // last, slowest; skipped unless --scale or --only ...scale...
];

/** Output of a command, or a fallback if it is missing or fails. */
function cmdOut(cmd, args, fallback = 'unknown') {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], cwd: repoRoot }).trim();
  } catch {
    return fallback;
  }
}

const argv = process.argv.slice(2);

// Context first: a number without the machine it came from is not comparable.
// nproc (not os.cpus()) because it honours the affinity mask / cgroup limits
// the benchmark actually runs under.
const cpu = os.cpus()[0]?.model ?? 'unknown';
console.log('# fcp benchmarks\n');
console.log(`- date: ${new Date().toISOString()}`);
console.log(`- kernel: ${cmdOut('uname', ['-r'])}`);
console.log(`- node: ${process.version}`);
console.log(`- nproc: ${cmdOut('nproc', [], String(os.availableParallelism?.() ?? os.cpus().length))} (${cpu})`);
console.log(`- memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`);
console.log(`- fcp commit: ${cmdOut('git', ['rev-parse', '--short', 'HEAD'], 'none')}${cmdOut('git', ['status', '--porcelain'], '') ? ' (dirty tree)' : ''}`);
console.log('');

let failed = 0;
for (const name of MODULES) {
  const file = path.join(repoRoot, 'bench', name);
  if (!fs.existsSync(file)) {
    console.log(`(bench/${name} not present yet, skipped)\n`);
    continue;
  }
  try {
    const mod = await import(pathToFileURL(file).href);
    if (typeof mod.main !== 'function') throw new Error('does not export main(argv)');
    await mod.main(argv);
  } catch (e) {
    // Keep going: one broken module should not hide the others' results.
    failed++;
    console.error(`bench/${name} failed: ${e.stack ?? e}`);
    console.log(`(bench/${name} failed, see stderr)\n`);
  }
}
process.exitCode = failed ? 1 : 0;
