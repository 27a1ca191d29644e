/**
 * The paths a --files-from list has named so far (listed, or implied as the parent of a
 * listed path), so that each is walked once however often the list names or implies it.
 *
 * Rank 0 reads the list alone, so the set lives there, once, in a private temporary
 * SQLite database (`new Sqlite('')`: its pages spill to an unnamed temporary file past
 * SQLite's cache, so memory does not grow with a list of 100 million lines). A path is
 * keyed by 20 bytes of SHA-256 (see digest; paths can be 4 KiB; two paths collide by
 * chance with probability ~2^-96 at most). A small map in front answers for the parents
 * that consecutive lines share.
 */
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { Sqlite } from '../util/cjs-deps.js';

/** How a path was seen before: not at all, only as a parent of a listed path, or listed. */
export type Seen = 'new' | 'parent' | 'listed';

const RECENT = 8192;

/**
 * A path's key: 8 bytes of its directory's SHA-256, then 12 of its own. Names of one
 * directory sit together in the b-tree, so a list in walk order (as find writes it)
 * inserts into the same few pages instead of a random one per line.
 */
function digest(p: Buffer): Buffer {
  const slash = p.lastIndexOf(0x2f);
  const key = Buffer.allocUnsafe(20);
  createHash('sha256').update(slash < 0 ? Buffer.alloc(0) : p.subarray(0, slash)).digest().copy(key, 0, 0, 8);
  createHash('sha256').update(p).digest().copy(key, 8, 0, 12);
  return key;
}
/** Inserts per write transaction. */
const PER_TRANSACTION = 4096;

export class SeenPaths {
  private readonly db: Database.Database;
  private readonly qGet: Database.Statement;
  private readonly qPut: Database.Statement;
  private readonly qAdd: Database.Statement;
  private readonly recent = new Map<string, boolean>();
  private pending = 0;

  constructor() {
    this.db = new Sqlite('');
    // Scratch data: no journal.
    this.db.pragma('journal_mode = OFF');
    // 16 MiB of pages (a few hundred thousand paths); the rest goes to the temporary file.
    this.db.pragma('cache_size = -16384');
    this.db.exec('CREATE TABLE seen (h BLOB PRIMARY KEY, listed INTEGER NOT NULL) WITHOUT ROWID');
    this.qGet = this.db.prepare('SELECT listed FROM seen WHERE h = ?').pluck();
    this.qPut = this.db.prepare('UPDATE seen SET listed = 1 WHERE h = ?');
    this.qAdd = this.db.prepare('INSERT OR IGNORE INTO seen (h, listed) VALUES (?, ?)');
  }

  /** Record `p` as seen (listed, or as a parent); say how it had been seen before. */
  mark(p: Buffer, listed: boolean): Seen {
    const key = p.toString('latin1');
    let was: boolean | undefined = this.recent.get(key);
    if (was === undefined) {
      // Most paths are new: one insert says so; only a path seen before is looked up.
      const h = digest(p);
      if (this.write(() => this.qAdd.run(h, listed ? 1 : 0).changes) === 0) {
        was = (this.qGet.get(h) as number) === 1;
        if (listed && !was) this.write(() => this.qPut.run(h).changes);
      }
    } else if (listed && !was) {
      this.write(() => this.qPut.run(digest(p)).changes);
    }
    // Only directories leading to listed paths are kept: those are what the next lines share.
    if (!listed) {
      if (this.recent.size >= RECENT) this.recent.clear();
      this.recent.set(key, was === true);
    } else if (this.recent.has(key)) {
      this.recent.set(key, true);
    }
    return was === undefined ? 'new' : was ? 'listed' : 'parent';
  }

  /** One write, inside a transaction of up to PER_TRANSACTION writes. */
  private write(f: () => number): number {
    if (this.pending === 0) this.db.exec('BEGIN');
    const changes = f();
    if (++this.pending >= PER_TRANSACTION) this.commit();
    return changes;
  }

  private commit(): void {
    if (this.pending === 0) return;
    this.db.exec('COMMIT');
    this.pending = 0;
  }

  close(): void {
    this.commit();
    this.db.close();
  }
}
