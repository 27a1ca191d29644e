// Copy benchmark: fcp against `cp -a` and a raw read+write floor, on tmpfs.
//
//   node bench/copy.mjs [--reps N] [--warmup N] [--only small,large,mixed,wide] [--np N]
//                       [--extra-args "..."] [--fcp-cmd "..."] [--no-verify] [--sync-cost] [--dir DIR]
//                       [--small-files N] [--large-size BYTES]
//                       [--mixed-files N] [--mixed-size BYTES] [--wide-files N] [--clean]
//
// Profiles (mktree): small (many small files, 100 per directory), large (2 big
// files), mixed (a research-like mix), wide (N small files in ONE directory).
//
// Cases, per profile:
//   fcp            node bin/fcp.js SRC DST -np N --quiet [extra args]   (hashing on, the default)
//   fcp --no-hash  the same with --no-hash (no xxhash of what is read; lets
//                  copy_file_range move the data in the kernel): the two side
//                  by side show what hashing costs
//   fcp --no-sync  (--sync-cost, instead of --no-hash and cat) the same without
//                  making the data durable (syncfs): what durability costs (and
//                  `fcp --no-sync; sync -f`: the data made durable after the copy); on a
//                  disk, give --dir DIR there (every run starts after a `sync`, so
//                  no run pays for an earlier one's dirty data). With it, also
//                  `cp -a; sync -f`: cp -a made as durable (syncfs of DST's file system),
//                  and the physical limit (bench/disk-limit.py): as many bytes as the
//                  tree has, written from memory into one file and made durable, all
//                  first then one fdatasync (as dd conv=fdatasync), and with writeback
//                  started behind the writes; the faster is what the disk allows any
//                  tool, with no source to read and no files or metadata to create
//   cp -a          cp -a SRC DST  (the single-process tool fcp has to beat)
//   cat    find SRC -type f -print0 | xargs -0 cat > OUT
//          reads and writes the same bytes with no per-file creates,
//          metadata or parallelism: roughly the data-movement floor on one
//          core. Ratio to it is shown for `large`, where data dominates; for
//          small trees metadata dominates and the ratio would mislead.
//
// After each profile's table: the peak RSS of the largest fcp process (any
// rank) over one extra, untimed run of the default fcp case (lib.mjs
// peakRssTree: /proc VmHWM of every process of the job, plus GNU time).
//
// Everything lives on tmpfs (/dev/shm/fcp-bench), so the numbers measure the
// tools (syscalls, CPU, coordination) and not a disk, and there is no page
// cache to drop between runs. Source trees are cached there between
// invocations (they take a while to generate); destinations are removed
// before every run and at the end (on a disk, set aside instead: DestClearer).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import {
  repoRoot, toolsDir, benchDir, timeIt, compare, ratioTable, makeTree, dropDir,
  parseOpts, shQuote, fmtBytes, peakRssTree, describeRss, median, met,
} from './lib.mjs';

const GiB = 1024 ** 3;

/** The block device under dir (its /proc/diskstats name), or null: a whole disk or a partition; not tmpfs. */
function diskOf(dir) {
  const dev = fs.statSync(dir).dev;
  const [major, minor] = [Math.floor(dev / 256) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00)];
  const line = fs.readFileSync('/proc/diskstats', 'utf8').split('\n').map((l) => l.trim().split(/\s+/))
    .find((f) => Number(f[0]) === major && Number(f[1]) === minor);
  return line ? line[2] : null;
}

/** Milliseconds the block device `name` has spent with I/O in flight since boot (/proc/diskstats io_ticks). */
function diskBusyMs(name) {
  const f = fs.readFileSync('/proc/diskstats', 'utf8').split('\n').map((l) => l.trim().split(/\s+/)).find((x) => x[2] === name);
  return f ? Number(f[12]) : NaN;
}

