/**
 * One rank's checkpoint writer. Progress is buffered in memory and written in one
 * transaction per interval (and on stop), so a kill loses at most one interval of
 * records, and a record is only ever written after the work it describes is done.
 *
 * Records are appended in the order the work happened: a directory is marked complete
 * only after the entries of its children were appended, so a committed "complete" row
 * implies its children's rows are committed too.
 *
 * Records of finished work (done rows and batches) say the copy in DST is complete, so
 * with a data sync they are committed only after a sync that started after they were
 * buffered has returned (see copy/data-sync.ts): the periodic commit takes the buffered
 * done records, awaits the sync, then writes them. A synchronous flush (a stop, a full
 * buffer of walk records) writes only done records a sync already covered; the others
 * are dropped at close, and a resume redoes that work.
 *
 * The file is created by the first flush (the first interval's commit, a full buffer, a
 * stop), not when the store is made: a job shorter than one interval that ends well never
 * creates it, nor loads SQLite (see finish). A kill before that first flush loses what a
 * kill before the first commit always lost, at most one interval's records.
 */
import type Database from 'better-sqlite3';
import type { Entry } from '../model/entry.js';
import { dirName } from '../model/paths.js';
import { entryFromRow, type EntryRow } from './resume-state.js';
import { entryRow, listingEntries, listingPacked, statBytes } from './listing.js';
import type { FileRun } from '../model/file-run.js';
import { ENTRY_COLUMNS, openDb } from './schema.js';
import { RowBuffer, type Taken } from './row-buffer.js';

/** One row of the listings table as stored. */
type ListingRow = { root: number; dir: Buffer; names: Buffer; stats: Buffer };

/**
 * Buffered rows past which a flush happens at once, unless the store is given another
 * bound: the buffer, too, must not grow with the tree. A job's rank store gets a larger
 * one from --mem-limit (cli/mem-budget.ts): a job shorter than one interval whose ranks
 * each copy fewer files than that then never opens SQLite at all.
 */
export const FLUSH_ROWS = 8192;

export class RankStore {
  /** null until the first flush creates the file (see the header) */
  private db: Database.Database | null = null;
  /** meta rows not written yet: they go in the next transaction, before the records that rely on them */
  private readonly meta = new Map<string, string>();
  /** The end of a job (finish): a file not created yet stays so until close says whether it is kept. */
  private hold = false;
  private readonly entries: RowBuffer;
  private readonly listings: RowBuffer;
  /** entries held by the buffered listings (they count toward flushRows like rows) */
  private listed = 0;
  private readonly complete: RowBuffer;
  private readonly done: RowBuffer;
  private readonly doneBatches: RowBuffer;
  /** files held by the buffered done batches */
  private batched = 0;
  /** Done records a completed sync covers, waiting for the next transaction. */
  private synced: { dn: Taken; db: Taken }[] = [];
  /** The commit (sync, then write) under way, and the one queued behind it. */
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  /** The next commit syncs even without done records (the end of a job: everything written is made durable). */
  private syncAlways = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Set when a write failed (a full disk beside DST): nothing more is recorded. */
  broken: Error | null = null;
  /** Told once, when writing fails. */
  onBroken: (err: Error) => void = () => {};
  /** The disk is full: free reserved space if any (true: worth writing again). */
  onFull: () => boolean = () => false;
  /** Told when a data sync failed: the done records it should have covered are dropped. */
  onSyncFailed: (err: Error) => void = () => {};

  /**
   * `syncData` makes durable everything written before it is called (null: --no-sync,
   * done records are committed like any other).
   */
  constructor(readonly path: string, private readonly syncData: (() => Promise<void>) | null = null, private readonly flushRows = FLUSH_ROWS) {
    const db = () => this.db!;
    this.entries = new RowBuffer(db, 'entries', ENTRY_COLUMNS);
    this.listings = new RowBuffer(db, 'listings', ['root', 'dir', 'names', 'stats']);
    this.complete = new RowBuffer(db, 'complete', ['root', 'path']);
    this.done = new RowBuffer(db, 'done', ['root', 'path', 'off', 'len', 'size', 'mtime_s', 'mtime_ns', 'digest']);
    this.doneBatches = new RowBuffer(db, 'done_batches', ['rels', 'nums', 'status', 'digests']);
  }

  /** A fact about the job (roots, chunk size), written with the next records: any file that has records has it. */
  setMeta(k: string, v: string): void {
    if (this.broken) return;
    this.meta.set(k, v);
  }

