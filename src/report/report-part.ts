/**
 * --report FILE: each rank appends what happened to each entry to its own part file,
 * FILE.part-r<R>, as binary records buffered in memory and written 256 KiB at a time
 * (the copy's hot path formats nothing and makes no system call per entry). At the end
 * the parts are sorted and joined by path into FILE (report-join.ts).
 *
 * A record: action (one byte, the report's letter), key length (u32 LE), key (the path
 * as shown: relative to SRC; with several SRC, under its SRC's name; '.' for SRC
 * itself), cause length (u32 LE), cause (UTF-8, failures only).
 */
import { closeSync, constants as C, openSync, writeSync } from 'node:fs';
import type { Entry, Root } from '../walk/entry.js';
import { COPY_STATUS, OP_REPLACED, OP_UP_TO_DATE } from '../native/loader.js';
import { baseName } from '../copy/paths.js';

/** The report's letters (README "Report"). */
export const ACTION = {
  copied: 0x2b, // '+' new in DST
  updated: 0x2a, // '*' content written over an existing file
  metadata: 0x7e, // '~' same content (--update=checksum), metadata set
  upToDate: 0x3d, // '=' already there
  linked: 0x68, // 'h' another name of a hard-linked file
  deleted: 0x2d, // '-' removed from DST (--delete)
  excluded: 0x78, // 'x' left out by a filter rule
  failed: 0x21, // '!' failed, with the cause
} as const;
export type ActionCode = (typeof ACTION)[keyof typeof ACTION];

const BUFFER = 256 * 1024;
const DOT = Buffer.from('.');

export function partPath(file: string, rank: number): string {
  return `${file}.part-r${rank}`;
}

export class ReportPart {
  private fd: number;
  private buf = Buffer.allocUnsafe(BUFFER);
  private pos = 0;
  /** with several SRC: each root's name (its basename in DST) and '/' */
  private readonly prefixes: Buffer[] | null;
  /** the roots' paths, longest first, to turn a failure's absolute path into a key */
  private readonly rootPaths: { path: Buffer; r: number }[];
  count = 0;

  constructor(readonly path: string, private readonly roots: Root[]) {
    this.fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, 0o600);
    this.prefixes = roots.length > 1 ? roots.map((r) => Buffer.from(baseName(r.dst))) : null;
    this.rootPaths = roots.flatMap((r, i) => [{ path: r.src, r: i }, { path: r.dst, r: i }]).sort((a, b) => b.path.length - a.path.length);
  }

  /** One entry of root r at relative path rel. */
  add(action: ActionCode, r: number, rel: Buffer, cause = ''): void {
    const pre = this.prefixes?.[r];
    const keyLen = pre ? pre.length + (rel.length > 0 ? 1 + rel.length : 0) : rel.length > 0 ? rel.length : 1;
    const causeLen = cause.length === 0 ? 0 : Buffer.byteLength(cause);
    this.reserve(9 + keyLen + causeLen);
    const b = this.buf;
    let p = this.pos;
    b[p++] = action;
    b.writeUInt32LE(keyLen, p);
    p += 4;
    if (pre) {
      p += pre.copy(b, p);
      if (rel.length > 0) {
        b[p++] = 0x2f;
        p += rel.copy(b, p);
      }
    } else p += (rel.length > 0 ? rel : DOT).copy(b, p);
    b.writeUInt32LE(causeLen, p);
    p += 4;
    if (causeLen > 0) p += b.write(cause, p);
    this.pos = p;
    this.count++;
  }

  /**
   * A native batch's files as copyFiles left them (status: COPY_STATUS numbers each):
   * failures are not here (EntryErrors reports them, see failed()).
   */
  batch(list: readonly Entry[], status: Float64Array, n: number): void {
    for (let i = 0; i < n; i++) {
      if (status[i * COPY_STATUS] !== 0) continue;
      const op = status[i * COPY_STATUS + 1];
      const e = list[i]!;
      this.add(op === OP_UP_TO_DATE ? ACTION.upToDate : op === OP_REPLACED ? ACTION.updated : ACTION.copied, e.r, e.p);
    }
  }

  /** A failure as EntryErrors names it: an absolute path in SRC or DST (or a list's line). */
  failed(op: string, path: Buffer | string, cause: string): void {
    const p = typeof path === 'string' ? Buffer.from(path) : path;
    for (const { path: root, r } of this.rootPaths) {
      if (!p.subarray(0, root.length).equals(root)) continue;
      if (p.length === root.length) return this.add(ACTION.failed, r, Buffer.alloc(0), `cannot ${op}: ${cause}`);
      if (p[root.length] === 0x2f) return this.add(ACTION.failed, r, p.subarray(root.length + 1), `cannot ${op}: ${cause}`);
    }
    // Not below a root (the --files-from list itself, a list's line): as given.
    const keyLen = p.length;
    const c = `cannot ${op}: ${cause}`;
    this.reserve(9 + keyLen + Buffer.byteLength(c));
    this.buf[this.pos++] = ACTION.failed;
    this.buf.writeUInt32LE(keyLen, this.pos);
    this.pos += 4;
    this.pos += p.copy(this.buf, this.pos);
    this.buf.writeUInt32LE(Buffer.byteLength(c), this.pos);
    this.pos += 4;
    this.pos += this.buf.write(c, this.pos);
    this.count++;
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
  }

  /** Write what is buffered (also on a stop, so the part holds everything done). */
  flush(): void {
    let off = 0;
    while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off);
    this.pos = 0;
  }

  close(): void {
    if (this.fd < 0) return;
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
  }
}
