// Latency benchmark: copies on a simulated parallel file system (latfs), where
// every request is a network round trip, so a tool's speed is
// requests per file × latency ÷ requests in flight.
//
//   node bench/latency.mjs [--lat 200,1000] [--only small2k,wide,noop,...] [--lat-np 1,2,8]
//                          [--all] [--reps N] [--per-phase]
//
// Every run gets a fresh latfs mount (shared/tools/latfs) of a backing store on
// tmpfs (/dev/shm), with the source tree and the destination both inside the
// mount, as for a copy within one PFS. Fresh, so that every run starts with
// cold kernel caches and its request counts are its own (latfs writes them at
// unmount). Cases, alternated (bench/lib.mjs compare), medians of --reps:
//
//   copy:  cp -a MNT/src MNT/dst; rsync -a MNT/src/ MNT/dst/;
//          node bin/fcp.js MNT/src MNT/dst -np N --quiet for each N of --lat-np
//          (fcp's checkpoint goes where it goes by default: beside DST, inside the
//          mount, as on a PFS; its requests count)
//   noop:  the same tools over a finished copy (made with cp -a on the backing
//          store, outside the mount): rsync -a MNT/src/ MNT/ref/ and
//          fcp --update -np N (N of --noop-np)
//   phases (--per-phase): fcp alone, the requests of each of its phases: see
//          bench/latency-phase-hook.cjs
//
// Printed per latency and tree: seconds, entries (files + directories) per
// second, ratio to cp -a, requests per entry (latfs's total_requests, which
// leaves out forgets), charged requests per entry (without the getxattr of
// security.capability the kernel makes before each write: latfs answers it
// without a round trip) and the most requests latfs saw in flight at once; then
// the requests per entry by request type. Times depend on the machine's load,
// request counts do not: on a shared machine, read the counts and ratios.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawn, spawnSync } from 'node:child_process';
import {
  repoRoot, toolsDir, benchDir, timeIt, compare, median, met, makeTree, dropDir,
  parseOpts, shQuote, fmtBytes, srcDirFor,
} from './lib.mjs';
import { latfsBinary, LatfsMount, flatCounts, diffCounts, cleanupAll } from './latfs.mjs';

const MiB = 1024 ** 2;

/** The trees, by name: mktree profile and options. */
const TREES = {
  small2k: { profile: 'small', mk: { files: 2000 }, about: 'mktree small, 2,000 files' },
  small5k: { profile: 'small', mk: { files: 5000 }, about: 'mktree small, 5,000 files' },
  wide: { profile: 'wide', mk: { files: 20000 }, about: 'mktree wide: 20,000 names in one directory' },
  mixed: { profile: 'mixed', mk: { files: 1000, size: 512 * MiB }, about: 'mktree mixed, 1,000 files, about 512 MiB (large files included)' },
};
/** Names --only accepts for a tree besides its own. */
const ALIASES = { small: 'small2k' };
/** What is measured on each tree. */
const SECTIONS = ['copy', 'noop', 'phases'];

const SPEC = {
  reps: 'number',
  warmup: 'number',
  only: 'string',
  lat: 'string',
  'lat-np': 'string',
  'noop-np': 'string',
  'phase-np': 'string',
  'fcp-variants': 'string',
  'data-us': 'number',
  'latfs-args': 'string',
  all: 'boolean',
  'per-phase': 'boolean',
  'no-verify': 'boolean',
  clean: 'boolean',
  help: 'boolean',
};

const HELP = `usage: node bench/latency.mjs [options]   (or: npm run bench -- [options])
  --lat LIST         simulated round trip per request, in µs, comma-separated
                     (default 200,1000; under npm run bench: 200)
  --data-us N        round trip of read/write requests (default: the same as --lat)
  --latfs-args "A B" more latfs options for every mount, e.g. "--entry-timeout 60" (names
                     cached as long as under a Lustre or GPFS client's locks)
  --only LIST        trees and sections, comma-separated. Trees: ${Object.keys(TREES).join(', ')}
                     (small = small2k; default all, under npm run bench small2k).
                     Sections: copy, noop (default both), phases (= --per-phase)
  --lat-np LIST      fcp rank counts of the copy section (default 1,2,4,8,16; under
                     npm run bench 1,2,8)
  --all              also fcp -np 32 and 64
  --noop-np LIST     fcp rank counts of the no-op re-run (default 2)
  --fcp-variants "A|B"  more fcp cases in the copy section, at -np 2, with these extra
                     arguments each (split on whitespace), e.g. "--no-hash|--no-checkpoint"
  --per-phase        also the requests of each of fcp's phases (fcp alone)
  --phase-np LIST    fcp rank counts for --per-phase (default 2)
  --reps N           rounds per case (default 3)
  --warmup N         untimed rounds first (default 0: every run is on a fresh mount anyway)
  --no-verify        skip the treecmp check of each copy case's first copy
  --clean            remove the cached source trees at the end
Needs root (FUSE mounts), fusermount3, rsync. Trees are cached in ${benchDir};
mounts are /tmp/latbench-<pid>-mnt, backing stores /dev/shm/latbench-<pid>.`;

