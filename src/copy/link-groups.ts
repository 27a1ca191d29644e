/**
 * The hard-link groups one rank owns (see hardlinks.ts): every name of each group, from
 * whichever rank found it, and later the primaries' content digests.
 *
 * In a private temporary SQLite database (`new Sqlite('')`): SQLite keeps its pages in
 * its cache and spills them to an unnamed temporary file past it, so an owner's memory
 * does not grow with the number of links it owns. The file is deleted when the
 * database is closed, or with the process.
 */
import type Database from 'better-sqlite3';
import { Sqlite } from '../util/cjs-deps.js';

/** One name of a group, as its rank sends it to the owner. */
export type NameRec = [key: string, root: number, path: Buffer, size: number];
/** A secondary name for the rank that found it, with its primary's root and path. */
export type SecondaryRec = [root: number, path: Buffer, size: number, proot: number, ppath: Buffer];
/** A primary with other names, for the rank that found it: its content digest will be needed. */
export type PrimaryRec = [root: number, path: Buffer];
/** What the owner tells a rank about one of its names in a group of several. */
export type RoleRec = SecondaryRec | PrimaryRec;
/** A primary's content digest (hex) for its group's owner. */
export type ContentRec = [key: string, digest: string];

/** Rows per write transaction when buffering is ours to choose. */
const BATCH = 512;

export class LinkGroups {
  /** Made on the first name: most jobs have no hard links, and need no table (nor SQLite). */
  private tables: { db: Database.Database; insName: Database.Statement; insContent: Database.Statement } | null = null;
  private sealed = false;

  private open(): NonNullable<LinkGroups['tables']> {
    if (this.tables) return this.tables;
    const db = new Sqlite('');
    // Scratch data, rebuilt by every run: no journal needed.
    db.pragma('journal_mode = OFF');
    // Clustered by key, then (root, path) in BLOB order, which is memcmp order, which is
    // Buffer.compare order: a group's first row is its primary, and a name sent twice
    // is kept once.
    db.exec(`
      CREATE TABLE names (key TEXT NOT NULL, root INTEGER NOT NULL, path BLOB NOT NULL, size INTEGER NOT NULL, src INTEGER NOT NULL,
        PRIMARY KEY (key, root, path)) WITHOUT ROWID;
      CREATE TABLE prim (key TEXT PRIMARY KEY, root INTEGER NOT NULL, path BLOB NOT NULL, names INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE content (key TEXT PRIMARY KEY, digest TEXT NOT NULL) WITHOUT ROWID;`);
    this.tables = {
      db,
      insName: db.prepare('INSERT OR IGNORE INTO names (key, root, path, size, src) VALUES (?, ?, ?, ?, ?)'),
      insContent: db.prepare('INSERT OR REPLACE INTO content (key, digest) VALUES (?, ?)'),
    };
    return this.tables;
  }

  /** Names found by rank `src`. */
  addNames(src: number, recs: NameRec[]): void {
    if (recs.length === 0) return;
    const { db, insName } = this.open();
    db.transaction(() => {
      for (const [key, root, path, size] of recs) insName.run(key, root, path, size, src);
    })();
  }

  /** Every name is in: each group's primary is its smallest (root, path). */
  seal(): void {
    this.tables?.db.exec(`INSERT INTO prim (key, root, path, names)
      SELECT key, root, path, (SELECT count(*) FROM names m WHERE m.key = n.key) FROM names n
      WHERE NOT EXISTS (SELECT 1 FROM names m WHERE m.key = n.key AND (m.root, m.path) < (n.root, n.path))`);
    this.sealed = true;
  }

  /**
   * Lazily, for the rank that found each: the names of groups of several names, each a
   * secondary (with its primary) or the primary. A group of one name (a file whose other
   * names are outside the copy) is a plain file: nothing is sent.
   */
  *roles(): Generator<[src: number, rec: RoleRec]> {
    if (!this.sealed) throw new Error('LinkGroups.roles before seal');
    if (!this.tables) return;
    const rows = this.tables.db.prepare(`SELECT n.src, n.root, n.path, n.size, p.root AS proot, p.path AS ppath, (n.root = p.root AND n.path = p.path) AS isPrimary
      FROM names n JOIN prim p ON p.key = n.key WHERE p.names > 1`).raw()
      .iterate() as IterableIterator<[number, number, Buffer, number, number, Buffer, number]>;
    for (const [src, root, path, size, proot, ppath, isPrimary] of rows) yield [src, isPrimary ? [root, path] : [root, path, size, proot, ppath]];
  }

  /** Primaries' content digests, from the ranks that copied them. */
  addContent(recs: ContentRec[]): void {
    if (recs.length === 0) return;
    const { db, insContent } = this.open();
    for (let i = 0; i < recs.length; i += BATCH) {
      db.transaction(() => {
        for (const [key, digest] of recs.slice(i, i + BATCH)) insContent.run(key, digest);
      })();
    }
  }

  /** Lazily: each secondary name with its primary's content digest (hex; null: unknown). */
  *secondaryContent(): Generator<{ root: number; path: Buffer; size: number; digest: string | null }> {
    if (!this.tables) return;
    yield* this.tables.db.prepare(`SELECT n.root, n.path, n.size, c.digest FROM names n JOIN prim p ON p.key = n.key
      LEFT JOIN content c ON c.key = n.key WHERE NOT (n.root = p.root AND n.path = p.path)`)
      .iterate() as IterableIterator<{ root: number; path: Buffer; size: number; digest: string | null }>;
  }

  close(): void {
    if (this.tables?.db.open) this.tables.db.close();
  }
}
