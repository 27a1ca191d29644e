/**
 * Where a job's checkpoint lives and who owns it.
 *
 * Layout of the checkpoint directory (default: hidden beside DST, `--checkpoint-dir`):
 *   lock            the running job: {host, pid, started}; its mtime is touched every interval
 *   g<G>-r<R>.db    rank R's records of run (generation) G
 *   merged.db       everything earlier runs recorded, merged by the resume that followed them
 *   reserve-r<R>    space rank R keeps for its records on a full disk (see reserve.ts)
 *
 * Every rank of any later run can read every file, whatever the rank counts were: a
 * resume merges all earlier files into merged.db first, and ranks then share its rows.
 */
import { mkdirpSync } from '../util/mkdirp.js';
import { userMode } from '../util/umask.js';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync, renameSync } from 'node:fs';
import { removeFile, removeFlatDir } from '../util/remove.js';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Root } from '../model/entry.js';
import { ENTRY_COLUMNS, openDb } from './schema.js';
import { listingDoneRows, listingRows } from './listing.js';
import { doneRows } from './done-batch.js';

export function defaultCheckpointDir(dstArg: string, roots: Root[]): string {
  const h = createHash('sha256');
  for (const r of roots) h.update(r.src).update('\0').update(r.dst).update('\0');
  return join(dirname(resolve(dstArg)), `.fcp-checkpoint-${h.digest('hex').slice(0, 16)}`);
}

/** The roots, as the checkpoint's identity: a resume of another job is refused. */
export function describeRoots(roots: Root[]): string {
  return JSON.stringify(roots.map((r) => [r.src.toString('hex'), r.dst.toString('hex')]));
}

interface LockInfo { host: string; pid: number; started: string }

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process stays a zombie until its parent reaps it: that is not a live job.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

export class CheckpointDir {
  /**
   * lock() took over a stale lock: a job died here without ending (kill -9, a lost node),
   * possibly before any rank wrote its database (they are created by their first flush).
   */
  tookOverStaleLock = false;
  /** lock() created the directory: nothing is in it (no lock to check, no earlier files to list). */
  private fresh = false;

  constructor(readonly dir: string, private readonly staleAfterMs: number) {}

  private get lockPath(): string {
    return join(this.dir, 'lock');
  }

  /** Rank files and merged.db of earlier runs. */
  earlierFiles(): { ranks: string[]; merged: string | null; maxGen: number } {
    // (each call a round trip or more where the checkpoint lives on a parallel file system)
    if (this.fresh || !existsSync(this.dir)) return { ranks: [], merged: null, maxGen: 0 };
    const ranks: string[] = [];
    let maxGen = 0;
    for (const name of readdirSync(this.dir)) {
      const m = /^g(\d+)-r(\d+)\.db$/.exec(name);
      if (m) {
        ranks.push(join(this.dir, name));
        maxGen = Math.max(maxGen, Number(m[1]));
      }
    }
    const merged = join(this.dir, 'merged.db');
    return { ranks, merged: existsSync(merged) ? merged : null, maxGen };
  }

  hasProgress(): boolean {
    const f = this.earlierFiles();
    return f.ranks.length > 0 || f.merged !== null;
  }

