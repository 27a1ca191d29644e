/**
 * One rank's side of the hard-link plan (see hardlinks.ts): the role of each hard-linked
 * name it found in a group of several names (a secondary, linked to its primary's copy
 * instead of copied, or the primary), and the content digests of the primaries it read
 * (their groups' owners need them for the signature).
 *
 * In a private temporary SQLite database, like the owners' tables (link-groups.ts): the
 * copy asks for a hard-linked file's role with one point query on the primary key, and
 * the links phase reads the secondaries lazily, so memory does not grow with them.
 */
import type Database from 'better-sqlite3';
import { Sqlite } from '../util/cjs-deps.js';
import type { ContentRec, RoleRec } from './link-groups.js';

/** Content digests buffered before one write transaction. */
const BUFFERED = 1024;

export interface Secondary {
  r: number;
  p: Buffer;
  /** the group's primary, whose copy this name becomes a link to */
  primary: { r: number; p: Buffer };
}

/** A name's part in its group; null: a group of one name here (its other names are outside the copy). */
export type Role = 'primary' | 'secondary' | null;

export class LinkNames {
  /** Made on the first role or digest: most jobs have no hard links, and need no table (nor SQLite). */
  private tables: { db: Database.Database; insRole: Database.Statement; getRole: Database.Statement; insContent: Database.Statement } | null = null;
  private roles = 0;
  private buffered: ContentRec[] = [];

  private open(): NonNullable<LinkNames['tables']> {
    if (this.tables) return this.tables;
    const db = new Sqlite('');
    db.pragma('journal_mode = OFF');
    // A primary's row has no size and no primary (proot, ppath NULL).
    db.exec(`
      CREATE TABLE roles (root INTEGER NOT NULL, path BLOB NOT NULL, size INTEGER, proot INTEGER, ppath BLOB,
        PRIMARY KEY (root, path)) WITHOUT ROWID;
      CREATE TABLE content (key TEXT NOT NULL, digest TEXT NOT NULL);`);
    this.tables = {
      db,
      insRole: db.prepare('INSERT OR IGNORE INTO roles (root, path, size, proot, ppath) VALUES (?, ?, ?, ?, ?)'),
      getRole: db.prepare('SELECT proot IS NOT NULL AS secondary FROM roles WHERE root = ? AND path = ?'),
      insContent: db.prepare('INSERT INTO content (key, digest) VALUES (?, ?)'),
    };
    return this.tables;
  }

  /** From the groups' owners: which of this rank's names are secondaries, which primaries. */
  addRoles(recs: RoleRec[]): void {
    if (recs.length === 0) return;
    const { db, insRole } = this.open();
    db.transaction(() => {
      for (const rec of recs) {
        const [root, path, size = null, proot = null, ppath = null] = rec;
        this.roles += insRole.run(root, path, size, proot, ppath).changes;
      }
    })();
  }

  role(r: number, p: Buffer): Role {
    if (this.roles === 0) return null;
    const row = this.open().getRole.get(r, p) as { secondary: number } | undefined;
    return row === undefined ? null : row.secondary ? 'secondary' : 'primary';
  }

  /** Lazily, for the links phase. */
  *secondaries(): Generator<Secondary> {
    if (this.roles === 0) return;
    const rows = this.open().db.prepare('SELECT root, path, proot, ppath FROM roles WHERE proot IS NOT NULL').raw()
      .iterate() as IterableIterator<[number, Buffer, number, Buffer]>;
    for (const [r, p, pr, pp] of rows) yield { r, p, primary: { r: pr, p: pp } };
  }

  /** Data bytes of the secondaries (each is a name of data counted with its primary). */
  secondaryBytes(): number {
    if (this.roles === 0) return 0;
    return (this.open().db.prepare('SELECT coalesce(sum(size), 0) AS n FROM roles WHERE proot IS NOT NULL').get() as { n: number }).n;
  }

  /** A primary this rank read (found here or by another rank): its content digest (hex). */
  primaryContent(key: string, digest: string): void {
    this.buffered.push([key, digest]);
    if (this.buffered.length >= BUFFERED) this.flush();
  }

  private flush(): void {
    if (this.buffered.length === 0) return;
    const rows = this.buffered;
    this.buffered = [];
    const { db, insContent } = this.open();
    db.transaction(() => {
      for (const [k, d] of rows) insContent.run(k, d);
    })();
  }

  /** Lazily: every content digest recorded by primaryContent. */
  *contents(): Generator<ContentRec> {
    this.flush();
    if (!this.tables) return;
    yield* this.tables.db.prepare('SELECT key, digest FROM content').raw().iterate() as IterableIterator<ContentRec>;
  }

  close(): void {
    this.buffered = [];
    if (this.tables?.db.open) this.tables.db.close();
  }
}
