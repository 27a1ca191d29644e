// Small benchmark helpers shared by the bench/*.mjs modules.
//
// Plain ESM, no dependencies: benchmarks must run on a bare checkout (after
// `npm run build`) without pulling anything extra in.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root: bench/ lives directly under it. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where mktree/treecmp live. In CI the repo is cloned with shared/ beside it,
 * so the default is ../shared/tools relative to the repo root;
 * FCP_TOOLS_DIR overrides it for other layouts.
 */
export const toolsDir = process.env.FCP_TOOLS_DIR
  ? path.resolve(process.env.FCP_TOOLS_DIR)
  : path.resolve(repoRoot, '../shared/tools');

/**
 * Cache for generated trees and scratch output. tmpfs, so the benchmark
 * measures the copy tool (CPU, syscalls, coordination) rather than whichever
 * disk the machine happens to have, and runs are repeatable.
 */
export const benchDir = '/dev/shm/fcp-bench';

/** Keep only the last `max` characters of a growing string (stderr tails). */
function tail(s, max = 4000) {
  return s.length > max ? '…' + s.slice(-max) : s;
}

/**
 * Run `cmd args` and return its wall time in seconds.
 *
 * Timed with process.hrtime from just before spawn() to the 'close' event, so
 * it includes process start-up (node boot for fcp, exec for cp): that is part
 * of what a user waits for. stdout is discarded (a pipe we never read could
 * fill up and stall the child; 'ignore' costs nothing); stderr is kept (tail
 * only) so a failure can say why. Throws if the exit status is not 0 or the
 * process dies from a signal.
 *
 * opts.env is merged over process.env (so PATH etc. survive); opts.cwd
 * defaults to the repo root.
 */
export function timeIt(cmd, args = [], { env, cwd } = {}) {
  return new Promise((resolve, reject) => {
    let errTail = '';
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, {
      cwd: cwd ?? repoRoot,
      env: env ? { ...process.env, ...env } : process.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => { errTail = tail(errTail + d); });
    child.on('error', reject); // e.g. ENOENT: command not found
    child.on('close', (code, signal) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code === 0) return resolve(secs);
      const why = signal ? `signal ${signal}` : `exit status ${code}`;
      reject(new Error(`${[cmd, ...args].join(' ')} failed (${why})\n${errTail.trimEnd()}`));
    });
  });
}

/** How a bench marks a goal it checks: met, or not met (in bold, to stand out in a table's notes). */
export const met = (ok) => (ok ? 'met' : '**not met**');

/** Median of a list of numbers (mean of the two middle values if even). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Run every case `reps` times, interleaved.
 *
 * Round r runs the cases in an order rotated by r (round 0: A B C, round 1:
 * B C A, round 2: C A B, ...), so no case always runs first (cold-ish) or
 * always right after a particular other case (which might leave dirty pages
 * or a busy CPU behind). Interleaving rather than "all A runs, then all B"
 * also spreads slow drift (thermal, other load) evenly over the cases.
 *
 * prepare(case, {warmup}) is awaited before every single run, e.g. to remove
 * the previous destination so each copy starts from the same state. Its time
 * is not counted. `warmup` rounds (default 0) run every case once, untimed,
 * before the measured rounds.
 *
 * Returns [{ name, times: [seconds, ...], median }] in the order given.
 */
export async function compare(cases, { reps = 5, prepare, warmup = 0 } = {}) {
  // Optional untimed warm-up rounds: on this kind of VM the first write to
  // fresh tmpfs memory is much slower (host pages faulted in on first touch),
  // which would otherwise land on whichever case happens to run first.
  for (let r = 0; r < warmup; r++) {
    for (const c of cases) {
      if (prepare) await prepare(c, { warmup: true });
      await c.run();
    }
  }
  const times = cases.map(() => []);
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (r + k) % cases.length;
      if (prepare) await prepare(cases[i]);
      times[i].push(await cases[i].run());
    }
  }
  return cases.map((c, i) => ({ name: c.name, times: times[i], median: median(times[i]) }));
}

