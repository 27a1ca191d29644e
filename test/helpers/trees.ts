/**
 * Source trees for the copy tests, and the checks run on copies of them.
 *
 * tree(profile, opts) makes a tree with the shared mktree tool at most once per test run
 * and returns its path: /dev/shm/fcp-test-trees/<profile>-<opts>. Copy sources are only
 * read (by fcp and treecmp), so every test file shares them. Test files run in parallel
 * workers: whoever needs a tree takes a lock (an atomic mkdir), generates into a temporary
 * name and renames it into place, so nobody ever sees half a tree. A stamp beside the tree
 * (mktree's hash, the arguments, a digest of every entry's metadata) lets later runs reuse
 * it only while it is exactly as made; rm -rf /dev/shm/fcp-test-trees to start afresh.
 *
 * Suite time matters (the whole `npm test` on 2 cores): the tests use reduced sizes, see
 * PROFILES below.
 */
import { spawnSync, type SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { isRoot, repoRoot, run, toolsDir, type RunResult, pidAlive } from './run.js';

export const TREES_DIR = existsSync('/dev/shm') ? '/dev/shm/fcp-test-trees' : '/tmp/fcp-test-trees';

export interface TreeOpts { files?: number; size?: number; seed?: number }

/**
 * The sizes the copy tests use, reduced from mktree's defaults to keep the suite well
 * under 15 minutes on 2 cores: small 3000 files (default 20000), wide 5000 files in one
 * directory (default 50000), mixed 800 files / ~170 MB (default 5000 / 2 GiB); deep
 * (200 levels) and features (incl. its 513 MiB sparse file, ~9 MB allocated) as they are.
 */
export const PROFILES: Record<string, TreeOpts> = {
  features: {},
  small: { files: 3000 },
  mixed: { files: 800, size: 200_000_000 },
  deep: {},
  wide: { files: 5000 },
};

const mktreePath = () => join(toolsDir, 'mktree');
const treecmpPath = () => join(toolsDir, 'treecmp');

function mktreeArgs(opts: TreeOpts): string[] {
  const a: string[] = [];
  if (opts.files !== undefined) a.push('--files', String(opts.files));
  if (opts.size !== undefined) a.push('--size', String(opts.size));
  if (opts.seed !== undefined) a.push('--seed', String(opts.seed));
  return a;
}

/** Run mktree into `dir` (which must not exist); returns its summary line. */
export function makeTree(profile: string, dir: string, opts: TreeOpts = {}): string {
  const r = spawnSync(mktreePath(), [profile, dir, ...mktreeArgs(opts)], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`mktree ${profile} ${dir} failed (${r.status ?? r.signal}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return lines[lines.length - 1]!;
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);


/** Remove a tree even when it holds read-only directories (and we are not root). */
export function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  if (!isRoot) spawnSync('chmod', ['-R', 'u+rwx', dir]);
  rmSync(dir, { recursive: true, force: true });
}

function withLock<T>(lock: string, fn: () => T): T {
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = 0;
      try {
        holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch { /* not written yet */ }
      let age = 0;
      try {
        age = Date.now() - statSync(lock).mtimeMs;
      } catch { /* just released */ }
      // A holder that died (a killed test run) leaves its lock behind: take it over.
      if ((holder > 0 && !pidAlive(holder)) || (holder === 0 && age > 30_000)) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock} (held by pid ${holder})`);
      else sleepSync(100);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** A digest of every entry's name, type, mode, size, links and mtime: a tree that was changed after it was made no longer matches. */
function signature(dir: string): string {
  const h = createHash('sha1');
  const lines = walk(dir).map(({ rel, st }) => `${rel.toString('hex')} ${st.mode} ${st.size} ${st.nlink} ${st.mtimeNs} ${st.uid}:${st.gid}`);
  for (const l of lines.sort()) h.update(`${l}\n`);
  return h.digest('hex');
}

const verified = new Map<string, string>();

/**
 * The shared, read-only source tree of `profile` with `opts`. Made at most once per test
 * run; a tree left by an earlier run is reused only when its stamp matches: same mktree
 * script, same arguments, and every entry as it was made (names, types, modes, sizes,
 * links, mtimes). Reuse (rather than remaking it every run) keeps concurrent test runs of
 * different people from pulling a tree from under each other.
 */
export function tree(profile: string, opts: TreeOpts = PROFILES[profile] ?? {}): string {
  const tag = [profile, ...(opts.files !== undefined ? [`f${opts.files}`] : []), ...(opts.size !== undefined ? [`s${opts.size}`] : []), ...(opts.seed !== undefined ? [`r${opts.seed}`] : [])];
  const name = tag.length === 1 ? `${profile}-default` : tag.join('-');
  const path = join(TREES_DIR, name);
  if (verified.has(path)) return path;
  const stampPath = `${path}.stamp`;
  const mktreeHash = createHash('sha1').update(readFileSync(mktreePath())).digest('hex');
  const recipe = JSON.stringify({ mktree: mktreeHash, args: [profile, ...mktreeArgs(opts)] });
  mkdirSync(TREES_DIR, { recursive: true, mode: 0o755 });
  const fresh = () => {
    if (!existsSync(path) || !existsSync(stampPath)) return false;
    const [r, sig] = readFileSync(stampPath, 'utf8').split('\n');
    return r === recipe && sig === signature(path);
  };
  return withLock(`${path}.lock`, () => {
    if (!fresh()) {
      rmSync(stampPath, { force: true });
      removeTree(path);
      const tmp = `${path}.tmp-${process.pid}`;
      removeTree(tmp);
      const summary = makeTree(profile, tmp, opts);
      renameSync(tmp, path);
      writeFileSync(stampPath, `${recipe}\n${signature(path)}\n${summary}\n`);
    }
    verified.set(path, recipe);
    return path;
  });
}

// ---------------------------------------------------------------------------
// Running fcp and looking at trees
// ---------------------------------------------------------------------------

export const fcpBin = join(repoRoot, 'bin', 'fcp.js');

/** fcp with the given arguments, as the current user. */
export function fcp(args: string[], opts: SpawnOptions & { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return run(process.execPath, [fcpBin, ...args], { timeoutMs: 120_000, ...opts });
}

/** The environment without the fallback switch (tests must not inherit it by accident). */
export function envWith(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.FCP_NO_NATIVE;
  return { ...env, ...extra };
}

/**
 * A command as an unprivileged user: as root through setpriv (user nobody), so that
 * permission checks apply; as anyone else directly (they apply anyway).
 */
export function unprivileged(cmd: string, args: string[]): [string, string[]] {
  if (!isRoot) return [cmd, args];
  return ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', cmd, ...args]];
}

export interface TreecmpResult { code: number | null; entries: number; differences: number; lines: string[]; output: string }

/** treecmp SRC DST with options; the difference lines (at most --max) and the summary numbers. */
export async function treecmp(src: string, dst: string, flags: string[] = []): Promise<TreecmpResult> {
  const r = await run(treecmpPath(), ['--max', '200', ...flags, src, dst], { timeoutMs: 300_000 });
  const lines = r.stdout.trim().split('\n');
  const m = /^treecmp: (\d+) entries, (\d+) differences$/.exec(lines[lines.length - 1] ?? '');
  if (!m) throw new Error(`treecmp gave no summary (exit ${r.code}): ${r.stdout.slice(-2000)} ${r.stderr.slice(-2000)}`);
  return { code: r.code, entries: Number(m[1]), differences: Number(m[2]), lines: lines.slice(0, -1), output: `${r.stdout}${r.stderr}` };
}

export interface WalkedEntry { rel: Buffer; st: BigIntStats }

/** Every entry below root (root itself as an empty path), names as bytes, nothing followed. */
export function walk(root: string | Buffer): WalkedEntry[] {
  const base = Buffer.isBuffer(root) ? root : Buffer.from(root);
  const out: WalkedEntry[] = [{ rel: Buffer.alloc(0), st: lstatSync(base, { bigint: true }) }];
  const stack: Buffer[] = [Buffer.alloc(0)];
  const slash = Buffer.from('/');
  while (stack.length > 0) {
    const rel = stack.pop()!;
    const abs = rel.length ? Buffer.concat([base, slash, rel]) : base;
    for (const name of readdirSync(abs, { encoding: 'buffer' })) {
      const r = rel.length ? Buffer.concat([rel, slash, name]) : name;
      const st = lstatSync(Buffer.concat([base, slash, r]), { bigint: true });
      out.push({ rel: r, st });
      if (st.isDirectory()) stack.push(r);
    }
  }
  return out;
}

/** What fcp should count in SRC: regular-file names, directories (root included), symlinks, others. */
export function countTree(root: string): { files: number; dirs: number; symlinks: number; specials: number } {
  const c = { files: 0, dirs: 0, symlinks: 0, specials: 0 };
  for (const { st } of walk(root)) {
    if (st.isFile()) c.files++;
    else if (st.isDirectory()) c.dirs++;
    else if (st.isSymbolicLink()) c.symlinks++;
    else c.specials++;
  }
  return c;
}

/**
 * The pure-Node fallback keeps times to about a microsecond: every entry of SRC must have
 * a DST twin whose mtime is within 1 µs. Returns the offenders (empty when all match).
 */
export function mtimeMismatchesMicro(src: string, dst: string): string[] {
  const bad: string[] = [];
  const slash = Buffer.from('/');
  for (const { rel, st } of walk(src)) {
    const d = rel.length ? Buffer.concat([Buffer.from(dst), slash, rel]) : Buffer.from(dst);
    let dt: BigIntStats;
    try {
      dt = lstatSync(d, { bigint: true });
    } catch {
      bad.push(`${rel.toString() || '.'}: missing in DST`);
      continue;
    }
    const diff = dt.mtimeNs - st.mtimeNs;
    if (diff <= -1000n || diff >= 1000n) bad.push(`${rel.toString() || '.'}: mtime ${st.mtimeNs} != ${dt.mtimeNs}`);
  }
  return bad;
}

/** Lines of fcp's stderr that report a failed entry: `fcp: cannot <op> '<path>': <cause> (<CODE>)`. */
export function entryErrors(stderr: string): { op: string; path: string; cause: string; code: string; line: string }[] {
  const out = [];
  for (const line of stderr.split('\n')) {
    const m = /^fcp: cannot (.+?) '(.*)': (.+) \(([A-Z0-9_]+)\)$/.exec(line);
    if (m) out.push({ op: m[1]!, path: m[2]!, cause: m[3]!, code: m[4]!, line });
  }
  return out;
}

/** Non-empty stderr lines. */
export const stderrLines = (s: string) => s.split('\n').filter((l) => l.length > 0);

/**
 * treecmp leaves out the roots' own mode and mtime; a copy must keep them too (cp -a).
 * Differences in type, permission bits, owner and mtime between two single entries
 * (mtime to `mtimeTolNs`, exact by default); for regular files also size and content.
 */
export function entryDiffs(src: string, dst: string, mtimeTolNs = 0n): string[] {
  const a = lstatSync(src, { bigint: true });
  let b: BigIntStats;
  try {
    b = lstatSync(dst, { bigint: true });
  } catch (err) {
    return [`${dst}: ${(err as Error).message}`];
  }
  const out: string[] = [];
  const typeOf = (s: BigIntStats) => (s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isFIFO() ? 'fifo' : 'other');
  if (typeOf(a) !== typeOf(b)) return [`type ${typeOf(a)} != ${typeOf(b)}`];
  if (!a.isSymbolicLink() && (a.mode & 0o7777n) !== (b.mode & 0o7777n)) out.push(`mode ${(a.mode & 0o7777n).toString(8)} != ${(b.mode & 0o7777n).toString(8)}`);
  if (isRoot && (a.uid !== b.uid || a.gid !== b.gid)) out.push(`owner ${a.uid}:${a.gid} != ${b.uid}:${b.gid}`);
  const d = b.mtimeNs - a.mtimeNs;
  if (d > mtimeTolNs || -d > mtimeTolNs) out.push(`mtime ${a.mtimeNs} != ${b.mtimeNs}`);
  if (a.isFile()) {
    if (a.size !== b.size) out.push(`size ${a.size} != ${b.size}`);
    else if (!readFileSync(src).equals(readFileSync(dst))) out.push('content differs');
  }
  return out;
}

/** stderr lines that report a failure (an entry, or the job itself); informational lines are not. */
export const failureLines = (s: string) => stderrLines(s).filter((l) => /^fcp: (cannot |internal error)/.test(l) || /^error:/.test(l));
