/**
 * Checksum records (records.ts) kept out of the heap: each rank's own records before
 * they go to rank 0, rank 0's gathered records, and the records of a sum file given to
 * --check.
 *
 * In a private temporary SQLite database (`new Sqlite('')`), like the hard-link tables
 * (copy/link-groups.ts): SQLite keeps its pages in its cache and spills them to an
 * unnamed temporary file past it, so memory does not grow with the number of records.
 * The file is deleted when the database is closed, or with the process.
 *
 * An `ordered` table is clustered on (root, path), path as a BLOB, which SQLite orders by
 * memcmp, which is Buffer.compare order: reading it in key order gives compareRecords
 * order, the sum file's, without sorting anything. (A key stored twice is an error.) An
 * unordered table is a plain heap, for records that are only read back to be sent.
 */
import type Database from 'better-sqlite3';
import { Sqlite } from '../util/cjs-deps.js';
import { fromTuple, toTuple, type RecordTuple, type SumRecord } from './records.js';

/** Records buffered before one write transaction. */
const BUFFERED = 1024;

type Row = [r: number, p: Buffer, k: string, size: number, dig: string, content: string, meta: string | null, chunks: string | null, err: number];

const COLS = 'r, p, k, size, dig, content, meta, chunks, err';

export class RecordTable {
  private readonly db: Database.Database;
  private readonly ins: Database.Statement;
  private buffered: RecordTuple[] = [];

  constructor(opts: { ordered: boolean }) {
    this.db = new Sqlite('');
    // Scratch data: no journal needed.
    this.db.pragma('journal_mode = OFF');
    // A small page cache (4 MiB, not better-sqlite3's 16): rank 0 holds two or three of
    // these at once, and past the cache the pages come back from the OS's file cache.
    this.db.pragma('cache_size = -4096');
    // size -1: none; content '': none; meta, chunks: JSON arrays or NULL (as in RecordTuple)
    const cols = 'r INTEGER NOT NULL, p BLOB NOT NULL, k TEXT NOT NULL, size INTEGER NOT NULL, dig TEXT NOT NULL, content TEXT NOT NULL, meta TEXT, chunks TEXT, err INTEGER NOT NULL';
    this.db.exec(opts.ordered ? `CREATE TABLE recs (${cols}, PRIMARY KEY (r, p)) WITHOUT ROWID` : `CREATE TABLE recs (${cols})`);
    this.ins = this.db.prepare(`INSERT INTO recs (${COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  }

  add(x: SumRecord): void {
    this.buffered.push(toTuple(x));
    if (this.buffered.length >= BUFFERED) this.flush();
  }

  /** Tuples as they arrive from other ranks (validated by isRecordTuple). */
  addTuples(ts: RecordTuple[]): void {
    for (let i = 0; i < ts.length; i += BUFFERED) this.write(ts.slice(i, i + BUFFERED));
  }

  /** Write what add() buffered; the readers below do it first. */
  flush(): void {
    if (this.buffered.length === 0) return;
    const b = this.buffered;
    this.buffered = [];
    this.write(b);
  }

  private write(ts: RecordTuple[]): void {
    this.db.transaction(() => {
      for (const [r, p, k, size, dig, content, meta, chunks, err] of ts) {
        this.ins.run(r, Buffer.from(p.buffer, p.byteOffset, p.byteLength), k, size, dig, content,
          meta === 0 ? null : JSON.stringify(meta), chunks === 0 ? null : JSON.stringify(chunks), err);
      }
    })();
  }

  /** Number of records; `readable`: of those not marked as errors. */
  count(opts: { readable?: boolean } = {}): number {
    this.flush();
    return (this.db.prepare(`SELECT count(*) FROM recs${opts.readable ? ' WHERE err = 0' : ''}`).pluck().get() as number);
  }

  /** Lazily, every record as a tuple, in no particular order. */
  *tuples(): Generator<RecordTuple> {
    this.flush();
    const rows = this.db.prepare(`SELECT ${COLS} FROM recs`).raw().iterate() as IterableIterator<Row>;
    for (const row of rows) yield rowTuple(row);
  }

  /**
   * Lazily, in (root, path) order (an ordered table): every record, or those of one
   * root (`root`; reported as root `as`), or those not marked as errors (`readable`).
   */
  *sorted(opts: { root?: number; as?: number; readable?: boolean } = {}): Generator<SumRecord> {
    this.flush();
    const where: string[] = [];
    if (opts.root !== undefined) where.push(`r = ${Number(opts.root)}`);
    if (opts.readable) where.push('err = 0');
    const rows = this.db.prepare(`SELECT ${COLS} FROM recs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY r, p`).raw()
      .iterate() as IterableIterator<Row>;
    for (const row of rows) {
      const x = fromTuple(rowTuple(row));
      if (opts.as !== undefined) x.r = opts.as;
      yield x;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function rowTuple([r, p, k, size, dig, content, meta, chunks, err]: Row): RecordTuple {
  return [r, p, k, size, dig, content, meta === null ? 0 : JSON.parse(meta) as RecordTuple[6], chunks === null ? 0 : JSON.parse(chunks) as RecordTuple[7], err];
}