/**
 * Takes each run's destination out of the way of the next without timing an artifact of
 * its removal. On a disk (diskOf(base)), ext4 without a journal (this machine's root)
 * avoids reusing an inode deleted in the last 60 s, or 300 s while its inode table block
 * is dirty (ialloc.c: recently_deleted()), by scanning past every such inode of the group
 * for each new one. Removing a 20,000-file destination before the next run made each
 * create scan thousands of them: 86 % of a create's time (perf: find_inode_bit ->
 * recently_deleted), system time up to 2.6 s for a copy that otherwise takes 0.6 s,
 * `cp -a` 2.8-6.3 s instead of 0.35-0.42 s, and run times that depended on how long ago
 * the last removal was. So on a disk a destination is renamed into base/trash and kept
 * there, inodes and all, until the end of the invocation; when the trash holds `capBytes`
 * its files of 1 MiB or more are truncated to give the space back (a truncate frees
 * blocks, not inodes). The trash is removed at the end, or sooner when the file system
 * runs short of inodes, and no timed run starts within RECENT_MS of a removal (the time
 * of the last one is kept in base/trash.removed-at for the next invocation).
 * On tmpfs a destination is simply removed.
 */
const BIG = 1024 * 1024;
const RECENT_MS = 300_000;
/** Python: drop the cached pages of every regular file under argv[1] (written back first). */
const DONTNEED = `import os, sys
for d, _, fs in os.walk(sys.argv[1]):
    for f in fs:
        try:
            fd = os.open(os.path.join(d, f), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)`;
class DestClearer {
  constructor(base, onDisk, capBytes) {
    this.base = base;
    this.trash = path.join(base, 'trash');
    this.stamp = path.join(base, 'trash.removed-at');
    this.onDisk = onDisk;
    this.capBytes = capBytes;
    this.held = 0;
    this.setAside = 0;
    this.freed = 0;
    this.removals = 0;
    this.waitedMs = 0;
  }

  /** Moves dir out of the way (bytes: about what it holds), or removes it on tmpfs. */
  clear(dir, bytes) {
    if (!fs.existsSync(dir)) return;
    if (!this.onDisk) { dropDir(dir); return; }
    fs.mkdirSync(this.trash, { recursive: true });
    const aside = path.join(this.trash, `${process.pid}-${++this.setAside}`);
    fs.renameSync(dir, aside);
    // Its pages leave the page cache as they would with the files (POSIX_FADV_DONTNEED,
    // once written back): memory full of set-aside copies made every run reclaim as it went.
    spawnSync('sync');
    spawnSync('python3', ['-c', DONTNEED, aside]);
    this.held += bytes;
    if (this.held > this.capBytes) { this.freed += truncateBig(this.trash); this.held = 0; }
    const st = fs.statfsSync(this.base);
    if (st.ffree < st.files / 5) this.remove(); // a fifth of the inodes left: give them back now
  }

  /** Removes the trash, written back, and notes when (the next timed run waits: settle()). */
  remove() {
    if (!fs.existsSync(this.trash)) return;
    console.error(`copy: removing the copies set aside in ${this.trash}`);
    dropDir(this.trash);
    spawnSync('sync');
    fs.writeFileSync(this.stamp, String(Date.now()));
    this.removals += 1;
  }

  /** Before a timed run on a disk: waits until no inode a removal freed still counts as recently deleted. */
  settle() {
    if (!this.onDisk) return;
    let at = 0;
    try { at = Number(fs.readFileSync(this.stamp, 'utf8')); } catch { return; }
    const left = at + RECENT_MS - Date.now();
    if (!(left > 0)) return;
    console.error(`copy: waiting ${(left / 1000).toFixed(0)} s: the inodes removed at ${new Date(at).toISOString()} ` +
      'slow every create on this file system for 5 minutes (see DestClearer)');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, left);
    this.waitedMs += left;
  }
}

/** Truncates every regular file of BIG bytes or more under dir to 0; returns the bytes freed. */
function truncateBig(dir) {
  let freed = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) freed += truncateBig(p);
    else if (e.isFile()) {
      const { size } = fs.lstatSync(p);
      if (size >= BIG) { fs.truncateSync(p, 0); freed += size; }
    }
  }
  return freed;
}

