/**
 * What earlier runs did, as one rank of a resumed job sees it (read-only, from merged.db).
 *
 * The walk resumes by this rule: an entry found earlier is kept if its parent directory
 * was completely read; every kept (or root) directory not completely read is read again.
 * Re-reading records the children afresh, and the rule never keeps their old rows, so no
 * entry is held twice. Kept entries are shared among the new ranks by row id, whatever
 * the number of ranks before.
 */
import type Database from 'better-sqlite3';
import type { EntryMeta } from '../model/meta.js';
import type { Entry, Kind } from '../model/entry.js';
import { openDb } from './schema.js';

export interface EntryRow {
  root: number; path: Buffer; kind: Kind; mode: number; uid: number; gid: number; size: number; nlink: number;
  dev: number; ino: number; atime_s: number; atime_ns: number; mtime_s: number; mtime_ns: number; hkey: string | null;
}

export interface DoneRow { off: number; len: number; size: number; mtime_s: number; mtime_ns: number; digest: string | null }

export class ResumeState {
  private readonly db: Database.Database;
  private readonly qComplete: Database.Statement;
  private readonly qDone: Database.Statement;

  constructor(path: string, private readonly rank: number, private readonly size: number) {
    this.db = openDb(path, true);
    this.qComplete = this.db.prepare('SELECT 1 FROM complete WHERE root = ? AND path = ?').pluck();
    this.qDone = this.db.prepare('SELECT off, len, size, mtime_s, mtime_ns, digest FROM done WHERE root = ? AND path = ? ORDER BY off');
  }

  meta(k: string): string | undefined {
    return (this.db.prepare('SELECT v FROM meta WHERE k = ?').pluck().get(k) as string | undefined) ?? undefined;
  }

  isComplete(r: number, p: Buffer): boolean {
    return this.qComplete.get(r, p) !== undefined;
  }

  /** This rank's share of the kept entries (see the rule above), in parent order. */
  *keptEntries(): Generator<Entry> {
    const it = this.db.prepare(
      `SELECT root, path, kind, mode, uid, gid, size, nlink, dev, ino, atime_s, atime_ns, mtime_s, mtime_ns, hkey
         FROM entries e
        WHERE e.parent IS NOT NULL AND e.id % ? = ?
          AND EXISTS (SELECT 1 FROM complete c WHERE c.root = e.root AND c.path = e.parent)
        ORDER BY e.root, e.parent`).iterate(this.size, this.rank) as IterableIterator<EntryRow>;
    for (const row of it) yield entryFromRow(row);
  }

  /** Work recorded as done for this file, still valid for its current size and mtime. */
  doneFor(e: Entry): { whole: DoneRow | undefined; chunks: DoneRow[] } {
    const rows = (this.qDone.all(e.r, e.p) as DoneRow[]).filter((d) => d.size === e.m.size && d.mtime_s === e.m.mtime[0] && d.mtime_ns === e.m.mtime[1]);
    return { whole: rows.find((d) => d.off === -1), chunks: rows.filter((d) => d.off >= 0) };
  }

  get path(): string {
    return this.db.name;
  }

  close(): void {
    this.db.close();
  }
}

export function entryFromRow(row: EntryRow): Entry {
  const m: EntryMeta = {
    mode: row.mode, uid: row.uid, gid: row.gid, size: row.size, nlink: row.nlink, dev: row.dev, ino: row.ino,
    atime: [row.atime_s, row.atime_ns], mtime: [row.mtime_s, row.mtime_ns],
  };
  const e: Entry = { r: row.root, p: row.path, k: row.kind, m };
  if (row.hkey) e.h = row.hkey;
  return e;
}