  /**
   * Put the job's facts (the chunk size above all) in the file now, creating it if the first
   * flush has not: when it does not exist yet, or when facts set since the last flush are
   * only buffered. Called before fcp leaves in DST something a resume must find and treat the
   * same way: a large file's part file is named after its destination and cut with the
   * recorded chunk size; without it on record a resume would choose the chunk size afresh,
   * might copy that file whole, and leave the part file behind. (A file created early, by a
   * walk's full buffer or the first interval, holds no chunk size until the next flush.)
   */
  ensureFacts(): void {
    if (!this.db || this.meta.size > 0) this.flush();
  }

  /** One entry as a row of its own (the walk lists, once they spill: see walk-lists.ts). */
  entry(e: Entry): void {
    if (this.broken) return;
    this.entries.next().push(...entryRow(e));
    if (this.entries.rows >= this.flushRows) this.flush();
  }

  /**
   * What the walk found in one batch of a directory's names (see listing.ts): `names`
   * packed NUL-terminated, `stats` their stat records. Neither may change afterwards.
   */
  listing(r: number, dir: Buffer, names: Buffer, stats: Float64Array, count: number): void {
    if (this.broken) return;
    this.listings.next().push(r, dir, names, statBytes(stats));
    this.listed += count;
    if (this.listed >= this.flushRows) this.flush();
  }

  /**
   * Entries recorded here, read back lazily (the walk lists once they spill). A second,
   * read-only connection: the writer stays free to record progress while a phase iterates.
   */
  *read(where: string, orderBy = 'id'): Generator<Entry> {
    this.flush();
    // The log has no indexes (appends stay cheap); the bottom-up pass reads directories
    // one depth at a time, so it gets one, built once when first needed.
    if (/\bdepth\b/.test(where) && !this.broken) {
      try {
        this.db?.exec('CREATE INDEX IF NOT EXISTS entries_dirs ON entries (kind, depth)');
      } catch {
        // without it the reads are scans: slower, still right
      }
    }
    const rd = openDb(this.path, true);
    try {
      const it = rd.prepare(`SELECT root, path, kind, mode, uid, gid, size, nlink, dev, ino, atime_s, atime_ns, mtime_s, mtime_ns, hkey FROM entries WHERE ${where} ORDER BY ${orderBy}`).iterate() as IterableIterator<EntryRow>;
      for (const row of it) yield entryFromRow(row);
    } finally {
      rd.close();
    }
  }

  /**
   * Every entry recorded in listings here (after a flush), lazily, in the order recorded;
   * not the files the walk found up to date (this run's lists: they need no work).
   */
  *readListed(): Generator<Entry> {
    for (const l of this.listingRows()) yield* listingEntries(l.root, l.dir, l.names, l.stats, 'skip');
  }

  /** readListed's entries, with each listing's plain files as one packed run (see listingPacked). */
  *readListedPacked(): Generator<FileRun | Entry> {
    for (const l of this.listingRows()) yield* listingPacked(l.root, l.dir, l.names, l.stats);
  }

  /** The listing rows recorded here (after a flush), in the order recorded, through a read-only connection closed when iteration ends. */
  private *listingRows(): Generator<ListingRow> {
    this.flush();
    const rd = openDb(this.path, true);
    try {
      yield* rd.prepare('SELECT root, dir, names, stats FROM listings ORDER BY rowid').iterate() as IterableIterator<ListingRow>;
    } finally {
      rd.close();
    }
  }

  dirComplete(r: number, p: Buffer): void {
    if (this.broken) return;
    this.complete.next().push(r, p);
  }

  /** A whole file (off -1) or one chunk, copied from a source of this size and mtime, with the digest of what was read (hex) when hashing. */
  doneWork(e: Entry, off: number, len: number, digest: string | null = null): void {
    if (this.broken) return;
    this.done.next().push(e.r, e.p, off, len, e.m.size, e.m.mtime[0], e.m.mtime[1], digest);
    if (this.done.rows >= this.flushRows) this.commitDone();
  }

  /**
   * Small files finished by one native copy batch, as one row (see done-batch.ts): the
   * batch's packed relative paths, numbers, status and digests (null without hashing).
   * None of them may change afterwards.
   */
  doneBatch(rels: Buffer, nums: Float64Array, status: Float64Array, digests: Buffer | null, files: number): void {
    if (this.broken) return;
    this.doneBatches.next().push(rels, statBytes(nums), statBytes(status), digests);
    this.batched += files;
    if (this.batched >= this.flushRows) this.commitDone();
  }

  /** A full buffer of done records: without a data sync written now, else by a commit. */
  private commitDone(): void {
    if (this.syncData) void this.commit();
    else this.flush();
  }

