/**
 * --report's end: rank 0 merges the sorted runs of every rank's part (report-part.ts)
 * into FILE in path-byte order, with a binary heap holding one record per run and a
 * 64 KiB read buffer per run: memory grows with the number of runs (about one per 4 MiB
 * of report per rank), never with the number of entries.
 */
import { closeSync, constants as C, fstatSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { showPath } from '../model/paths.js';
import { userMode } from '../util/umask.js';
import { ACTION, RUN_MAGIC } from './report-part.js';

export type ReportFormat = 'text' | 'json';

/** key: the path's bytes as a latin1 string (one code unit per byte: string order is byte order). */
interface Rec { a: number; key: string; cause: string }

const READ = 64 * 1024;
const WRITE = 256 * 1024;

/** Streams the records of one sorted run: bytes [pos, end) of a part file. */
class RunReader {
  private buf = Buffer.allocUnsafe(READ);
  private start = 0;
  private stop = 0;

  constructor(private readonly fd: number, private pos: number, private readonly end: number) {}

  next(): Rec | null {
    for (;;) {
      const have = this.stop - this.start;
      if (have >= 5) {
        const keyLen = this.buf.readUInt32LE(this.start + 1);
        if (have >= 9 + keyLen) {
          const len = 9 + keyLen + this.buf.readUInt32LE(this.start + 5 + keyLen);
          if (have >= len) {
            const s = this.start;
            this.start += len;
            return {
              a: this.buf[s]!,
              key: this.buf.toString('latin1', s + 5, s + 5 + keyLen),
              cause: len > 9 + keyLen ? this.buf.toString('utf8', s + 9 + keyLen, s + len) : '',
            };
          }
        }
      }
      if (this.pos >= this.end) {
        if (have > 0) throw new Error('a report run ends inside a record');
        return null;
      }
      this.fill();
    }
  }

  private fill(): void {
    const have = this.stop - this.start;
    // A record longer than the buffer (a long cause): grow it.
    const b = have >= this.buf.length / 2 ? Buffer.allocUnsafe(this.buf.length * 2) : this.buf;
    this.buf.copy(b, 0, this.start, this.stop);
    this.buf = b;
    this.start = 0;
    this.stop = have;
    const got = readSync(this.fd, this.buf, this.stop, Math.min(this.buf.length - this.stop, this.end - this.pos), this.pos);
    if (got === 0) throw new Error('a report part is shorter than its runs say');
    this.pos += got;
    this.stop += got;
  }
}

/** The runs of a part file: [start, end) of each one's records; a run cut short (a rank killed while writing) is left out. */
function runsOf(fd: number): [number, number][] {
  const size = fstatSync(fd).size;
  const head = Buffer.alloc(8);
  const runs: [number, number][] = [];
  for (let off = 0; off + 8 <= size; ) {
    if (readSync(fd, head, 0, 8, off) !== 8 || head.readUInt32LE(0) !== RUN_MAGIC) break;
    const len = head.readUInt32LE(4);
    if (off + 8 + len > size) break;
    runs.push([off + 8, off + 8 + len]);
    off += 8 + len;
  }
  return runs;
}

const NAMES: Record<number, string> = {
  [ACTION.copied]: 'copied', [ACTION.updated]: 'updated', [ACTION.metadata]: 'metadata', [ACTION.upToDate]: 'uptodate',
  [ACTION.linked]: 'linked', [ACTION.deleted]: 'deleted', [ACTION.excluded]: 'excluded', [ACTION.failed]: 'failed',
};

/** Printable ASCII but the backslash: shown as it is (showPath's own fast case, on the string). */
const PLAIN = /^[\x20-\x5b\x5d-\x7e]*$/;

function line(r: Rec, format: ReportFormat): string {
  const plain = PLAIN.test(r.key);
  if (format === 'text') {
    return `${String.fromCharCode(r.a)} ${plain ? r.key : showPath(Buffer.from(r.key, 'latin1'))}${r.cause ? `\t${showPath(r.cause)}` : ''}\n`;
  }
  let path: string;
  if (plain) path = `"path":${JSON.stringify(r.key)}`;
  else {
    const b = Buffer.from(r.key, 'latin1');
    const s = b.toString('utf8');
    path = Buffer.from(s, 'utf8').equals(b) ? `"path":${JSON.stringify(s)}` : `"pathHex":"${b.toString('hex')}"`;
  }
  return `{"action":"${NAMES[r.a] ?? 'unknown'}",${path},"error":${r.cause ? JSON.stringify(r.cause) : 'null'}}\n`;
}

function writeAll(fd: number, text: string): void {
  const b = Buffer.from(text, 'utf8');
  for (let off = 0; off < b.length; ) off += writeSync(fd, b, off, b.length - off);
}

interface Head { r: Rec; i: number }

/** A min-heap of the runs' current records, by key bytes, then run (a part's runs in order, parts by rank). */
class RunHeap {
  private readonly h: Head[] = [];
  get size(): number {
    return this.h.length;
  }
  private less(x: Head, y: Head): boolean {
    return x.r.key !== y.r.key ? x.r.key < y.r.key : x.i < y.i;
  }
  push(n: Head): void {
    const h = this.h;
    h.push(n);
    for (let k = h.length - 1; k > 0; ) {
      const p = (k - 1) >> 1;
      if (!this.less(h[k]!, h[p]!)) break;
      [h[k], h[p]] = [h[p]!, h[k]!];
      k = p;
    }
  }
  pop(): Head {
    const h = this.h;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length === 0) return top;
    h[0] = last;
    for (let k = 0; ; ) {
      const l = 2 * k + 1;
      let m = k;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (l + 1 < h.length && this.less(h[l + 1]!, h[m]!)) m = l + 1;
      if (m === k) break;
      [h[k], h[m]] = [h[m]!, h[k]!];
      k = m;
    }
    return top;
  }
}

/**
 * Merge the parts' sorted runs into `file` in path order, written beside it and renamed
 * into place; the parts are removed. Returns the number of lines written.
 */
export function joinParts(file: string, parts: string[], format: ReportFormat): number {
  const fds = parts.map((p) => openSync(p, C.O_RDONLY | C.O_NOFOLLOW));
  const tmp = `${file}.part-join`;
  let lines = 0;
  try {
    const readers = fds.flatMap((fd) => runsOf(fd).map(([s, e]) => new RunReader(fd, s, e)));
    const heap = new RunHeap();
    readers.forEach((rd, i) => {
      const r = rd.next();
      if (r) heap.push({ r, i });
    });
    const out = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, userMode(0o644));
    try {
      let text = '';
      while (heap.size > 0) {
        const { r, i } = heap.pop();
        text += line(r, format);
        lines++;
        if (text.length >= WRITE) {
          writeAll(out, text);
          text = '';
        }
        const n = readers[i]!.next();
        if (n) heap.push({ r: n, i });
      }
      if (text) writeAll(out, text);
    } finally {
      closeSync(out);
    }
    renameSync(tmp, file);
  } finally {
    for (const fd of fds) closeSync(fd);
    rmSync(tmp, { force: true });
  }
  for (const p of parts) rmSync(p, { force: true });
  return lines;
}