const list = (s) => (s ?? '').split(/[\s,]+/).filter(Boolean);
const numList = (s, what) => {
  const xs = list(s).map(Number);
  if (!xs.length || xs.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`${what}: want non-negative integers, got "${s}"`);
  return xs;
};
const fmtUs = (us) => (us >= 1000 && us % 1000 === 0 ? `${us / 1000} ms` : `${us} µs`);
const line = (cells) => `| ${cells.join(' | ')} |`;
const loadavg = () => os.loadavg()[0].toFixed(1);

export async function main(argv = process.argv.slice(2), { direct = false } = {}) {
  const { opts, unknown } = parseOpts(argv, SPEC);
  if (opts.help) { console.log(HELP); return; }
  if (unknown.length) console.error(`latency.mjs: ignoring unknown arguments: ${unknown.join(' ')}`);

  // --only: this module's names; under run.mjs the others belong to other modules.
  const only = list(opts.only).map((n) => ALIASES[n] ?? n);
  const mine = only.filter((n) => n in TREES || SECTIONS.includes(n));
  const foreign = only.filter((n) => !mine.includes(n));
  if (foreign.length && direct) throw new Error(`--only: unknown name(s) ${foreign.join(', ')} (have: ${[...Object.keys(TREES), ...Object.keys(ALIASES), ...SECTIONS].join(', ')})`);
  if (only.length && !mine.length) {
    console.log('## latency: skipped (--only names none of its trees or sections)\n');
    return;
  }
  let trees = mine.filter((n) => n in TREES);
  if (!trees.length) trees = direct ? Object.keys(TREES) : ['small2k'];
  let sections = mine.filter((n) => SECTIONS.includes(n));
  if (!sections.length) sections = ['copy', 'noop'];
  if (opts['per-phase'] && !sections.includes('phases')) sections.push('phases');

  const lats = numList(opts.lat ?? (direct ? '200,1000' : '200'), '--lat');
  const nps = numList(opts['lat-np'] ?? (direct ? '1,2,4,8,16' : '1,2,8'), '--lat-np');
  if (opts.all) for (const n of [32, 64]) if (!nps.includes(n)) nps.push(n);
  const noopNps = numList(opts['noop-np'] ?? '2', '--noop-np');
  const variants = (opts['fcp-variants'] ?? '').split('|').map(list).filter((v) => v.length);
  const phaseNps = numList(opts['phase-np'] ?? '2', '--phase-np');
  const reps = opts.reps ?? 3;
  const warmup = opts.warmup ?? 0;
  if (!(reps >= 1)) throw new Error('--reps must be at least 1');

  if (process.getuid?.() !== 0) {
    console.log('## latency: skipped (latfs mounts need root)\n');
    return;
  }
  const bin = path.join(repoRoot, 'bin/fcp.js');
  if (!fs.existsSync(bin)) throw new Error(`${bin} not found: build first (npm run build)`);
  const haveRsync = spawnSync('rsync', ['--version'], { stdio: 'ignore' }).status === 0;
  if (spawnSync('fusermount3', ['-V'], { stdio: 'ignore' }).status !== 0) {
    console.log('## latency: skipped (fusermount3 not found: apt-get install fuse3)\n');
    return;
  }
  const latfs = latfsBinary();

  // Everything this run creates: one backing store, one mount point.
  const work = `/dev/shm/latbench-${process.pid}`;
  const mnt = `/tmp/latbench-${process.pid}-mnt`;
  const statsFile = `/tmp/latbench-${process.pid}-stats.json`;
  const pidfile = `/tmp/latbench-${process.pid}-latfs.pid`;
  const removeWork = () => { cleanupAll(); dropDir(work); fs.rmSync(mnt, { recursive: true, force: true }); fs.rmSync(statsFile, { force: true }); };
  process.on('exit', removeWork); // after latfs.mjs's own exit hook has unmounted

  console.log(`## latency: cp -a, rsync -a and fcp on latfs (simulated PFS round trips)\n`);
  console.log(`Every run on a fresh latfs mount (backing store on tmpfs), source and destination inside it. ` +
    `Latency = latfs --meta-us (and --data-us ${opts['data-us'] ?? 'the same'}) per request. ` +
    `requests/entry = latfs total_requests (forgets left out) / (files + directories); charged/entry leaves out ` +
    `the getxattr(security.capability) before each write, which latfs answers without a round trip. ` +
    `Times depend on the machine's load (1-min load average given per table); request counts and ratios much less.\n`);

  try {
    for (const treeName of trees) {
      const def = TREES[treeName];
      const srcCache = srcDirFor(def.profile, def.mk);
      console.error(`latency: ${treeName}: tree ${srcCache}`);
      const tree = makeTree(def.profile, srcCache, def.mk);
      const entries = tree.files + tree.dirs;
      // The backing store: the source copied in once per tree (cp -a, outside any mount).
      const back = path.join(work, treeName);
      dropDir(back);
      fs.mkdirSync(back, { recursive: true });
      cp(['-a', srcCache, path.join(back, 'src')]);

      for (const lat of lats) {
        const dataUs = opts['data-us'] ?? lat;
        const mount = new LatfsMount(back, mnt, { bin: latfs, metaUs: lat, dataUs, stats: statsFile, pidfile, extra: list(opts['latfs-args']) });
        const title = `${fmtUs(lat)} × ${treeName} (${def.about}: ${tree.files} files, ${tree.dirs} dirs, ${fmtBytes(tree.bytes)})${opts['latfs-args'] ? `, latfs ${list(opts['latfs-args']).join(' ')}` : ''}`;
        const ctx = { back, mnt, mount, entries, treeName, lat, reps, warmup, bin, haveRsync, verify: !opts['no-verify'] };

        if (sections.includes('copy')) await copySection(ctx, title, nps, variants);
        if (sections.includes('noop')) await noopSection(ctx, title, noopNps);
        if (sections.includes('phases')) await phaseSection(ctx, title, phaseNps);
      }
      dropDir(back);
      if (opts.clean) { dropDir(srcCache); fs.rmSync(`${srcCache}.summary.json`, { force: true }); }
    }
  } finally {
    removeWork();
  }

  const entry = path.relative(repoRoot, process.argv[1] ?? 'bench/latency.mjs');
  const env = process.env.FCP_TOOLS_DIR ? `FCP_TOOLS_DIR=${shQuote(process.env.FCP_TOOLS_DIR)} ` : '';
  const cmdline = [`${env}node`, entry, ...argv].map((w, i) => (i ? shQuote(w) : w)).join(' ');
  console.log(`Reproduce: \`cd ${shQuote(repoRoot)} && ${cmdline}\`${direct ? '' : ' (under npm run bench: short defaults, see --help)'}\n`);
}