/**
 * A markdown table of compare() results.
 *
 * Columns: case, median seconds, min-max seconds (so the reader can see the
 * noise, not just the middle), and one "ratio to X" column per baseline
 * (median / baseline median: 0.72× means 28 % faster than the baseline).
 * baselineName may be a string or an array of case names; names that are not
 * in the results are dropped.
 */
export function ratioTable(title, results, baselineName) {
  const baselines = (Array.isArray(baselineName) ? baselineName : [baselineName])
    .map((b) => results.find((r) => r.name === b))
    .filter(Boolean);
  const reps = Math.max(0, ...results.map((r) => r.times.length));
  const head = ['case', 'median s', 'min–max s', ...baselines.map((b) => `ratio to ${b.name}`)];
  const rows = results.map((r) => [
    r.name,
    r.median.toFixed(3),
    `${Math.min(...r.times).toFixed(3)}–${Math.max(...r.times).toFixed(3)}`,
    ...baselines.map((b) => `${(r.median / b.median).toFixed(2)}×`),
  ]);
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [
    `### ${title}`,
    '',
    line(head),
    line(head.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...rows.map(line),
    '',
    `${reps} reps per case, interleaved (rotated order each round); ratio = median / baseline median, lower is faster.`,
    '',
  ].join('\n');
}

let warnedNoTime = false;

/**
 * Peak resident set size of `cmd args`, in KiB, or null if GNU time is not
 * installed (apt package `time`; the shell builtin cannot do this).
 *
 * What it measures: GNU time reports ru_maxrss from wait4() on its direct
 * child. On Linux that is the peak RSS of the *single largest* process among
 * the child and every descendant that was waited for (reaped) in its
 * subtree: it is a max, not a sum. So for `fcp -np 2` it is the biggest rank
 * or the launcher, whichever peaked higher, not the job total. Processes
 * that are not descendants (e.g. daemons started over ssh by mpirun, or
 * anything reparented to init and never reaped by the subtree) are missed.
 *
 * The command's own stderr is left alone; time writes to a temp file (-o) so
 * the two never mix. Throws if the command fails.
 */
export async function peakRss(cmd, args = [], opts = {}) {
  const gnuTime = '/usr/bin/time';
  if (!fs.existsSync(gnuTime)) {
    if (!warnedNoTime) console.warn('peakRss: /usr/bin/time (GNU time) not found, peak RSS not measured');
    warnedNoTime = true;
    return null;
  }
  const out = path.join(os.tmpdir(), `fcp-bench-rss-${process.pid}-${Date.now()}.txt`);
  try {
    await timeIt(gnuTime, ['-f', '%M', '-o', out, cmd, ...args], opts);
    // On failure GNU time prepends "Command exited with non-zero status N",
    // but timeIt has already thrown then; the last line is the number.
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
    const kib = Number(lines[lines.length - 1]);
    if (!Number.isFinite(kib)) throw new Error(`peakRss: cannot parse GNU time output: ${lines.join(' / ')}`);
    return kib;
  } finally {
    fs.rmSync(out, { force: true });
  }
}

/** Parse mktree's summary line: `mktree: PROFILE DIR files=N dirs=N bytes=N`. */
function parseSummary(text) {
  const lines = text.trim().split('\n');
  const m = /^mktree: (\S+) (.*) files=(\d+) dirs=(\d+) bytes=(\d+)$/.exec(lines[lines.length - 1]);
  if (!m) throw new Error(`cannot parse mktree summary: ${lines[lines.length - 1]}`);
  return { profile: m[1], dir: m[2], files: Number(m[3]), dirs: Number(m[4]), bytes: Number(m[5]) };
}

/**
 * Make a mktree tree at `dir` unless it is already there; return its summary
 * { profile, dir, files, dirs, bytes }.
 *
 * Trees are slow to generate (python writes ~2 GiB for large/mixed) and
 * deterministic, so they are cached, normally under benchDir; the caller
 * should put the options in the directory name. To make "dir exists" mean
 * "dir is complete", mktree writes into a temporary sibling that is renamed
 * into place only on success, and the summary (with the options used) is
 * stored next to it in DIR.summary.json. A tree with a missing or
 * mismatching summary is rebuilt.
 *
 * opts: { files, size, seed } -> mktree --files/--size/--seed.
 */
export function makeTree(profile, dir, opts = {}) {
  dir = path.resolve(dir);
  const meta = `${dir}.summary.json`;
  const want = { profile, files: opts.files ?? null, size: opts.size ?? null, seed: opts.seed ?? null };
  if (fs.existsSync(dir)) {
    try {
      const saved = JSON.parse(fs.readFileSync(meta, 'utf8'));
      if (JSON.stringify(saved.options) === JSON.stringify(want)) return saved.summary;
    } catch { /* no or bad summary: rebuild below */ }
    dropDir(dir);
  }
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  dropDir(tmp);
  const args = [profile, tmp];
  if (opts.files != null) args.push('--files', String(opts.files));
  if (opts.size != null) args.push('--size', String(opts.size));
  if (opts.seed != null) args.push('--seed', String(opts.seed));
  let out;
  try {
    out = execFileSync(path.join(toolsDir, 'mktree'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (e) {
    dropDir(tmp);
    throw e;
  }
  fs.renameSync(tmp, dir);
  const summary = { ...parseSummary(out), dir };
  fs.writeFileSync(meta, JSON.stringify({ options: want, summary }, null, 2) + '\n');
  return summary;
}

/** rm -rf, synchronously: used between runs, where nothing else is going on. */
export function dropDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Minimal option parser shared by the bench modules.
 *
 * spec: { name: 'string' | 'number' | 'boolean' }. Accepts --name value and
 * --name=value. Unlike util.parseArgs, a value may start with '-' (needed for
 * --extra-args "--foo"). Unknown options are returned, not fatal, because
 * run.mjs passes the same argv to every module and each module only knows
 * its own options.
 */
export function parseOpts(argv, spec) {
  const opts = {};
  const unknown = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([^=]+)(?:=(.*))?$/s.exec(a);
    if (!m || !(m[1] in spec)) {
      unknown.push(a);
      continue;
    }
    const [, name, inline] = m;
    if (spec[name] === 'boolean') {
      opts[name] = inline === undefined ? true : !/^(0|false|no)$/i.test(inline);
      continue;
    }
    const v = inline ?? argv[++i];
    if (v === undefined) throw new Error(`option --${name} needs a value`);
    if (spec[name] === 'number') {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`option --${name}: not a number: ${v}`);
      opts[name] = n;
    } else {
      opts[name] = v;
    }
  }
  return { opts, unknown };
}

/** Quote one word for a POSIX shell, only when needed (for printed command lines). */
export function shQuote(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${String(s).replace(/'/g, `'\\''`)}'`;
}

/** Format a byte count for humans (binary units). */
export function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// ---------------------------------------------------------------------------
// Additions for engine.mjs, scale.mjs, update.mjs and copy.mjs's peak RSS.

/**
 * Cache directory for a mktree tree, encoding the options in the name (the
 * same naming copy.mjs and fsum.mjs use, so all modules share trees):
 * benchDir/src-PROFILE[-fFILES][-sSIZE].
 */
export function srcDirFor(profile, mk = {}) {
  const parts = [`src-${profile}`];
  if (mk.files != null) parts.push(`f${mk.files}`);
  if (mk.size != null) parts.push(`s${mk.size}`);
  return path.join(benchDir, parts.join('-'));
}

/**
 * Room left in benchDir's file system: { bytes, inodes }. For tmpfs, bytes is
 * the smaller of statfs and MemAvailable (tmpfs lives in RAM, and its size
 * limit is often larger than the memory actually free). inodes is statfs's
 * free count (tmpfs has an inode limit too, which a million-file tree and its
 * copy can reach).
 */
export function room() {
  fs.mkdirSync(benchDir, { recursive: true });
  const st = fs.statfsSync(benchDir);
  let bytes = st.bavail * st.bsize;
  const TMPFS_MAGIC = 0x01021994;
  if (st.type === TMPFS_MAGIC) {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) bytes = Math.min(bytes, Number(m[1]) * 1024);
  }
  return { bytes, inodes: st.ffree };
}

/**
 * Like timeIt, but keeps stdout: resolves { seconds, stdout, stderr (tail) }.
 * For commands whose output is part of the result (fcp --json, the synthetic
 * job). Throws on a non-zero exit or a signal.
 */
export function runCapture(cmd, args = [], { env, cwd } = {}) {
  return new Promise((resolve, reject) => {
    let out = '';
    let errTail = '';
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, {
      cwd: cwd ?? repoRoot,
      env: env ? { ...process.env, ...env } : process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => { errTail = tail(errTail + d); });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code === 0) return resolve({ seconds, stdout: out, stderr: errTail });
      const why = signal ? `signal ${signal}` : `exit status ${code}`;
      reject(new Error(`${[cmd, ...args].join(' ')} failed (${why})\n${errTail.trimEnd()}`));
    });
  });
}

