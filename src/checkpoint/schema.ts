/**
 * The checkpoint's SQLite schema, shared by every rank's own database and by the merged
 * database a resume builds from them.
 *
 * - entries:  what the walk found (one row per source entry, keyed by root and path);
 *             in a rank's own file only the walk lists that spilled (walk-lists.ts)
 * - listings: (a rank's own file) what the walk found, one row per stat'ed batch of a
 *             directory's names (listing.ts); a merge expands them into `entries`
 * - complete: directories whose every child is in `entries` of the same database
 * - done:     finished work: off = -1 a whole file (copied, or finished and renamed),
 *             off >= 0 one chunk of a large file; with the source size and mtime it was
 *             copied from, so a resume recopies a file that changed since, and the
 *             xxhash-based digest of the bytes read (content digest, or a chunk's partial)
 * - done_batches: (a rank's own file) small files finished by one native copy batch, one
 *             row per batch (done-batch.ts); a merge expands them into `done`
 * - meta:     the job's description (roots, chunk size), to refuse resuming another job
 *
 * Every file records the schema's version (SQLite's user_version, see SCHEMA_VERSION): a
 * resume refuses a checkpoint of another version rather than misread it.
 *
 * Two shapes. A rank's own file is an append-only log: no unique keys and no secondary
 * indexes, and small files are recorded in batches (a directory's listing, a copy
 * batch's results), so recording costs one append per batch (keeping b-trees up to date,
 * or even one row, per small file cost more than copying it). merged.db, built by a
 * resume from those logs, has the keys and indexes its lookups need; merging in rowid
 * order lets later records win.
 */
import type Database from 'better-sqlite3';
import { Sqlite } from '../util/cjs-deps.js';

/**
 * The version of the schema below and of what its records mean (the packed listings and
 * done batches included): bump it with any change a reader of older files would misread.
 * Files written before versions were recorded hold user_version 0; their schema is
 * version 1's, so they read as 1.
 */
export const SCHEMA_VERSION = 1;

/** The schema version of a store file (0, unrecorded, reads as 1); null when it cannot be read. */
export function schemaVersionOf(path: string): number | null {
  try {
    const db = new Sqlite(path, { readonly: true, fileMustExist: true });
    try {
      return (db.pragma('user_version', { simple: true }) as number) || 1;
    } finally {
      db.close();
    }
  } catch {
    return null; // unreadable: the merge names it and skips it
  }
}

/** Columns of an entries row, in the order listing.ts entryRow gives them. */
export const ENTRY_COLUMNS = ['root', 'path', 'parent', 'kind', 'mode', 'uid', 'gid', 'size', 'nlink', 'dev', 'ino',
  'atime_s', 'atime_ns', 'mtime_s', 'mtime_ns', 'hkey', 'depth'];

/** merged.db: keyed and indexed for a resume's lookups. */
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

/** A rank's own file: the same columns, append-only. */
export const LOG_SCHEMA = `
CREATE TABLE IF NOT EXISTS entries (
  id INTEGER PRIMARY KEY, root INTEGER NOT NULL, path BLOB NOT NULL, parent BLOB, kind TEXT NOT NULL,
  mode INTEGER, uid INTEGER, gid INTEGER, size INTEGER, nlink INTEGER, dev REAL, ino REAL,
  atime_s INTEGER, atime_ns INTEGER, mtime_s INTEGER, mtime_ns INTEGER, hkey TEXT, depth INTEGER);
CREATE TABLE IF NOT EXISTS listings (root INTEGER NOT NULL, dir BLOB NOT NULL, names BLOB NOT NULL, stats BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS complete (root INTEGER NOT NULL, path BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS done (
  root INTEGER NOT NULL, path BLOB NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,
  size INTEGER NOT NULL, mtime_s INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, digest TEXT);
CREATE TABLE IF NOT EXISTS done_batches (rels BLOB NOT NULL, nums BLOB NOT NULL, status BLOB NOT NULL, digests BLOB);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
`;

/**
 * Open (or create) a checkpoint database. `shape` matters only when creating: 'merged'
 * (keyed, indexed) or 'log' (a rank's append-only file).
 */
export function openDb(path: string, readonly = false, shape: 'merged' | 'log' = 'merged'): Database.Database {
  const db = new Sqlite(path, { readonly, fileMustExist: readonly });
  if (readonly) return db;
  try {
    // One exec for the settings and the schema (each pragma call alone is a statement prepared and run).
    // A rank's log is appended in blobs of many rows (listings, done batches): in 64 KiB
    // pages it is some 16 times fewer WAL frames, each two writes, where the checkpoint
    // shares DST's file system and every write is a round trip (takes effect only when the
    // file is created).
    // WAL + NORMAL: a commit is durable against a process kill (what we must survive);
    // an OS crash may lose the last interval, which resume redoes.
    // Keep the WAL small: the checkpoint often shares the destination's file system
    // (autocheckpoint in pages: 1 MiB either way).
    db.exec(`${shape === 'log' ? 'PRAGMA page_size = 65536;' : ''}
      PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
      PRAGMA wal_autocheckpoint = ${shape === 'log' ? 16 : 256}; PRAGMA journal_size_limit = 1048576;
      ${shape === 'log' ? LOG_SCHEMA : SCHEMA}`);
    // A new file is stamped; so is a merged.db of before versions (the same schema: see SCHEMA_VERSION).
    if (db.pragma('user_version', { simple: true }) === 0) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
