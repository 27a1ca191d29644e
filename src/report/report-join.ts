/**
 * --report's end: each rank sorts its own part by path bytes (through a private temporary
 * SQLite table, which spills to disk past its cache: bounded memory, as fsum's records in
 * checksum/record-table.ts), then rank 0 merges the sorted parts k ways into FILE and
 * removes them. Nothing holds more than one record per part in memory.
 */
import { closeSync, constants as C, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { Sqlite } from '../util/cjs-deps.js';
import { showPath } from '../copy/paths.js';
import { ACTION } from './report-part.js';

export type ReportFormat = 'text' | 'json';

interface Rec { a: number; key: Buffer; cause: string }

const CHUNK = 256 * 1024;

/** Streams the records of a part file. */
class PartReader {
  private buf = Buffer.alloc(CHUNK);
  private start = 0;
  private end = 0;
  private eof = false;
  private readonly fd: number;

  constructor(path: string) {
    this.fd = openSync(path, C.O_RDONLY | C.O_NOFOLLOW);
  }

  next(): Rec | null {
    for (;;) {
      const have = this.end - this.start;
      if (have >= 5) {
        const keyLen = this.buf.readUInt32LE(this.start + 1);
        if (have >= 9 + keyLen) {
          const causeLen = this.buf.readUInt32LE(this.start + 5 + keyLen);
          const len = 9 + keyLen + causeLen;
          if (have >= len) {
            const s = this.start;
            this.start += len;
            return {
              a: this.buf[s]!,
              key: Buffer.from(this.buf.subarray(s + 5, s + 5 + keyLen)),
              cause: causeLen > 0 ? this.buf.toString('utf8', s + 9 + keyLen, s + len) : '',
            };
          }
          if (len > this.buf.length) this.grow(len);
        }
      }
      if (this.eof) {
        if (have > 0) throw new Error('report part ends inside a record');
        return null;
      }
      this.fill();
    }
  }

  private grow(n: number): void {
    const b = Buffer.alloc(Math.max(n, this.buf.length * 2));
    this.buf.copy(b, 0, this.start, this.end);
    this.end -= this.start;
    this.start = 0;
    this.buf = b;
  }

  private fill(): void {
    if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (this.end === this.buf.length) this.grow(this.buf.length * 2);
    const got = readSync(this.fd, this.buf, this.end, this.buf.length - this.end, null);
    if (got === 0) this.eof = true;
    this.end += got;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Buffered writes to a new file. */
class Out {
  private readonly fd: number;
  private parts: Buffer[] = [];
  private size = 0;
  constructor(path: string) {
    this.fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, 0o644);
  }
  put(b: Buffer): void {
    this.parts.push(b);
    this.size += b.length;
    if (this.size >= CHUNK) this.flush();
  }
  flush(): void {
    const b = Buffer.concat(this.parts);
    let off = 0;
    while (off < b.length) off += writeSync(this.fd, b, off, b.length - off);
    this.parts = [];
    this.size = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

function encode(r: Rec): Buffer {
  const cause = r.cause.length > 0 ? Buffer.from(r.cause) : null;
  const b = Buffer.allocUnsafe(9 + r.key.length + (cause?.length ?? 0));
  b[0] = r.a;
  b.writeUInt32LE(r.key.length, 1);
  r.key.copy(b, 5);
  b.writeUInt32LE(cause?.length ?? 0, 5 + r.key.length);
  cause?.copy(b, 9 + r.key.length);
  return b;
}

/** Sort one rank's part (unsorted) into `sorted`, by path bytes then action; the unsorted part is removed. */
export function sortPart(unsorted: string, sorted: string): void {
  const db: Database.Database = new Sqlite('');
  try {
    db.pragma('journal_mode = OFF');
    // A BLOB sorts by memcmp: Buffer.compare order. seq keeps the order of one path's records.
    db.exec('CREATE TABLE recs (k BLOB NOT NULL, seq INTEGER NOT NULL, a INTEGER NOT NULL, c TEXT NOT NULL, PRIMARY KEY (k, seq)) WITHOUT ROWID');
    const ins = db.prepare('INSERT INTO recs (k, seq, a, c) VALUES (?, ?, ?, ?)');
    const reader = new PartReader(unsorted);
    let seq = 0;
    try {
      const put = db.transaction((rs: Rec[]) => {
        for (const r of rs) ins.run(r.key, seq++, r.a, r.cause);
      });
      let rs: Rec[] = [];
      for (let r = reader.next(); r; r = reader.next()) {
        rs.push(r);
        if (rs.length === 4096) {
          put(rs);
          rs = [];
        }
      }
      put(rs);
    } finally {
      reader.close();
    }
    // Written aside and renamed: a sorted part that exists is whole (rank 0 waits for them on a stop).
    const out = new Out(`${sorted}.tmp`);
    try {
      for (const [k, a, c] of db.prepare('SELECT k, a, c FROM recs ORDER BY k, seq').raw().iterate() as IterableIterator<[Buffer, number, string]>) {
        out.put(encode({ a, key: k, cause: c }));
      }
    } finally {
      out.close();
    }
    renameSync(`${sorted}.tmp`, sorted);
  } finally {
    db.close();
  }
  rmSync(unsorted, { force: true });
}

const NAMES: Record<number, string> = {
  [ACTION.copied]: 'copied', [ACTION.updated]: 'updated', [ACTION.metadata]: 'metadata', [ACTION.upToDate]: 'uptodate',
  [ACTION.linked]: 'linked', [ACTION.deleted]: 'deleted', [ACTION.excluded]: 'excluded', [ACTION.failed]: 'failed',
};

function line(r: Rec, format: ReportFormat): string {
  if (format === 'text') return `${String.fromCharCode(r.a)} ${showPath(r.key)}${r.cause ? `\t${showPath(r.cause)}` : ''}\n`;
  const s = r.key.toString('utf8');
  const path = Buffer.from(s, 'utf8').equals(r.key) ? `"path":${JSON.stringify(s)}` : `"pathHex":"${r.key.toString('hex')}"`;
  return `{"action":"${NAMES[r.a] ?? 'unknown'}",${path},"error":${r.cause ? JSON.stringify(r.cause) : 'null'}}\n`;
}

/**
 * Merge sorted parts into `file` in path order (a binary heap of one record per part),
 * written beside it and renamed into place; the parts are removed. Returns the lines written.
 */
export function joinParts(file: string, parts: string[], format: ReportFormat): number {
  const readers = parts.map((p) => new PartReader(p));
  const heap: { r: Rec; i: number }[] = [];
  const less = (x: { r: Rec; i: number }, y: { r: Rec; i: number }) => {
    const c = Buffer.compare(x.r.key, y.r.key);
    return c !== 0 ? c < 0 : x.i < y.i;
  };
  const push = (n: { r: Rec; i: number }) => {
    heap.push(n);
    for (let k = heap.length - 1; k > 0; ) {
      const p = (k - 1) >> 1;
      if (!less(heap[k]!, heap[p]!)) break;
      [heap[k], heap[p]] = [heap[p]!, heap[k]!];
      k = p;
    }
  };
  const pop = () => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let k = 0; ; ) {
        const l = 2 * k + 1;
        const r = l + 1;
        let m = k;
        if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
        if (m === k) break;
        [heap[k], heap[m]] = [heap[m]!, heap[k]!];
        k = m;
      }
    }
    return top;
  };
  const tmp = `${file}.part-join`;
  let lines = 0;
  try {
    const out = new Out(tmp);
    try {
      readers.forEach((rd, i) => {
        const r = rd.next();
        if (r) push({ r, i });
      });
      while (heap.length > 0) {
        const { r, i } = pop();
        out.put(Buffer.from(line(r, format)));
        lines++;
        const n = readers[i]!.next();
        if (n) push({ r: n, i });
      }
    } finally {
      out.close();
    }
    renameSync(tmp, file);
  } finally {
    for (const rd of readers) rd.close();
  }
  for (const p of parts) rmSync(p, { force: true });
  return lines;
}
