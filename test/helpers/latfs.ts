/**
 * latfs mounts for tests: a FUSE passthrough that adds latency and injects faults (failed
 * opens and reads, ENOSPC after N bytes, hung requests); see ../shared/tools/latfs/README.md.
 *
 *   const m = await mountLatfs(backDir, ['--hang', 'src/dir/file*']);
 *   ... m.path('src') ...
 *   await m.unmount();      // in afterEach, also when the test failed
 *
 * Unmounting waits for latfs to be gone (its pidfile vanishes). A mount still busy (a
 * caller blocked in a hung request) is released by stopping latfs, which fails the hung
 * requests with EIO and unmounts itself.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run, sleep, toolsDir } from './run.js';

let binary: string | null = null;

/** Build latfs once (the build script caches the binary) and return its path. */
export async function latfsBinary(): Promise<string> {
  if (binary) return binary;
  const r = await run(join(toolsDir, 'latfs', 'build'), [], { timeoutMs: 300_000 });
  const path = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !existsSync(path)) throw new Error(`latfs did not build (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  binary = path;
  return path;
}

export interface LatfsMount {
  /** the mount point */
  readonly mnt: string;
  /** the directory it passes through to */
  readonly back: string;
  /** latfs's pid (SIGUSR1 makes it write its --stats file) */
  readonly pid: number;
  /** a path inside the mount */
  path(rel: string): string;
  /** Unmount and wait for latfs to exit; idempotent. */
  unmount(): Promise<void>;
  /** Unmount, then mount the same directory on the same mount point with other options. */
  remount(args?: string[]): Promise<LatfsMount>;
}

const mounted = new Set<LatfsMount>();

/** Mount `back` through latfs with `args` on a fresh mount point (prefix names it). */
export async function mountLatfs(back: string, args: string[] = [], prefix = 'latfs'): Promise<LatfsMount> {
  const base = mkdtempSync(join('/tmp', `${prefix}-`));
  mkdirSync(join(base, 'mnt'));
  return mountAt(base, back, args);
}

/**
 * Mount `back` again, with other options, on top of m's mount point while m stays mounted
 * beneath: paths through m.mnt reach the new mount from then on, without a moment
 * unmounted (a transient fault that goes away); descriptors opened before keep the old
 * one. Unmount it before m.
 */
export async function mountOver(m: LatfsMount, args: string[] = []): Promise<LatfsMount> {
  return mountAt(mkdtempSync(join('/tmp', 'latfs-over-')), m.back, args, m.mnt);
}

async function mountAt(base: string, back: string, args: string[], mnt = join(base, 'mnt')): Promise<LatfsMount> {
  const bin = await latfsBinary();
  mkdirSync(back, { recursive: true });
  const pidfile = join(base, 'pid');
  // Mounts stack (mountOver): this one is the depth-th at mnt, and is mounted while that many are.
  const depth = mountsAt(mnt) + 1;
  const isMounted = (p: string) => mountsAt(p) >= depth;
  const r = await run(bin, [...args, '--pidfile', pidfile, back, mnt], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`latfs did not mount (exit ${r.code}): ${r.stderr}`);
  const pid = await daemonReady(pidfile);
  let gone = false;
  const m: LatfsMount = {
    mnt,
    back,
    pid,
    path: (rel) => join(mnt, rel),
    async remount(again = []) {
      await unmountOnly();
      return mountAt(base, back, again, mnt);
    },
    async unmount() {
      // A mount already replaced by remount() is not this object's to clean up.
      if (gone) return;
      await unmountOnly();
      rmSync(base, { recursive: true, force: true });
    },
  };
  const unmountOnly = async () => {
    if (gone) return;
    gone = true;
    mounted.delete(m);
    // Busy while a caller still sits in a request: retry a little, then stop latfs.
    for (let i = 0; i < 20; i++) {
      const u = await run('fusermount3', ['-u', mnt], { timeoutMs: 10_000 });
      if (u.code === 0 || !isMounted(mnt)) break;
      await sleep(100);
    }
    if (isMounted(mnt)) {
      const pid = pidOf(pidfile);
      if (pid) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // exited meanwhile
        }
      }
    }
    const until = Date.now() + 15_000;
    while (existsSync(pidfile) && Date.now() < until) await sleep(50);
    if (existsSync(pidfile)) throw new Error(`latfs on ${mnt} did not exit`);
  };
  mounted.add(m);
  return m;
}

/**
 * latfs's counts now, from the --stats file `stats` it was mounted with: SIGUSR1 makes it
 * write the file; wait (up to 1 s) for it to change.
 */
export async function latfsStats<T = { faults: Record<string, number> }>(m: LatfsMount, stats: string): Promise<T> {
  const before = existsSync(stats) ? readFileSync(stats, 'utf8') : '';
  process.kill(m.pid, 'SIGUSR1');
  for (let i = 0; i < 40; i++) {
    await sleep(25);
    if (existsSync(stats) && readFileSync(stats, 'utf8') !== before) break;
  }
  return JSON.parse(readFileSync(stats, 'utf8')) as T;
}

/** Unmount whatever a test left mounted (call in afterEach). */
export async function unmountAll(): Promise<void> {
  for (const m of [...mounted]) await m.unmount();
}

/**
 * latfs's first process exits once the mount is up, before the daemon it forked has
 * written the pidfile and blocked SIGUSR1 for its stats thread (until then SIGUSR1 would
 * kill it). Wait for both: a loaded machine can delay the daemon by 100 ms and more.
 */
async function daemonReady(pidfile: string): Promise<number> {
  const until = Date.now() + 10_000;
  for (;;) {
    const pid = pidOf(pidfile);
    if (pid && takesSigusr1(pid)) return pid;
    if (Date.now() > until) throw new Error(`latfs wrote no pidfile ${pidfile}, or does not take SIGUSR1, within 10 s`);
    await sleep(10);
  }
}

/** Whether latfs's main thread has SIGUSR1 blocked: it blocks it before it starts the stats thread that sigwaits for it. */
function takesSigusr1(pid: number): boolean {
  const SIGUSR1_BIT = 1n << 9n; // signal 10
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const blk = /^SigBlk:\s*([0-9a-f]+)$/m.exec(status);
    return blk !== null && (BigInt(`0x${blk[1]}`) & SIGUSR1_BIT) !== 0n;
  } catch {
    return false;
  }
}

function pidOf(pidfile: string): number | null {
  try {
    const n = Number(readFileSync(pidfile, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

function mountsAt(mnt: string): number {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.split(' ')[1] === mnt).length;
}

/** Pids of processes whose command line mentions `s` (ranks of a job, found by a unique path). */
export function processesMentioning(s: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes(s)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