/** The JSON object on the last non-empty line of `text` (fcp --json, synthetic-job --json). */
export function lastJson(text) {
  const lines = text.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  try {
    return JSON.parse(last);
  } catch {
    throw new Error(`expected a JSON object on the last line of output, got: ${last.slice(0, 300)}`);
  }
}

/** KiB (as /proc and GNU time report them) to a MiB string with one decimal. */
export function kibToMiB(kib) {
  return kib == null ? '–' : (kib / 1024).toFixed(1);
}

/** Fields of /proc/PID/stat after the "(comm)" part: [state, ppid, pgrp, ...] (field 3 onwards). */
function procStat(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/**
 * Peak RSS of a command and of every process it starts, in KiB.
 *
 * Why not peakRss(): GNU time reports one number, the largest ru_maxrss of
 * the waited-for process tree, and says nothing about which process it was;
 * processes that are reparented to init and never reaped by the subtree are
 * missed altogether. Here the command is started in a process group of its
 * own (detached) and, every `intervalMs` (default 50), /proc is scanned for
 * processes of that group or descendants of processes already seen; each
 * one's VmHWM (the kernel's per-process RSS high-water mark, monotonic) is
 * read from /proc/PID/status and the last value seen is kept. A process
 * that grows in its last < intervalMs before exiting would be under-read,
 * so the command also runs under GNU time when it is installed: its %M
 * (max RSS over the command and every descendant it waited for, i.e. every
 * fcp rank under -np, since rank 0 reaps its children) closes that gap for
 * the overall maximum.
 *
 * Resolves {
 *   maxKiB:  max(largest VmHWM polled, GNU time's %M): the largest single process
 *   timeKiB: GNU time's %M, or null without /usr/bin/time
 *   procs:   [{ pid, ppid, name, rank, hwmKiB }] one per process seen (not the
 *            GNU time wrapper), in start order; rank is FCP_RANK from the
 *            process's environment (fcp's -np children), 0 for a node process
 *            without it whose parent is the wrapper (rank 0), else null
 *   seconds: wall time (including the wrapper, which costs ~1 ms)
 *   stdout:  the command's stdout (so --json summaries can be checked)
 * }. Throws if the command fails.
 */
export function peakRssTree(cmd, args = [], { env, cwd, intervalMs = 50 } = {}) {
  const gnuTime = '/usr/bin/time';
  const haveTime = fs.existsSync(gnuTime);
  const timeOut = path.join(os.tmpdir(), `fcp-bench-rsstree-${process.pid}-${Date.now()}.txt`);
  const argv = haveTime ? [gnuTime, ['-f', '%M', '-o', timeOut, cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    let out = '';
    let errTail = '';
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0], argv[1], {
      cwd: cwd ?? repoRoot,
      env: env ? { ...process.env, ...env } : process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group: pgid = child.pid
    });
    const pgid = child.pid;
    /** pid -> record; `skip` holds pids known not to belong (a pid's group and parent do not change). */
    const seen = new Map();
    const skip = new Set();
    const poll = () => {
      let pids;
      try { pids = fs.readdirSync('/proc'); } catch { return; }
      for (const name of pids) {
        if (name.charCodeAt(0) > 57 || skip.has(name)) continue; // not a digit, or known outsider
        let rec = seen.get(name);
        try {
          if (!rec) {
            const f = procStat(name);
            const ppid = Number(f[1]);
            const pgrp = Number(f[2]);
            if (pgrp !== pgid && !seen.has(String(ppid))) { skip.add(name); continue; }
            rec = { pid: Number(name), ppid, name: '', rank: null, hwmKiB: 0 };
            seen.set(name, rec);
          }
          const st = fs.readFileSync(`/proc/${name}/status`, 'utf8');
          const hwm = /^VmHWM:\s+(\d+) kB/m.exec(st);
          if (hwm) rec.hwmKiB = Math.max(rec.hwmKiB, Number(hwm[1]));
          const nm = /^Name:\s+(.*)$/m.exec(st);
          if (nm) rec.name = nm[1];
          if (rec.rank === null && rec.name === 'node') {
            // After exec the environment is the rank's own (before exec it is the parent's).
            const m = /(?:^|\0)FCP_RANK=(\d+)(?:\0|$)/.exec(fs.readFileSync(`/proc/${name}/environ`, 'latin1'));
            if (m) rec.rank = Number(m[1]);
          }
        } catch { /* exited between readdir and read: keep what we have */ }
      }
    };
    const timer = setInterval(poll, intervalMs);
    poll();
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => { errTail = tail(errTail + d); });
    const done = (err, value) => {
      clearInterval(timer);
      fs.rmSync(timeOut, { force: true });
      if (err) reject(err); else resolve(value);
    };
    child.on('error', (e) => done(e));
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) {
        const why = signal ? `signal ${signal}` : `exit status ${code}`;
        return done(new Error(`${[cmd, ...args].join(' ')} failed (${why})\n${errTail.trimEnd()}`));
      }
      let timeKiB = null;
      if (haveTime) {
        const lines = fs.readFileSync(timeOut, 'utf8').trim().split('\n');
        const n = Number(lines[lines.length - 1]);
        if (Number.isFinite(n)) timeKiB = n;
      }
      // The command itself: the group leader, or the wrapper's child under GNU time.
      const isTop = (p) => (haveTime ? p.ppid === pgid : p.pid === pgid);
      const procs = [...seen.values()]
        .filter((p) => !(haveTime && p.pid === pgid)) // the GNU time wrapper itself
        .map((p) => ({ ...p, rank: p.rank ?? (p.name === 'node' && isTop(p) ? 0 : null) }));
      const polled = Math.max(0, ...procs.map((p) => p.hwmKiB));
      done(null, { maxKiB: Math.max(polled, timeKiB ?? 0), timeKiB, procs, seconds, stdout: out });
    });
  });
}

/**
 * One line describing a peakRssTree result, e.g.
 * "peak RSS 92.4 MiB (largest process; rank 0 88.1, rank 1 92.4 MiB polled VmHWM; GNU time 92.4)".
 */
export function describeRss(r) {
  const label = (p) => (p.rank !== null ? `rank ${p.rank}` : `${p.name || '?'} ${p.pid}`);
  const per = r.procs
    .filter((p) => p.hwmKiB > 0)
    .sort((a, b) => (a.rank ?? 1e9) - (b.rank ?? 1e9) || a.pid - b.pid)
    .map((p) => `${label(p)} ${kibToMiB(p.hwmKiB)}`);
  const time = r.timeKiB != null ? `; GNU time %M ${kibToMiB(r.timeKiB)}` : '';
  return `peak RSS ${kibToMiB(r.maxKiB)} MiB (largest single process; per process VmHWM MiB: ${per.join(', ') || 'none seen'}${time})`;
}