  /**
   * Write what is buffered in one transaction: walk records, and done records only when
   * there is no data sync or a sync covered them. A failed write (no space left where the
   * checkpoint lives) does not stop the copy: recording stops, once, with a message.
   */
  flush(): void {
    if (this.closed || this.broken) return;
    if (!this.syncData && (this.done.rows > 0 || this.doneBatches.rows > 0)) {
      this.synced.push({ dn: this.done.take(), db: this.doneBatches.take() });
      this.batched = 0;
    }
    if (this.hold && !this.db) return;
    const empty = this.entries.rows === 0 && this.listings.rows === 0 && this.complete.rows === 0 && this.synced.length === 0;
    if (empty && this.meta.size === 0 && this.db) return;
    // Order matters (see the header): meta and entries before the records that rely on them.
    const meta = [...this.meta];
    this.meta.clear();
    const [en, li, co] = [this.entries.take(), this.listings.take(), this.complete.take()];
    const synced = this.synced;
    this.synced = [];
    this.listed = 0;
    const write = () => {
      const db = (this.db ??= openDb(this.path, false, 'log'));
      if (empty && meta.length === 0) return;
      db.transaction(() => {
        if (meta.length > 0) {
          const st = db.prepare('INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)');
          for (const [k, v] of meta) st.run(k, v);
        }
        this.entries.write(en);
        this.listings.write(li);
        this.complete.write(co);
        for (const { dn, db: batches } of synced) {
          this.done.write(dn);
          this.doneBatches.write(batches);
        }
      })();
    };
    try {
      try {
        write();
      } catch (err) {
        // The checkpoint shares a full disk with DST: its reserve (see checkpoint/reserve.ts)
        // makes room for what is recorded, once; also when the file could not be created.
        if (((err as { code?: string }).code !== 'SQLITE_FULL' && this.db) || !this.onFull()) throw err;
        write();
      }
    } catch (err) {
      this.broken = err instanceof Error ? err : new Error(String(err));
      this.onBroken(this.broken);
    }
  }

  /**
   * Sync the data, then commit every record buffered when this was called. Resolves when
   * they are written (or dropped: the sync failed, see onSyncFailed); never rejects. One
   * commit runs at a time; calls meanwhile share the one queued behind it. `syncAlways`:
   * sync even when no done records wait (the end of a job).
   */
  commit(syncAlways = false): Promise<void> {
    this.syncAlways ||= syncAlways;
    if (!this.running) return this.startCommit();
    this.queued ??= this.running.then(() => {
      this.queued = null;
      return this.startCommit();
    });
    return this.queued;
  }

  private startCommit(): Promise<void> {
    const p = this.syncThenWrite().finally(() => {
      if (this.running === p) this.running = null;
    });
    this.running = p;
    return p;
  }

  private async syncThenWrite(): Promise<void> {
    if (this.closed || this.broken) return;
    const always = this.syncAlways;
    this.syncAlways = false;
    if (this.syncData && (always || this.done.rows > 0 || this.doneBatches.rows > 0)) {
      // Taken before the sync starts: the sync covers the work these records describe.
      const taken = { dn: this.done.take(), db: this.doneBatches.take() };
      this.batched = 0;
      try {
        await this.syncData();
        this.synced.push(taken);
      } catch (err) {
        this.onSyncFailed(err instanceof Error ? err : new Error(String(err)));
      }
    }
    this.flush();
  }

  /**
   * The end of a job: sync, then write the records the sync covered, as commit(true) does,
   * but only into a file that exists already. A job that never flushed (shorter than one
   * interval) holds them instead, and close(keep) writes them only if the checkpoint is kept:
   * a finished job that removes its checkpoint never creates the file nor loads SQLite.
   */
  async finish(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.hold = true;
    await this.commit(true);
  }

  /** Commit every `intervalMs` until closed (an interval whose commit still runs is skipped). */
  startInterval(intervalMs: number): void {
    this.timer = setInterval(() => {
      if (!this.running) void this.commit();
    }, intervalMs);
    this.timer.unref();
  }

  /**
   * Write what can be written now (done records no sync covered are dropped) and close.
   * `keep` false: the file is about to be removed (a finished job, a scratch store), so
   * nothing more is written to it.
   */
  close(keep = true): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.hold = false;
    if (keep) this.flush();
    this.closed = true;
    try {
      this.db?.close();
    } catch {
      // a full disk may refuse the final WAL checkpoint; the records are in the WAL
    }
  }
}

/** Parent of a root-relative path: '' for a top-level name. */
export function parentOf(p: Buffer): Buffer {
  const i = p.lastIndexOf(0x2f);
  return i < 0 ? Buffer.alloc(0) : p.subarray(0, i);
}

export { dirName };
