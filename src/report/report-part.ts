/**
 * --report FILE: each rank appends what happened to each entry to its own part file as
 * binary records, buffered in memory (the copy's hot path formats no text and makes no
 * system call per entry). Every RUN_BYTES the buffer is sorted by path bytes and written
 * as one sorted run, so a part is a sequence of sorted runs, memory stays bounded, and
 * rank 0 joins every part's runs into FILE with one k-way merge (report-join.ts).
 *
 * A part is written as FILE.part-r<R>.open and renamed to FILE.part-r<R> once closed: a
 * part under its final name is whole.
 *
 * A run: magic (u32 LE), byte length of its records (u32 LE), the records.
 * A record: action (one byte, the report's letter), key length (u32 LE), key (the path
 * as shown: relative to SRC; with several SRC, under its SRC's name; '.' for SRC
 * itself), cause length (u32 LE), cause (UTF-8, failures only).
 */
import { closeSync, constants as C, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { Root } from '../model/entry.js';
import { COPY_NUMS, COPY_STATUS, OP_REPLACED, OP_UP_TO_DATE } from '../native/loader.js';
import { baseName } from '../model/paths.js';

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

/** Bytes of records sorted and written as one run (the part's memory). */
const RUN_BYTES = 4 * 1024 * 1024;
export const RUN_MAGIC = 0x54505246; // 'FRPT'
const DOT = Buffer.from('.');

export function partPath(file: string, rank: number): string {
  return `${file}.part-r${rank}`;
}

export class ReportPart {
  private fd: number;
  private readonly writing: string;
  private buf: Buffer;
  private pos = 0;
  /** with several SRC: each root's name (its basename in DST) and '/' */
  private readonly prefixes: Buffer[] | null;
  /** the roots' paths, longest first, to turn a failure's absolute path into a key */
  private readonly rootPaths: { path: Buffer; r: number }[];
  count = 0;

  /** runBytes: records per sorted run (tests make it small, to merge many runs) */
  constructor(readonly path: string, roots: Root[], runBytes = RUN_BYTES) {
    this.buf = Buffer.allocUnsafe(runBytes);
    this.writing = `${path}.open`;
    this.fd = openSync(this.writing, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, 0o600);
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
   * A native batch's files as copyFiles took them (rels, nums: COPY_NUMS numbers each) and left them (status: COPY_STATUS numbers each):
   * failures are not here (EntryErrors reports them, see failed()).
   */
  batch(rels: readonly Buffer[], nums: Float64Array, status: Float64Array, n: number): void {
    for (let i = 0; i < n; i++) {
      if (status[i * COPY_STATUS] !== 0) continue;
      const op = status[i * COPY_STATUS + 1];
      this.add(op === OP_UP_TO_DATE ? ACTION.upToDate : op === OP_REPLACED ? ACTION.updated : ACTION.copied, nums[i * COPY_NUMS]!, rels[i]!);
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

  /** Sort what is buffered by key bytes (stable) and write it as one run. */
  flush(): void {
    if (this.pos === 0 || this.fd < 0) return;
    const b = this.buf;
    const starts: number[] = [];
    const keys: string[] = [];
    for (let o = 0; o < this.pos; ) {
      const keyLen = b.readUInt32LE(o + 1);
      starts.push(o);
      // latin1: one code unit per byte, so string order is byte order (and comparing strings is fast)
      keys.push(b.toString('latin1', o + 5, o + 5 + keyLen));
      o += 9 + keyLen + b.readUInt32LE(o + 5 + keyLen);
    }
    // stable: one path's records keep their order
    const order = starts.map((_, i) => i).sort((x, y) => (keys[x]! < keys[y]! ? -1 : keys[x]! > keys[y]! ? 1 : x - y));
    const out = Buffer.allocUnsafe(8 + this.pos);
    out.writeUInt32LE(RUN_MAGIC, 0);
    out.writeUInt32LE(this.pos, 4);
    let p = 8;
    for (const i of order) {
      const s = starts[i]!;
      const e = i + 1 < starts.length ? starts[i + 1]! : this.pos;
      p += b.copy(out, p, s, e);
    }
    let off = 0;
    while (off < out.length) off += writeSync(this.fd, out, off, out.length - off);
    this.pos = 0;
  }

  /** Close and remove the part, unwritten. */
  discard(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
    rmSync(this.writing, { force: true });
  }

  /** Write the last run; the part gets its final name (whole, for rank 0 to join). */
  close(): void {
    if (this.fd < 0) return;
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
    renameSync(this.writing, this.path);
  }
}
