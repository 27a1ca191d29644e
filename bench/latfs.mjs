// latfs mounts for the benchmarks: mount, snapshot the request counts, unmount,
// and never leave a mount behind.
//
// latfs (shared/tools/latfs) is a FUSE passthrough that sleeps in every request
// (one simulated parallel-file-system round trip) and counts the requests. Its
// stats JSON is written atomically on SIGUSR1 and once more at unmount, after
// which it removes its pidfile and exits: so "pidfile gone" means "final stats
// written".

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { toolsDir } from './lib.mjs';

/** Path of the latfs binary (its build script compiles once, caches, and prints the path). */
export function latfsBinary() {
  const build = path.join(toolsDir, 'latfs', 'build');
  if (!fs.existsSync(build)) throw new Error(`latfs not found: ${build} (set FCP_TOOLS_DIR)`);
  return execFileSync(build, [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop();
}

const sleepMs = (ms) => new Promise((r) => setTimeout(r, ms));

/** Mounts still up, so a crash or Ctrl-C can take them down (see cleanupAll). */
const live = new Set();

/**
 * Unmount every latfs mount this process made. Synchronous, so it can run
 * from an 'exit' handler; lazy (-z) as a last resort if a killed tool still
 * holds the mount busy.
 */
export function cleanupAll() {
  for (const m of live) {
    const r = m.fusermount(['-u', m.mnt], { stdio: 'ignore' });
    if (r.status !== 0) m.fusermount(['-u', '-z', m.mnt], { stdio: 'ignore' });
    live.delete(m);
  }
}

let hooked = false;
/** Unmount on exit, Ctrl-C and SIGTERM (once per process). */
function hookCleanup() {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      cleanupAll();
      process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 })[sig]);
    });
  }
}

/**
 * A latfs mount of `root` at `mnt`.
 *
 * opts: { bin, metaUs, dataUs, stats (file), pidfile, extra: [more latfs args] }.
 * mount() returns once the mount is up (latfs daemonizes only then).
 */
export class LatfsMount {
  constructor(root, mnt, opts) {
    this.root = root;
    this.mnt = mnt;
    this.opts = opts;
    this.pid = null;
  }

  mount() {
    hookCleanup();
    const { bin, metaUs, dataUs, stats, pidfile, extra = [] } = this.opts;
    fs.mkdirSync(this.mnt, { recursive: true });
    fs.rmSync(stats, { force: true });
    const args = ['--meta-us', String(metaUs), '--data-us', String(dataUs), '--stats', stats, '--pidfile', pidfile, ...extra, this.root, this.mnt];
    const r = this.spawnLatfs(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) throw new Error(`latfs ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`);
    live.add(this);
    // The pidfile can appear a moment after the mount (the daemon writes it).
    for (let i = 0; ; i++) {
      const txt = fs.existsSync(pidfile) ? fs.readFileSync(pidfile, 'utf8').trim() : '';
      if (txt) { this.pid = Number(txt); break; }
      if (i >= 5000) throw new Error(`latfs ${this.mnt}: no pidfile ${pidfile}`);
      spawnSync('sleep', ['0.002']);
    }
    return this;
  }

  /**
   * Run latfs (which daemonizes once mounted) and fusermount3, synchronously. Hooks for
   * a subclass that mounts in another mount namespace (bench/cluster-lab.mjs).
   */
  spawnLatfs(bin, args, opts) {
    return spawnSync(bin, args, opts);
  }

  fusermount(args, opts) {
    return spawnSync('fusermount3', args, opts);
  }

  /**
   * Snapshot of the counts so far: SIGUSR1, then wait until the stats file
   * is a new one (latfs writes it atomically, and uptime_s always advances).
   */
  async snapshot() {
    const before = readStats(this.opts.stats);
    process.kill(this.pid, 'SIGUSR1');
    for (let i = 0; i < 2000; i++) {
      const s = readStats(this.opts.stats);
      if (s && (!before || s.uptime_s !== before.uptime_s)) return s;
      await sleepMs(2);
    }
    throw new Error(`latfs ${this.mnt}: no stats after SIGUSR1`);
  }

  /**
   * Unmount and return the final stats. Retries while the mount is busy (a
   * tool's last releases can still be in flight right after it exits), then
   * waits for the pidfile to vanish: only then are the stats complete.
   */
  async unmount() {
    for (let i = 0; ; i++) {
      const r = this.fusermount(['-u', this.mnt], { encoding: 'utf8' });
      if (r.status === 0) break;
      if (i >= 100) throw new Error(`fusermount3 -u ${this.mnt}: ${r.stderr.trim()}`);
      await sleepMs(50);
    }
    live.delete(this);
    for (let i = 0; fs.existsSync(this.opts.pidfile); i++) {
      if (i >= 1200) throw new Error(`latfs ${this.mnt}: still running 60 s after unmount`);
      await sleepMs(50);
    }
    const s = readStats(this.opts.stats);
    if (!s || s.event === 'SIGUSR1') throw new Error(`latfs ${this.mnt}: no final stats in ${this.opts.stats}`);
    return s;
  }
}

/** The stats JSON, or null if the file is not there (yet). */
export function readStats(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') return null;
    throw e;
  }
}

/**
 * Request counts as a flat map: every request type of `ops` except forget
 * (which latfs leaves out of total_requests too: the kernel sends it when it
 * drops an inode, nobody waits for it), the setattr breakdown as
 * "setattr.chmod" etc., the getxattr of security.capability the kernel makes
 * before each write, and failed lookups ("lookup ENOENT": a name that is not
 * there yet, e.g. before a create). Plus total = total_requests and charged =
 * the requests latfs slept in.
 */
export function flatCounts(s) {
  // total_requests includes the getxattr(security.capability) the kernel makes before
  // writes, which latfs answers without a round trip unless --charge-seccap: "charged"
  // is what the run waited for.
  const seccap = s.config?.charge_seccap ? 0 : (s.getxattr_security_capability ?? 0);
  const out = { total: s.total_requests, charged: s.total_requests - seccap };
  for (const [k, v] of Object.entries(s.ops)) if (k !== 'forget') out[k] = v;
  for (const [k, v] of Object.entries(s.setattr ?? {})) out[`setattr.${k}`] = v;
  out['getxattr.security.capability'] = s.getxattr_security_capability ?? 0;
  out['lookup ENOENT'] = s.errors?.lookup ?? 0;
  return out;
}

/** a - b, key by key (for the counts between two snapshots). */
export function diffCounts(a, b) {
  const out = {};
  for (const k of Object.keys(a)) out[k] = a[k] - (b?.[k] ?? 0);
  return out;
}
