/**
 * Where a work queue puts what does not fit in its memory budget: batches of encoded
 * items as rows of a SQLite table, in a private temporary file removed at exit.
 * Nothing here is durable on purpose: a queue's contents are recreated by a resume.
 */
import type Database from 'better-sqlite3';
import { Sqlite } from '../util/cjs-deps.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SpillStore {
  push(data: Buffer, count: number): void;
  popNewest(): { id: number; data: Buffer } | null;
  popOldest(): { id: number; data: Buffer } | null;
  putBack(id: number, data: Buffer, count: number): void;
  clear(): void;
  close(): void;
}

export class SqliteSpill implements SpillStore {
  private readonly dir: string;
  private readonly db: Database.Database;
  private readonly ins: Database.Statement;
  private readonly insId: Database.Statement;
  private readonly newest: Database.Statement;
  private readonly oldest: Database.Statement;
  private readonly del: Database.Statement;

  constructor(parent = tmpdir()) {
    this.dir = mkdtempSync(join(parent, 'fcp-spill-'));
    this.db = new Sqlite(join(this.dir, 'queue.db'));
    // Scratch data: no journal durability needed, only bounded memory.
    this.db.pragma('journal_mode = OFF');
    this.db.pragma('synchronous = OFF');
    this.db.exec('CREATE TABLE q (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, data BLOB NOT NULL)');
    this.ins = this.db.prepare('INSERT INTO q (n, data) VALUES (?, ?)');
    this.insId = this.db.prepare('INSERT INTO q (id, n, data) VALUES (?, ?, ?)');
    this.newest = this.db.prepare('SELECT id, data FROM q ORDER BY id DESC LIMIT 1');
    this.oldest = this.db.prepare('SELECT id, data FROM q ORDER BY id ASC LIMIT 1');
    this.del = this.db.prepare('DELETE FROM q WHERE id = ?');
    process.once('exit', () => this.close());
  }

  push(data: Buffer, count: number): void {
    this.ins.run(count, data);
  }

  private take(stmt: Database.Statement): { id: number; data: Buffer } | null {
    const row = stmt.get() as { id: number; data: Buffer } | undefined;
    if (!row) return null;
    this.del.run(row.id);
    return row;
  }

  popNewest(): { id: number; data: Buffer } | null {
    return this.take(this.newest);
  }

  popOldest(): { id: number; data: Buffer } | null {
    return this.take(this.oldest);
  }

  putBack(id: number, data: Buffer, count: number): void {
    this.insId.run(id, count, data);
  }

  clear(): void {
    this.db.exec('DELETE FROM q');
  }

  close(): void {
    try {
      if (this.db.open) this.db.close();
    } catch {
      // closing at exit: nothing to do about it
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