/** cp, synchronously (setting up backing stores; never timed). */
function cp(args) {
  const r = spawnSync('cp', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp ${args.join(' ')}: ${r.stderr.trim()}`);
}

/** Remove what a run leaves in the backing store: its destination and any checkpoint beside it. */
function clearBacking(back, dstName) {
  dropDir(path.join(back, dstName));
  for (const n of fs.readdirSync(back)) if (n.startsWith('.fcp-')) dropDir(path.join(back, n));
}

/**
 * Run `cases` alternated on fresh mounts. Each case: { name, cmd, args, env? }.
 * Returns [{ name, times, median, counts: [flatCounts per timed run], peak: [...] }].
 * afterFirst(case) runs once per case after its first run, with the mount down.
 */
async function runCases(ctx, cases, { dstName, label, afterFirst }) {
  const { back, mount, reps, warmup } = ctx;
  const counts = new Map(cases.map((c) => [c.name, []]));
  const peaks = new Map(cases.map((c) => [c.name, []]));
  const checked = new Set();
  let n = 0;
  let timed = false;
  const wrapped = cases.map((c) => ({
    name: c.name,
    run: async () => {
      const t = await timeIt(c.cmd, c.args, { env: c.env });
      const s = await mount.unmount();
      if (timed) {
        counts.get(c.name).push(flatCounts(s));
        peaks.get(c.name).push(s.peak_concurrent_sleeps);
      }
      if (afterFirst && !checked.has(c.name)) { checked.add(c.name); afterFirst(c); }
      return t;
    },
  }));
  const results = await compare(wrapped, {
    reps,
    warmup,
    prepare: (c, how) => {
      timed = !how?.warmup;
      if (dstName) clearBacking(back, dstName);
      mount.mount();
      console.error(`latency: ${label}: ${how?.warmup ? 'warm-up' : `run ${++n}/${reps * cases.length}`}: ${c.name}`);
    },
  });
  return results.map((r) => ({ ...r, counts: counts.get(r.name), peak: peaks.get(r.name) }));
}

/** Median of each key over a list of count maps. */
function medianCounts(list) {
  const keys = new Set(list.flatMap((c) => Object.keys(c)));
  return Object.fromEntries([...keys].map((k) => [k, median(list.map((c) => c[k] ?? 0))]));
}

/** The timing table: seconds, entries/s, ratio to `base`, requests/entry, most in flight. */
function timeTable(results, entries, base) {
  const b = results.find((r) => r.name === base);
  const head = ['case', 'median s', 'min–max s', 'entries/s', `ratio to ${base}`, 'requests/entry', 'charged/entry', 'most in flight'];
  const rows = results.map((r) => {
    const req = median(r.counts.map((c) => c.total));
    const charged = median(r.counts.map((c) => c.charged));
    return [
      r.name, r.median.toFixed(2), `${Math.min(...r.times).toFixed(2)}–${Math.max(...r.times).toFixed(2)}`,
      Math.round(entries / r.median).toLocaleString('en-US'),
      b ? `${(r.median / b.median).toFixed(2)}×` : '–',
      (req / entries).toFixed(2), (charged / entries).toFixed(2), String(median(r.peak)),
    ];
  });
  return [line(head), line(head.map((_, i) => (i ? '---:' : '---'))), ...rows.map(line)].join('\n');
}

/** Order of request types in the breakdown: the per-file ones first, then the rest. */
const ORDER = [
  'total', 'charged', 'lookup', 'lookup ENOENT', 'getattr', 'create', 'mknod', 'mkdir', 'symlink', 'link', 'open', 'read', 'write',
  'copy_file_range', 'lseek', 'fallocate', 'flush', 'fsync', 'release', 'setattr', 'setattr.chmod', 'setattr.chown',
  'setattr.truncate', 'setattr.utimens', 'getxattr', 'getxattr.security.capability', 'listxattr', 'setxattr',
  'removexattr', 'opendir', 'readdir', 'readdirplus', 'releasedir', 'fsyncdir', 'readlink', 'rename', 'unlink',
  'rmdir', 'statfs', 'access',
];

/** Why some rows are there, for the reader of the table. */
const NOTES = {
  charged: 'of total: requests latfs slept in',
  'lookup ENOENT': 'of lookup: failed (name not there yet)',
  'getxattr.security.capability': 'of getxattr: the kernel asks before writes; latfs does not charge these',
  'setattr.chmod': 'of setattr', 'setattr.chown': 'of setattr', 'setattr.truncate': 'of setattr', 'setattr.utimens': 'of setattr',
};

/**
 * Requests per entry by request type: one column per {name, counts} (counts
 * already medians), rows that are 0 everywhere left out.
 */
function breakdownTable(columns, entries) {
  const keys = new Set(columns.flatMap((c) => Object.keys(c.counts)));
  const order = [...ORDER.filter((k) => keys.has(k)), ...[...keys].filter((k) => !ORDER.includes(k)).sort()];
  const rows = order.filter((k) => columns.some((c) => (c.counts[k] ?? 0) !== 0));
  const head = ['request', ...columns.map((c) => c.name)];
  const cell = (v) => (v === 0 ? '0' : (v / entries).toFixed(v / entries >= 0.1 ? 2 : 3));
  return [
    line(head), line(head.map((_, i) => (i ? '---:' : '---'))),
    ...rows.map((k) => line([NOTES[k] ? `${k} (${NOTES[k]})` : k, ...columns.map((c) => cell(c.counts[k] ?? 0))])),
  ].join('\n');
}

async function copySection(ctx, title, nps, variants) {
  const { mnt, back, bin, haveRsync } = ctx;
  const src = path.join(mnt, 'src');
  const dst = path.join(mnt, 'dst');
  const cases = [
    { name: 'cp -a', cmd: 'cp', args: ['-a', src, dst] },
    ...(haveRsync ? [{ name: 'rsync -a', cmd: 'rsync', args: ['-a', `${src}/`, `${dst}/`] }] : []),
    ...nps.map((n) => ({ name: `fcp -np ${n}`, cmd: process.execPath, args: [bin, src, dst, '-np', String(n), '--quiet'] })),
    ...variants.map((v) => ({ name: `fcp -np 2 ${v.join(' ')}`, cmd: process.execPath, args: [bin, src, dst, '-np', '2', '--quiet', ...v] })),
  ];
  const verified = [];
  const load0 = loadavg();
  const results = await runCases(ctx, cases, {
    dstName: 'dst',
    label: `copy ${title}`,
    afterFirst: (c) => {
      if (!ctx.verify) return;
      const r = spawnSync(path.join(toolsDir, 'treecmp'), ['-q', path.join(back, 'src'), path.join(back, 'dst')], { encoding: 'utf8' });
      if (r.status !== 0) {
        verified.push(`${c.name} **FAILED**`);
        console.error(`latency: ${c.name}: treecmp found differences:\n${r.stdout}${r.stderr}`);
      }
    },
  });
  clearBacking(back, 'dst');
  console.log(`### copy: ${title}\n`);
  console.log(timeTable(results, ctx.entries, 'cp -a'));
  console.log(`\n${ctx.reps} reps per case, alternated; load average ${load0} at the start, ${loadavg()} at the end (2 cores shared).` +
    ` First copy of each case checked with treecmp: ${!ctx.verify ? 'skipped' : verified.length ? verified.join(', ') : 'all identical'}.\n`);
  console.log(copyGoals(results, ctx.entries, ctx.lat));
  console.log(`Requests per entry by type (medians over the reps):\n`);
  console.log(breakdownTable(results.map((r) => ({ name: r.name, counts: medianCounts(r.counts) })), ctx.entries));
  console.log('');
}

/** The goals of issue 15 this copy table shows (those whose cases ran), one line each. */
function copyGoals(results, entries, lat) {
  const by = new Map(results.map((r) => [r.name, r]));
  const cpA = by.get('cp -a');
  const fcpAt = (n) => by.get(`fcp -np ${n}`);
  const out = [];
  const two = fcpAt(2);
  if (two) {
    const charged = median(two.counts.map((c) => c.charged)) / entries;
    out.push(`- charged requests per entry of fcp -np 2 ≤ 12: ${charged.toFixed(2)}, ${met(charged <= 12)}`);
  }
  if (cpA && fcpAt(1)) {
    const x = cpA.median / fcpAt(1).median;
    out.push(`- fcp -np 1 at least 5× faster than cp -a: ${x.toFixed(1)}×, ${met(x >= 5)}`);
  }
  if (cpA && fcpAt(8) && lat >= 1000) {
    const x = cpA.median / fcpAt(8).median;
    out.push(`- fcp -np 8 at least 12× faster than cp -a (at 1 ms): ${x.toFixed(1)}×, ${met(x >= 12)}`);
  }
  const ranks = [2, 4, 8, 16].filter((n) => fcpAt(n));
  if (ranks.length > 1) {
    const times = ranks.map((n) => fcpAt(n).median);
    const ok = times.every((t, i) => i === 0 || t <= times[i - 1]);
    out.push(`- time non-increasing from -np ${ranks.join(' to ')}: ${times.map((t) => t.toFixed(2)).join(' / ')} s, ${met(ok)}`);
  }
  return out.length ? `Goals (issue 15):\n${out.join('\n')}\n` : '';
}

/** The no-op goal of issue 15: each fcp --update at most half rsync -a's time. */
function noopGoals(results) {
  const rsync = results.find((r) => r.name === 'rsync -a (no-op)');
  if (!rsync) return '';
  const out = results.filter((r) => r !== rsync).map((r) => {
    const x = r.median / rsync.median;
    return `- ${r.name} ≤ 0.5× rsync -a: ${x.toFixed(2)}×, ${met(x <= 0.5)}`;
  });
  return `Goals (issue 15):\n${out.join('\n')}\n`;
}

async function noopSection(ctx, title, nps) {
  const { mnt, back, bin, haveRsync } = ctx;
  const src = path.join(mnt, 'src');
  const ref = path.join(mnt, 'ref');
  // The finished copy, made outside the mount: same names, sizes, times and modes.
  clearBacking(back, 'ref');
  cp(['-a', path.join(back, 'src'), path.join(back, 'ref')]);
  const cases = [
    ...(haveRsync ? [{ name: 'rsync -a (no-op)', cmd: 'rsync', args: ['-a', `${src}/`, `${ref}/`] }] : []),
    ...nps.map((n) => ({ name: `fcp -np ${n} --update (no-op)`, cmd: process.execPath, args: [bin, src, ref, '-np', String(n), '--quiet', '--update'] })),
  ];
  const load0 = loadavg();
  const results = await runCases(ctx, cases, { dstName: null, label: `no-op ${title}` });
  // Neither tool may have changed the finished copy.
  const r = spawnSync(path.join(toolsDir, 'treecmp'), ['-q', path.join(back, 'src'), path.join(back, 'ref')], { encoding: 'utf8' });
  clearBacking(back, 'ref');
  const base = results[0].name;
  console.log(`### no-op re-run over a finished copy: ${title}\n`);
  console.log(timeTable(results, ctx.entries, base));
  console.log(`\n${ctx.reps} reps per case, alternated; load average ${load0} at the start, ${loadavg()} at the end.` +
    ` The copy after all runs (treecmp): ${r.status === 0 ? 'unchanged' : `**CHANGED** (exit ${r.status})`}.\n`);
  console.log(noopGoals(results));
  console.log(breakdownTable(results.map((x) => ({ name: x.name, counts: medianCounts(x.counts) })), ctx.entries));
  console.log('');
}

/** Names of the segments between fcp's phase lines: a line ends the phase it names. */
const SEGMENT = { startup: 'start', dir: 'dir metadata', exit: 'teardown' };

/**
 * fcp alone, with the counts cut at its phase boundaries (bench/latency-phase-hook.cjs),
 * one run per rep; per segment, the median over the reps.
 */
async function phaseSection(ctx, title, nps) {
  const { mnt, back, bin, mount, reps, entries } = ctx;
  const src = path.join(mnt, 'src');
  const dst = path.join(mnt, 'dst');
  const hook = path.join(repoRoot, 'bench', 'latency-phase-hook.cjs');
  for (const n of nps) {
    const runs = []; // per rep: [{ segment, counts }]
    for (let r = 0; r < reps; r++) {
      clearBacking(back, 'dst');
      mount.mount();
      const phaseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latbench-phases-'));
      console.error(`latency: phases ${title}: run ${r + 1}/${reps}: fcp -np ${n}`);
      await timeIt(process.execPath, [bin, src, dst, '-np', String(n), '--quiet'], {
        env: {
          FCP_TRACE_PHASES: '1',
          NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${hook}`.trim(),
          LATBENCH_LATFS_PID: String(mount.pid),
          LATBENCH_STATS: mount.opts.stats,
          LATBENCH_PHASE_DIR: phaseDir,
        },
      });
      const final = await mount.unmount();
      const snaps = fs.readdirSync(phaseDir).sort().map((f) => JSON.parse(fs.readFileSync(path.join(phaseDir, f), 'utf8')));
      dropDir(phaseDir);
      if (!snaps.length) throw new Error('--per-phase: fcp printed no phase lines (FCP_TRACE_PHASES) or the hook did not load');
      const segs = [];
      let prev = null;
      for (const s of snaps) {
        const cur = flatCounts(s.stats);
        segs.push({ segment: SEGMENT[s.phase] ?? s.phase, counts: diffCounts(cur, prev) });
        prev = cur;
      }
      segs.push({ segment: 'after exit', counts: diffCounts(flatCounts(final), prev) });
      runs.push(segs);
    }
    clearBacking(back, 'dst');
    const order = [...new Set(runs.flatMap((segs) => segs.map((s) => s.segment)))];
    const columns = order.map((seg) => ({
      name: seg,
      counts: medianCounts(runs.map((segs) => segs.find((s) => s.segment === seg)?.counts ?? {})),
    }));
    console.log(`### fcp -np ${n} per phase: ${title}\n`);
    console.log(`Requests per entry made in each phase (medians over ${reps} runs). A phase's column runs from the end of the previous` +
      ` one to rank 0's "[phase] NAME" line (FCP_TRACE_PHASES=1); "start" is everything before the job (node and its modules, options, starting the ranks),` +
      ` "teardown" from the last phase to exit, "after exit" what reached latfs after the last process exited (releases).\n`);
    console.log(breakdownTable(columns, entries));
    console.log('');
  }
}

// Run directly (node bench/latency.mjs ...) rather than imported by run.mjs.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2), { direct: true }).catch((e) => { console.error(`latency.mjs: ${e.stack ?? e}`); process.exitCode = 1; });
}