  /**
   * Take the lock, or say why not. A lock held by a live process (same host), or touched
   * recently (another host), belongs to a running job; anything else is stale and taken over.
   */
  lock(): string | null {
    this.fresh = mkdirpSync(this.dir, 0o700);
    if (!this.fresh && existsSync(this.lockPath)) {
      let info: LockInfo | null = null;
      try {
        info = JSON.parse(readFileSync(this.lockPath, 'utf8')) as LockInfo;
      } catch {
        info = null;
      }
      const age = Date.now() - statSync(this.lockPath).mtimeMs;
      const alive = info && (info.host === hostname() ? pidAlive(info.pid) && age < 10 * this.staleAfterMs : age < this.staleAfterMs);
      if (alive && info) return `another fcp (pid ${info.pid} on ${info.host}, started ${info.started}) is copying to this destination (checkpoint ${this.dir})`;
      this.tookOverStaleLock = true;
    }
    const tmp = `${this.lockPath}.${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ host: hostname(), pid: process.pid, started: new Date().toISOString() } satisfies LockInfo), { mode: userMode(0o666) });
    renameSync(tmp, this.lockPath);
    return null;
  }

  touchLock(): void {
    try {
      const now = new Date();
      utimesSync(this.lockPath, now, now);
    } catch {
      // the directory was removed under us; nothing to keep alive
    }
  }

  unlock(): void {
    removeFile(this.lockPath);
  }

  /**
   * Fold every earlier run's rank files into merged.db (later runs override earlier
   * ones), then delete them. Crash-safe: rows are keyed, so merging the same file twice
   * changes nothing, and a file is deleted only after the merge committed.
   */
  merge(): string {
    const { ranks } = this.earlierFiles();
    const mergedPath = join(this.dir, 'merged.db');
    const db = openDb(mergedPath);
    const gen = (f: string) => Number(/g(\d+)-r/.exec(f)![1]);
    for (const f of ranks.sort((a, b) => gen(a) - gen(b))) {
      // A rank killed while creating its file leaves it without tables, and a damaged
      // file cannot be read: either holds nothing usable, and skipping it only means that
      // rank's work is done again.
      let attached = false;
      try {
        db.prepare('ATTACH DATABASE ? AS old').run(f);
        attached = true;
        const tables = new Set(db.prepare("SELECT name FROM old.sqlite_master WHERE type = 'table'").pluck().all() as string[]);
        if (['entries', 'complete', 'done', 'meta'].every((t) => tables.has(t))) {
          const cols = ENTRY_COLUMNS.join(', ');
          const insertEntry = db.prepare(`INSERT OR REPLACE INTO entries (${cols}) VALUES (${ENTRY_COLUMNS.map(() => '?').join(', ')})`);
          const insertDone = db.prepare('INSERT OR REPLACE INTO done (root, path, off, len, size, mtime_s, mtime_ns, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
          // Listings and done batches are expanded here, row by row; read through a
          // connection of their own (this one is busy inserting while they are iterated).
          const rd = tables.has('listings') || tables.has('done_batches') ? openDb(f, true) : null;
          try {
            db.transaction(() => {
              db.exec(`INSERT OR REPLACE INTO entries (${cols}) SELECT ${cols} FROM old.entries ORDER BY rowid`);
              if (rd && tables.has('listings')) {
                const it = rd.prepare('SELECT root, dir, names, stats FROM listings ORDER BY rowid').iterate() as IterableIterator<{ root: number; dir: Buffer; names: Buffer; stats: Buffer }>;
                for (const l of it) {
                  for (const row of listingRows(l.root, l.dir, l.names, l.stats)) insertEntry.run(row);
                  for (const row of listingDoneRows(l.root, l.dir, l.names, l.stats)) insertDone.run(row);
                }
              }
              db.exec(`INSERT OR IGNORE INTO complete SELECT root, path FROM old.complete;
                       INSERT OR REPLACE INTO done SELECT root, path, off, len, size, mtime_s, mtime_ns, digest FROM old.done ORDER BY rowid;
                       INSERT OR REPLACE INTO meta SELECT k, v FROM old.meta;`);
              if (rd && tables.has('done_batches')) {
                const it = rd.prepare('SELECT rels, nums, status, digests FROM done_batches ORDER BY rowid').iterate() as IterableIterator<{ rels: Buffer; nums: Buffer; status: Buffer; digests: Buffer | null }>;
                for (const b of it) for (const row of doneRows(b.rels, b.nums, b.status, b.digests)) insertDone.run(row);
              }
            })();
          } finally {
            rd?.close();
          }
        }
      } catch (err) {
        process.stderr.write(`fcp: ignoring unreadable checkpoint file ${f} (${(err as Error).message}); its work will be done again\n`);
      } finally {
        if (attached) db.exec('DETACH DATABASE old');
      }
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    for (const f of ranks) for (const suffix of ['', '-wal', '-shm']) removeFile(f + suffix);
    return mergedPath;
  }

  rankFile(gen: number, rank: number): string {
    return join(this.dir, `g${gen}-r${rank}.db`);
  }

  remove(): void {
    // After a short job only the lock is left (each rank removed its reserve, no database was made).
    removeFlatDir(this.dir, ['lock']);
  }
}

/** Does `dir` hold a checkpoint of a copy of exactly these roots? */
export function checkpointMatches(dir: string, roots: Root[]): boolean {
  const cd = new CheckpointDir(dir, 0);
  const { ranks, merged } = cd.earlierFiles();
  const want = describeRoots(roots);
  for (const f of merged ? [merged, ...ranks] : ranks) {
    try {
      const db = openDb(f, true);
      const v = db.prepare("SELECT v FROM meta WHERE k = 'roots'").pluck().get();
      db.close();
      if (v === want) return true;
    } catch {
      // unreadable or still empty: look at the next
    }
  }
  return false;
}
