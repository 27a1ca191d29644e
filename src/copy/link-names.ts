/**
 * One rank's side of the hard-link plan (see hardlinks.ts): the names it found that are
 * secondaries (linked to their primary's copy instead of copied), and the content
 * digests of the primaries it copied (their groups' owners need them for the signature).
 *
 * In a private temporary SQLite database, like the owners' tables (link-groups.ts): the
 * copy asks whether a hard-linked file is a secondary with one indexed point query, and
 * the links phase reads the secondaries lazily, so memory does not grow with them.
 */
import type Database from 'better-sqlite3';
import { Sqlite } from '../util/cjs-deps.js';
import type { ContentRec, SecondaryRec } from './link-groups.js';

/** Content digests buffered before one write transaction. */
const BUFFERED = 1024;

export interface Secondary {
  r: number;
  p: Buffer;
  /** the group's primary, whose copy this name becomes a link to */
  primary: { r: number; p: Buffer };
}

export class LinkNames {
  private readonly db: Database.Database;
  private readonly insSecondary: Database.Statement;
  private readonly isSec: Database.Statement;
  private readonly insContent: Database.Statement;
  private count = 0;
  private buffered: ContentRec[] = [];

  constructor() {
    this.db = new Sqlite('');
    this.db.pragma('journal_mode = OFF');
    this.db.exec(`
      CREATE TABLE sec (root INTEGER NOT NULL, path BLOB NOT NULL, size INTEGER NOT NULL, proot INTEGER NOT NULL, ppath BLOB NOT NULL,
        PRIMARY KEY (root, path)) WITHOUT ROWID;
      CREATE TABLE content (key TEXT NOT NULL, digest TEXT NOT NULL);`);
    this.insSecondary = this.db.prepare('INSERT OR IGNORE INTO sec (root, path, size, proot, ppath) VALUES (?, ?, ?, ?, ?)');
    this.isSec = this.db.prepare('SELECT 1 FROM sec WHERE root = ? AND path = ?');
    this.insContent = this.db.prepare('INSERT INTO content (key, digest) VALUES (?, ?)');
  }

  addSecondaries(recs: SecondaryRec[]): void {
    this.db.transaction(() => {
      for (const [root, path, size, proot, ppath] of recs) this.count += this.insSecondary.run(root, path, size, proot, ppath).changes;
    })();
  }

  /** Is (r, p) one of this rank's secondaries? A point query on the primary key (none when there are none). */
  has(r: number, p: Buffer): boolean {
    return this.count > 0 && this.isSec.get(r, p) !== undefined;
  }

  /** Lazily, for the links phase. */
  *secondaries(): Generator<Secondary> {
    if (this.count === 0) return;
    const rows = this.db.prepare('SELECT root, path, proot, ppath FROM sec').raw().iterate() as IterableIterator<[number, Buffer, number, Buffer]>;
    for (const [r, p, pr, pp] of rows) yield { r, p, primary: { r: pr, p: pp } };
  }

  /** Data bytes of the secondaries (each is a name of data counted with its primary). */
  secondaryBytes(): number {
    return (this.db.prepare('SELECT coalesce(sum(size), 0) AS n FROM sec').get() as { n: number }).n;
  }

  /** A hard-linked file this rank read: its content digest (hex). */
  primaryContent(key: string, digest: string): void {
    this.buffered.push([key, digest]);
    if (this.buffered.length >= BUFFERED) this.flush();
  }

  private flush(): void {
    if (this.buffered.length === 0) return;
    const rows = this.buffered;
    this.buffered = [];
    this.db.transaction(() => {
      for (const [k, d] of rows) this.insContent.run(k, d);
    })();
  }

  /** Lazily: every content digest recorded by primaryContent. */
  *contents(): Generator<ContentRec> {
    this.flush();
    yield* this.db.prepare('SELECT key, digest FROM content').raw().iterate() as IterableIterator<ContentRec>;
  }

  close(): void {
    this.buffered = [];
    if (this.db.open) this.db.close();
  }
}