/** CPU seconds used so far by the whole machine (/proc/stat: user, nice, system, irq, softirq) and by this process's waited-for descendants (/proc/self/stat cutime + cstime). */
function cpuNow() {
  const hz = 100; // USER_HZ, as Linux exports it on every architecture
  const all = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const self = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number); // fields from 3 (state) on
  return { machine: (all[0] + all[1] + all[2] + all[5] + all[6]) / hz, children: (f[13] + f[14]) / hz };
}

/** The durable writer of the limit cases. */
const DISK_LIMIT = fileURLToPath(new URL('disk-limit.py', import.meta.url));
/**
 * --sync-cost's limit cases: the tree's byte count written into one file from memory and
 * made durable (see disk-limit.py). [case name, its arguments after OUT BYTES]
 */
const LIMIT_CASES = [
  ['limit: write, then fdatasync', ['--at-end']],
  ['limit: write, writeback behind', []],
];
const KiB = 1024;

const SPEC = {
  reps: 'number',
  warmup: 'number',
  only: 'string',
  np: 'number',
  'extra-args': 'string',
  'fcp-cmd': 'string',
  taskset: 'string',
  'no-verify': 'boolean',
  'sync-cost': 'boolean',
  dir: 'string',
  'small-files': 'number',
  'large-size': 'number',
  'mixed-files': 'number',
  'mixed-size': 'number',
  'wide-files': 'number',
  clean: 'boolean',
  help: 'boolean',
};

const HELP = `usage: node bench/copy.mjs [options]   (or: npm run bench -- [options])
  --reps N             rounds per case (default 5)
  --warmup N           untimed rounds first (default 1; first writes to fresh tmpfs are slow)
  --only LIST          profiles to run, comma-separated: small,large,mixed,wide (default all)
  --np N               fcp ranks (default 2)
  --extra-args "..."   more arguments for fcp, split on whitespace
  --fcp-cmd "..."      replace "node bin/fcp.js" (harness testing, e.g. "cp -a");
                       runs as: CMD SRC DST [extra args], without -np/--quiet
                       (and without the --no-hash case)
  --no-verify          skip the treecmp check of each fcp case's first copy of each profile
  --sync-cost          cases fcp, fcp --no-sync, fcp --no-sync; sync -f, cp -a, cp -a; sync -f
                       and the disk's limit (the tree's byte count written durably from
                       memory: bench/disk-limit.py): what making the data durable costs, and
                       what it must cost at least
  --taskset CPUS       run the fcp cases under taskset -c CPUS (e.g. 0: leave the other CPUs
                       to the kernel's writeback and to cp)
  --dir DIR            trees and copies in DIR instead of ${benchDir} (e.g. on a disk)
  --small-files N      files in the small tree (default 20000)
  --large-size BYTES   size of each of the 2 large files (default 1 GiB)
  --mixed-files N      files in the mixed tree (default 5000)
  --mixed-size BYTES   total size of the mixed tree (default 2 GiB)
  --wide-files N       files in the wide tree, all in one directory (default 50000)
  --clean              remove the cached source trees at the end
Trees are cached in ${benchDir}.`;

/** Split a command-line string on whitespace (no quote handling: keep it simple). */
const words = (s) => (s ?? '').trim().split(/\s+/).filter(Boolean);

/**
 * The profiles: mktree options, and a generous size estimate (bytes of tmpfs
 * the tree will use) for the free-space check before the tree exists.
 * tmpfs allocates whole 4 KiB pages, hence the per-file overhead.
 */
function profiles(o) {
  const small = { files: o['small-files'] ?? 20000 };
  const large = { files: 2, size: o['large-size'] ?? GiB };
  const mixed = { files: o['mixed-files'] ?? 5000, size: o['mixed-size'] ?? 2 * GiB };
  const wide = { files: o['wide-files'] ?? 50000 };
  return {
    // 0-64 KiB, Pareto-skewed: a few KiB on average; 12 KiB/file is an overestimate.
    small: { mk: small, estimate: small.files * 12 * KiB },
    large: { mk: large, estimate: large.files * (large.size + 4 * KiB) },
    // "total about BYTES": allow 10 % over plus page rounding.
    mixed: { mk: mixed, estimate: mixed.size * 1.1 + mixed.files * 4 * KiB },
    // 0-2 KiB each, one 4 KiB page apiece plus inode and dentry: 6 KiB/file is generous.
    wide: { mk: wide, estimate: wide.files * 6 * KiB },
  };
}

