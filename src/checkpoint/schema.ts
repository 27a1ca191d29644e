/**
 * The checkpoint's SQLite schema, shared by every rank's own database and by the merged
 * database a resume builds from them.
 *
 * - entries:  what the walk found (one row per source entry, keyed by root and path)
 * - complete: directories whose every child is in `entries` of the same database
 * - done:     finished work: off = -1 a whole file (copied, or finished and renamed),
 *             off >= 0 one chunk of a large file; with the source size and mtime it was
 *             copied from, so a resume recopies a file that changed since, and the
 *             xxhash-based digest of the bytes read (content digest, or a chunk's partial)
 * - meta:     the job's description (roots, chunk size), to refuse resuming another job
 */
import Database from 'better-sqlite3';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS entries (
  id INTEGER PRIMARY KEY, root INTEGER NOT NULL, path BLOB NOT NULL, parent BLOB, kind TEXT NOT NULL,
  mode INTEGER, uid INTEGER, gid INTEGER, size INTEGER, nlink INTEGER, dev REAL, ino REAL,
  atime_s INTEGER, atime_ns INTEGER, mtime_s INTEGER, mtime_ns INTEGER, hkey TEXT, depth INTEGER,
  UNIQUE (root, path));
CREATE INDEX IF NOT EXISTS entries_parent ON entries (root, parent);
CREATE TABLE IF NOT EXISTS complete (root INTEGER NOT NULL, path BLOB NOT NULL, PRIMARY KEY (root, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS done (
  root INTEGER NOT NULL, path BLOB NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,
  size INTEGER NOT NULL, mtime_s INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, digest TEXT,
  PRIMARY KEY (root, path, off)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
`;

export function openDb(path: string, readonly = false): Database.Database {
  const db = new Database(path, { readonly, fileMustExist: readonly });
  if (!readonly) {
    // WAL + NORMAL: a commit is durable against a process kill (what we must survive);
    // an OS crash may lose the last interval, which resume redoes.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // Keep the WAL small: the checkpoint often shares the destination's file system.
    db.pragma('wal_autocheckpoint = 256');
    db.pragma('journal_size_limit = 1048576');
    db.exec(SCHEMA);
  }
  return db;
}