/** Cache directory name that encodes the mktree options, so changed options mean a new tree. */
function srcDirFor(base, name, mk) {
  const parts = [`src-${name}`];
  if (mk.files != null) parts.push(`f${mk.files}`);
  if (mk.size != null) parts.push(`s${mk.size}`);
  return path.join(base, parts.join('-'));
}

/**
 * Bytes we can still write to benchDir's file system. tmpfs is backed by RAM
 * (and swap), and its size limit is often larger than the memory actually
 * free, so take the smaller of statfs and MemAvailable for tmpfs mounts.
 */
function roomBytes(base) {
  fs.mkdirSync(base, { recursive: true });
  const st = fs.statfsSync(base);
  let room = st.bavail * st.bsize;
  const TMPFS_MAGIC = 0x01021994;
  if (st.type === TMPFS_MAGIC) {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) room = Math.min(room, Number(m[1]) * KiB);
  }
  return room;
}

export async function main(argv = process.argv.slice(2)) {
  const { opts, unknown } = parseOpts(argv, SPEC);
  if (opts.help) { console.log(HELP); return; }
  // Unknown options may belong to another bench module (run.mjs passes the
  // same argv to all), so warn rather than fail.
  if (unknown.length) console.error(`copy.mjs: ignoring unknown arguments: ${unknown.join(' ')}`);

  const reps = opts.reps ?? 5;
  const warmup = opts.warmup ?? 1;
  const np = opts.np ?? 2;
  const extra = words(opts['extra-args']);
  const all = profiles(opts);
  const only = opts.only ? words(opts.only.replace(/,/g, ' ')) : Object.keys(all);
  for (const p of only) if (!all[p]) throw new Error(`--only: unknown profile "${p}" (have: ${Object.keys(all).join(', ')})`);
  if (!(reps >= 1)) throw new Error('--reps must be at least 1');

  // The command under test. The default uses this node binary directly, so
  // the run does not depend on PATH.
  // fcpVariants: the default (hashing on) first, then --no-hash unless
  // --fcp-cmd replaced fcp or --extra-args already turns hashing off.
  let fcpName, fcpCmd, fcpArgs;
  const fcpVariants = [];
  if (opts['fcp-cmd']) {
    const [cmd, ...pre] = words(opts['fcp-cmd']);
    fcpCmd = cmd;
    fcpName = `fcp-cmd "${opts['fcp-cmd']}"`;
    fcpArgs = (src, dst) => [...pre, src, dst, ...extra];
    fcpVariants.push({ name: fcpName, args: fcpArgs });
  } else {
    const bin = path.join(repoRoot, 'bin/fcp.js');
    if (!fs.existsSync(bin)) throw new Error(`${bin} not found: build first (npm run build), or pass --fcp-cmd`);
    fcpCmd = process.execPath;
    fcpName = `fcp -np ${np}`;
    fcpArgs = (src, dst) => [bin, src, dst, '-np', String(np), '--quiet', ...extra];
    fcpVariants.push({ name: fcpName, args: fcpArgs });
    if (opts['sync-cost']) {
      fcpVariants.push({ name: `${fcpName} --no-sync`, args: (src, dst) => [...fcpArgs(src, dst), '--no-sync'] });
      // The same data made durable after the copy instead of during it.
      fcpVariants.push({
        name: `${fcpName} --no-sync; sync -f`,
        cmdline: (src, dst) => ['bash', ['-c', '"${@:2}" && sync -f "$1"', 'nosync-sync', dst, fcpCmd, ...fcpArgs(src, dst), '--no-sync']],
      });
    } else if (!extra.includes('--no-hash')) {
      fcpVariants.push({ name: `${fcpName} --no-hash`, args: (src, dst) => [...fcpArgs(src, dst), '--no-hash'] });
    }
  }

  const base = opts.dir ? path.resolve(opts.dir) : benchDir;
  const dst = path.join(base, 'dst');
  const catOut = path.join(base, 'catout');
  const used = [];
  fs.mkdirSync(base, { recursive: true });
  const disk = diskOf(base); // the block device under base, null on tmpfs
  const dests = new DestClearer(base, disk !== null, Math.min(8 * GiB, roomBytes(base) / 4));

  console.log(`## copy: fcp vs cp -a (${base})${opts.taskset ? `; the fcp cases under taskset -c ${opts.taskset}` : ''}\n`);
  for (const name of only) {
    const prof = all[name];
    const src = srcDirFor(base, name, prof.mk);
    dests.clear(dst, 0);
    dropDir(catOut);

    // Room check: the source (unless cached) plus one copy at a time
    // (prepare() removes the previous destination before each run), plus a
    // margin for fcp's own scratch files and for the estimate being off.
    const cached = fs.existsSync(`${src}.summary.json`) && fs.existsSync(src);
    const treeBytes = prof.estimate;
    const need = (cached ? 0 : treeBytes) + treeBytes + Math.max(256 * 1024 ** 2, treeBytes * 0.1);
    const room = roomBytes(base);
    if (room < need) {
      console.log(`### ${name}\n\nskipped: needs about ${fmtBytes(need)} free in ${base}, only ${fmtBytes(room)} available.\n`);
      continue;
    }

    console.error(`copy: ${name}: ${cached ? 'using cached' : 'generating'} tree ${src}`);
    const tree = makeTree(name, src, prof.mk);
    used.push(src);

    // Check each fcp case's first copy once per profile (outside the
    // timing): a fast but wrong copy is not a result.
    const verify = new Map(); // case name -> result text
    const checkCopy = (caseName) => {
      const r = spawnSync(path.join(toolsDir, 'treecmp'), ['-q', src, dst], { encoding: 'utf8' });
      const last = (r.stdout || r.stderr || '').trim().split('\n').pop();
      verify.set(caseName, r.status === 0 ? `ok (${last})` : `**FAILED** (exit ${r.status}: ${last})`);
      if (r.status !== 0) console.error(`copy: ${name}: ${caseName}: treecmp found differences:\n${r.stdout}${r.stderr}`);
    };

    const cases = [
      ...fcpVariants.map((v) => ({
        name: v.name,
        run: async () => {
          let [cmd, args] = v.cmdline ? v.cmdline(src, dst) : [fcpCmd, v.args(src, dst)];
          // --taskset: fcp's processes (and the sync after it) on those CPUs only, the others left to the kernel
          if (opts.taskset) [cmd, args] = ['taskset', ['-c', opts.taskset, cmd, ...args]];
          const t = await timeIt(cmd, args);
          if (!opts['no-verify'] && !verify.has(v.name)) checkCopy(v.name);
          return t;
        },
      })),
      { name: 'cp -a', run: () => timeIt('cp', ['-a', src, dst]) },
      // What a durable cp costs: its data on the disk before it is called done; and what
      // putting the same bytes on this disk durably costs at least (LIMIT_CASES).
      ...(opts['sync-cost'] ? [
        { name: 'cp -a; sync -f', run: () => timeIt('bash', ['-c', 'cp -a "$1" "$2" && sync -f "$2"', 'cp-sync', src, dst]) },
        ...LIMIT_CASES.map(([caseName, args]) => ({ name: caseName, run: () => timeIt('python3', [DISK_LIMIT, catOut, String(tree.bytes), ...args]) })),
      ] : [{
        name: 'cat',
        run: () => timeIt('bash', ['-c', 'set -o pipefail; find "$1" -type f -print0 | xargs -0 cat > "$2"', 'cat-floor', src, catOut]),
      }]),
    ];

    // --sync-cost: how long the disk under DIR was busy in each run (io_ticks), which CPU
    // contention from other work does not stretch as it stretches wall times.
    // And the CPU of each run, its own processes' and the whole machine's: the kernel's
    // writeback of what a run wrote runs in kernel threads, outside the run's processes,
    // during the run when it syncs and after it when it does not.
    const busy = new Map(); // case name -> [ms]
    const cpu = new Map(); // case name -> [{ own, machine }]
    if (opts['sync-cost']) {
      const add = (m, k, v) => m.set(k, [...(m.get(k) ?? []), v]);
      for (const c of cases) {
        const timed = c.run;
        c.run = async () => {
          const [b0, c0] = [disk ? diskBusyMs(disk) : 0, cpuNow()];
          const t = await timed();
          const c1 = cpuNow();
          if (disk) add(busy, c.name, diskBusyMs(disk) - b0);
          add(cpu, c.name, { own: c1.children - c0.children, machine: c1.machine - c0.machine });
          return t;
        };
      }
    }

    let run = 0;
    const results = await compare(cases, {
      reps,
      warmup,
      prepare: (c, how) => {
        // Each run starts with no destination (cp -r semantics: DST is
        // created as the copy). Nothing else is dropped: tmpfs has no cache.
        dests.clear(dst, tree.bytes + tree.files * 4 * KiB);
        dropDir(catOut);
        // No run writes back what an earlier one (or the tree's generation) left dirty.
        if (opts['sync-cost']) spawnSync('sync');
        // On a disk, every run starts with the source in the page cache, as on tmpfs: the
        // copies set aside in the trash fill memory, and a source read partly from the disk
        // made run times depend on what the kernel had evicted (and a synced run's reads
        // wait behind its writeback, where --no-sync's do not).
        if (dests.onDisk) spawnSync('bash', ['-c', 'find "$1" -type f -print0 | xargs -0 cat > /dev/null', 'warm', src]);
        dests.settle();
        const label = how?.warmup ? 'warm-up' : `run ${++run}/${reps * cases.length}`;
        console.error(`copy: ${name}: ${label}: ${c.name}`);
      },
    });
    dests.clear(dst, tree.bytes + tree.files * 4 * KiB);
    dropDir(catOut);

    const baselines = name === 'large' && !opts['sync-cost'] ? ['cp -a', 'cat'] : ['cp -a'];
    console.log(ratioTable(`${name}: ${tree.files} files, ${tree.dirs} dirs, ${fmtBytes(tree.bytes)}`, results, baselines));
    const checks = opts['no-verify']
      ? 'skipped (--no-verify)'
      : fcpVariants.map((v) => `${v.name}: ${verify.get(v.name) ?? 'not run'}`).join('; ');
    console.log(`Untimed warm-up rounds: ${warmup}. fcp copy check (treecmp): ${checks}`);
    const on = results.find((r) => r.name === fcpVariants[0].name);
    const off = fcpVariants[1] && results.find((r) => r.name === fcpVariants[1].name);
    if (on && off) {
      const pct = ((on.median / off.median - 1) * 100).toFixed(1);
      const what = opts['sync-cost'] ? 'Sync cost' : 'Hashing cost';
      const on2 = opts['sync-cost'] ? 'syncing' : 'hashing on';
      const goal = opts['sync-cost'] ? ` Goal (issue 13) at most +5 %: ${met(Number(pct) <= 5)}.` : '';
      console.log(`${what}: ${on.name} ${on.median.toFixed(3)} s vs ${off.name} ${off.median.toFixed(3)} s (medians): ${on2} takes ${pct >= 0 ? '+' : ''}${pct} %.${goal}`);
    }
    if (busy.size > 0) {
      const ms = (name) => (busy.has(name) ? `${median(busy.get(name)).toFixed(0)} ms` : '-');
      console.log(`Disk busy per run (io_ticks of ${disk}, medians): ${results.map((r) => `${r.name} ${ms(r.name)}`).join(', ')} ` +
        '(--no-sync and cp -a leave their data dirty: the disk writes it after the run).');
    }
    if (cpu.size > 0) {
      const med = (name, k) => median(cpu.get(name).map((x) => x[k]));
      console.log(`CPU per run (medians; its processes / whole machine): ${results.filter((r) => cpu.has(r.name))
        .map((r) => `${r.name} ${med(r.name, 'own').toFixed(2)} / ${med(r.name, 'machine').toFixed(2)} s`).join(', ')}` +
        ` (${os.cpus().length} CPUs; the machine's figure includes the kernel writing data back).`);
      // The kernel's CPU to write the copy back, measured apart from fcp's syncs: the
      // machine's CPU of a --no-sync copy followed by sync -f, less that of the copy alone.
      // Spread over every CPU and added to the --no-sync copy's time, it is the least a
      // durable copy can take when the copy alone keeps the CPUs busy (no idle CPU to hide it in).
      const after = fcpVariants[2] && results.find((r) => r.name === fcpVariants[2].name);
      if (on && off && after && cpu.has(after.name)) {
        const wb = Math.max(0, med(after.name, 'machine') - med(off.name, 'machine'));
        const floor = off.median + wb / os.cpus().length;
        console.log(`Kernel writeback of this copy: ${wb.toFixed(2)} CPU s (${after.name} less ${off.name}, whole machine); ` +
          `${off.name} plus that spread over ${os.cpus().length} CPUs: ${floor.toFixed(3)} s (+${((floor / off.median - 1) * 100).toFixed(1)} %), ` +
          `the least a durable copy takes unless idle CPU hides the writeback; ${on.name} takes ${(on.median / floor).toFixed(2)} × that.`);
      }
    }
    const limit = results.filter((r) => LIMIT_CASES.some(([n]) => n === r.name)).sort((a, b) => a.median - b.median)[0];
    if (on && off && limit) {
      const goal = off.median * 1.05;
      console.log(`Disk limit: ${limit.name.replace(/^limit: /, '')} ${limit.median.toFixed(3)} s (median; ${fmtBytes(tree.bytes)} made durable, no files): ` +
        `${limit.median <= goal ? 'within' : 'above'} 1.05 × ${off.name} (${goal.toFixed(3)} s), so the bytes alone ` +
        `${limit.median <= goal ? 'leave room for' : 'put out of reach'} a sync cost of 5 % on this disk (the kernel's CPU to write back ` +
        `many files, in "CPU per run", is not in this limit); ${on.name} takes ${(on.median / limit.median).toFixed(2)} × the limit.`);
    }

    // Peak memory: one more, untimed run of the default fcp case, watching
    // every process of the job (rank 0 and the ranks it spawns).
    console.error(`copy: ${name}: peak RSS run: ${fcpVariants[0].name}`);
    const rss = await peakRssTree(fcpCmd, fcpVariants[0].args(src, dst));
    dests.clear(dst, tree.bytes + tree.files * 4 * KiB);
    console.log(`${fcpVariants[0].name}, one run: ${describeRss(rss)}\n`);
  }

  if (dests.onDisk) {
    const early = dests.removals;
    dests.remove();
    console.log(`On a disk, each copy was set aside in ${dests.trash} (${dests.setAside} in this run; files of 1 MiB or more ` +
      `truncated, ${fmtBytes(dests.freed)}) instead of being removed before the next run. The trash was removed at the end` +
      `${early ? ` and ${early} time(s) before, when inodes ran short` : ''}; no timed run starts within 5 minutes of a removal ` +
      `(${(dests.waitedMs / 1000).toFixed(0)} s waited in this run): ext4 without a journal makes every create skip the inodes ` +
      'deleted in the last 1-5 minutes (see DestClearer).\n');
  }
  if (opts.clean) {
    for (const src of used) { dropDir(src); fs.rmSync(`${src}.summary.json`, { force: true }); }
    console.error(`copy: removed cached trees: ${used.join(' ') || '(none)'}`);
  }

  // Exact command to reproduce this output (from whichever entry point ran).
  const entry = path.relative(repoRoot, process.argv[1] ?? 'bench/copy.mjs');
  const env = process.env.FCP_TOOLS_DIR ? `FCP_TOOLS_DIR=${shQuote(process.env.FCP_TOOLS_DIR)} ` : '';
  const cmdline = [`${env}node`, entry, ...argv].map((w, i) => (i ? shQuote(w) : w)).join(' ');
  console.log(`Reproduce: \`cd ${shQuote(repoRoot)} && ${cmdline}\``);
}

// Run directly (node bench/copy.mjs ...) rather than imported by run.mjs.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e) => { console.error(`copy.mjs: ${e.stack ?? e}`); process.exitCode = 1; });
}
