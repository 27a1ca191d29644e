/**
 * The sum file (fsum -o SUMFILE), version 1. Text, one entry per line, sorted by root
 * index then by path bytes, so two sum files of the same data are byte-identical:
 *
 *     fsum 1 leaf=1048576 chunk=67108864 meta=0 roots=1 entries=3 signature=<32 hex>
 *     # root 0 /data/run42
 *     <digest> <type> <size> <content> <mode> <owner> <mtime> <root> <path>
 *       <offset> <length> <chunk digest>
 *
 * - header: format version, leaf size, chunk size (what --check recomputes with),
 *   whether metadata is included, number of roots, number of entry lines, and the
 *   signature (sum of the entry digests mod 2^128).
 * - `#` lines are comments (the roots' paths as given, escaped like paths).
 * - entry line, fields separated by one space:
 *     digest   entry digest, 32 hex (see entry-digest.ts; recomputable from the fields)
 *     type     f d l p s c b
 *     size     files: bytes; symlinks: target length; '-' otherwise
 *     content  files: content digest; symlinks: target digest; '-' otherwise
 *     mode     with meta: 4 octal digits (mode & 07777), else '-'
 *     owner    with meta: uid:gid, else '-'
 *     mtime    with meta: seconds.nanoseconds (9 digits), else '-'
 *     root     root index (0 with one PATH)
 *     path     relative to the root, escaped; the root itself is '.'
 * - chunk lines follow the entry line of a file of more than one chunk, indented by two
 *   spaces: offset, length, partial digest (the sum of the chunk's leaf terms).
 *
 * Path escaping: bytes 0x21-0x7e other than '\' are written as is; every other byte
 * (space, control, '\', 0x7f-0xff: so non-ASCII UTF-8 too) as \xHH, lowercase hex. Any
 * byte string round-trips exactly. '.' is the root (empty path); a path that is just a dot
 * (never seen in a tree) is written \x2e.
 *
 * Reading checks everything: the header, every field, the sort order, that each line's
 * digest matches its fields and that the lines add up to the signature, so a damaged or
 * edited file is refused instead of misreporting the tree.
 */
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { Kind } from '../model/entry.js';
import { LEAF, MASK128, fileDigest, fromHex, isHex128, toHex } from './hasher.js';
import { compareRecords, recordDigest, type SumRecord } from './records.js';
import { FcpError } from '../fcp-error.cjs';

export const SUMFILE_VERSION = 1;

export interface SumFileHeader {
  version: number;
  leaf: number;
  chunk: number;
  meta: boolean;
  roots: number;
  entries: number;
  signature: string;
}

export interface SumFile extends SumFileHeader {
  /** root paths from the comment lines (informational), by index */
  rootPaths: Buffer[];
  records: SumRecord[];
}

export class SumFileError extends FcpError {
  constructor(message: string) {
    super('SUM_FILE_INVALID', message);
  }
}

const HEX = Array.from({ length: 256 }, (_, b) => `\\x${b.toString(16).padStart(2, '0')}`);

export function escapePath(p: Uint8Array): string {
  if (p.length === 0) return '.';
  if (p.length === 1 && p[0] === 0x2e) return '\\x2e'; // '.' itself stands for the root
  let out = '';
  let run = 0; // start of the current run of plain bytes
  const b = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c > 0x20 && c < 0x7f && c !== 0x5c) continue;
    if (i > run) out += b.toString('latin1', run, i);
    out += HEX[c];
    run = i + 1;
  }
  if (run < b.length) out += b.toString('latin1', run);
  return out;
}

export function unescapePath(s: string): Buffer {
  if (s === '.') return Buffer.alloc(0);
  if (s.length === 0) throw new SumFileError('empty path');
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) {
      const h = s.slice(i + 1, i + 4);
      if (!/^x[0-9a-f]{2}$/.test(h)) throw new SumFileError(`bad escape '\\${h}' in path`);
      out.push(parseInt(h.slice(1), 16));
      i += 3;
    } else if (c > 0x20 && c < 0x7f) out.push(c);
    else throw new SumFileError('unescaped byte in path');
  }
  return Buffer.from(out);
}

export function headerLine(h: Omit<SumFileHeader, 'version'>): string {
  return `fsum ${SUMFILE_VERSION} leaf=${h.leaf} chunk=${h.chunk} meta=${h.meta ? 1 : 0} roots=${h.roots} entries=${h.entries} signature=${h.signature}`;
}

export function recordLines(x: SumRecord): string {
  const m = x.meta;
  const mode = m ? (m.mode & 0o7777).toString(8).padStart(4, '0') : '-';
  const owner = m ? `${m.uid}:${m.gid}` : '-';
  const mtime = m ? `${m.mtime[0]}.${String(m.mtime[1]).padStart(9, '0')}` : '-';
  let s = `${x.dig} ${x.k} ${x.size ?? '-'} ${x.content ?? '-'} ${mode} ${owner} ${mtime} ${x.r} ${escapePath(x.p)}\n`;
  for (const [o, l, d] of x.chunks ?? []) s += `  ${o} ${l} ${d}\n`;
  return s;
}

/**
 * Write a sum file (records of failed entries are left out; they were reported). Sorts
 * `records` in place. Written to a temporary name and renamed, so a reader never sees
 * half a file.
 */
export async function writeSumFile(path: string, o: { chunk: number; meta: boolean; rootPaths: Buffer[]; signature: string; records: SumRecord[] }): Promise<number> {
  const recs = o.records.filter((x) => !x.err).sort(compareRecords);
  return writeSumFileFrom(path, { ...o, entries: recs.length, records: recs });
}

/**
 * Write a sum file from a stream of records, already sorted (compareRecords) and without
 * failed entries; `entries` is their number (the header comes first). Only about 1 MiB
 * of text is held at a time.
 */
export async function writeSumFileFrom(path: string, o: { chunk: number; meta: boolean; rootPaths: Buffer[]; signature: string; entries: number; records: Iterable<SumRecord> }): Promise<number> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o644);
  let n = 0;
  try {
    let buf = `${headerLine({ leaf: LEAF, chunk: o.chunk, meta: o.meta, roots: o.rootPaths.length, entries: o.entries, signature: o.signature })}\n`;
    o.rootPaths.forEach((p, i) => { buf += `# root ${i} ${escapePath(p)}\n`; });
    for (const x of o.records) {
      buf += recordLines(x);
      n++;
      if (buf.length > 1 << 20) {
        await fh.write(buf);
        buf = '';
      }
    }
    if (n !== o.entries) throw new Error(`sum file: ${n} records written, ${o.entries} announced`);
    await fh.write(buf);
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return n;
}

const num = (s: string, what: string, line: number): number => {
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new SumFileError(`line ${line}: bad ${what} '${s}'`);
  return Number(s);
};

export function parseHeader(line: string): SumFileHeader {
  const m = /^fsum (\d+) leaf=(\d+) chunk=(\d+) meta=([01]) roots=(\d+) entries=(\d+) signature=([0-9a-f]{32})$/.exec(line);
  if (!m) throw new SumFileError('line 1: not an fsum sum file header');
  const h: SumFileHeader = {
    version: Number(m[1]), leaf: Number(m[2]), chunk: Number(m[3]), meta: m[4] === '1',
    roots: Number(m[5]), entries: Number(m[6]), signature: m[7]!,
  };
  if (h.version !== SUMFILE_VERSION) throw new SumFileError(`line 1: sum file version ${h.version} (this fsum reads version ${SUMFILE_VERSION})`);
  if (h.leaf !== LEAF) throw new SumFileError(`line 1: leaf size ${h.leaf} (this fsum uses ${LEAF})`);
  if (h.chunk < LEAF || h.chunk % LEAF !== 0 || !Number.isSafeInteger(h.chunk)) throw new SumFileError(`line 1: chunk size ${h.chunk} is not a multiple of ${LEAF}`);
  if (h.roots < 1) throw new SumFileError('line 1: no roots');
  return h;
}

const KINDS = new Set(['f', 'd', 'l', 'p', 's', 'c', 'b']);

/**
 * Reads a sum file one line at a time (without its '\n') and verifies it as it goes:
 * `line` returns each entry's record once it is complete (its chunk lines read), `end`
 * the last one and checks the totals. Holds one record and the per-root sums.
 */
export class SumFileParser {
  header: SumFileHeader | null = null;
  /** root paths from the comment lines (informational), by index */
  readonly rootPaths: Buffer[] = [];
  private sums: bigint[] = [];
  private cur: SumRecord | null = null;
  private count = 0;
  private ln = 0;

  private finishChunks(ln: number): void {
    const x = this.cur;
    const head = this.header!;
    if (!x || x.k !== 'f') return;
    const multi = x.size! > head.chunk;
    if (multi !== (x.chunks !== null)) throw new SumFileError(`line ${ln}: '${escapePath(x.p)}' ${multi ? 'lacks' : 'should not have'} chunk lines`);
    if (!x.chunks) return;
    let off = 0;
    for (const [o, l] of x.chunks) {
      if (o !== off || l < 1 || l > head.chunk || (o % head.chunk !== 0)) throw new SumFileError(`line ${ln}: chunks of '${escapePath(x.p)}' do not tile the file by ${head.chunk}`);
      off += l;
    }
    if (off !== x.size) throw new SumFileError(`line ${ln}: chunks of '${escapePath(x.p)}' do not cover its ${x.size} bytes`);
    if (toHex(fileDigest(x.chunks.map((c) => fromHex(c[2])), x.size)) !== x.content) {
      throw new SumFileError(`line ${ln}: chunk digests of '${escapePath(x.p)}' do not add up to its content digest`);
    }
  }

  /** One line; returns the previous entry's record when this line completes it. */
  line(line: string): SumRecord | null {
    const ln = ++this.ln;
    if (!this.header) {
      this.header = parseHeader(line);
      this.sums = new Array<bigint>(this.header.roots).fill(0n);
      return null;
    }
    const head = this.header;
    const cur = this.cur;
    if (line.startsWith('#')) {
      const m = /^# root (\d+) (\S+)$/.exec(line);
      if (m && Number(m[1]) < head.roots) this.rootPaths[Number(m[1])] = unescapePath(m[2]!);
      return null;
    }
    if (line.startsWith('  ')) {
      const f = line.slice(2).split(' ');
      if (!cur || cur.k !== 'f' || f.length !== 3 || !isHex128(f[2])) throw new SumFileError(`line ${ln}: misplaced or malformed chunk line`);
      (cur.chunks ??= []).push([num(f[0]!, 'offset', ln), num(f[1]!, 'length', ln), f[2]!]);
      return null;
    }
    this.finishChunks(ln - 1);
    const f = line.split(' ');
    if (f.length !== 9) throw new SumFileError(`line ${ln}: expected 9 fields, found ${f.length}`);
    const [dig, k, size, content, mode, owner, mtime, root, path] = f as [string, string, string, string, string, string, string, string, string];
    if (!isHex128(dig)) throw new SumFileError(`line ${ln}: bad digest`);
    if (!KINDS.has(k)) throw new SumFileError(`line ${ln}: bad type '${k}'`);
    const hasSize = k === 'f' || k === 'l';
    if (hasSize ? !isHex128(content) : content !== '-' || size !== '-') throw new SumFileError(`line ${ln}: bad size or content for type ${k}`);
    let meta: SumRecord['meta'] = null;
    if (head.meta) {
      const om = /^(\d+):(\d+)$/.exec(owner);
      const tm = /^(-?\d+)\.(\d{9})$/.exec(mtime);
      if (!/^[0-7]{4}$/.test(mode) || !om || !tm) throw new SumFileError(`line ${ln}: bad mode, owner or mtime`);
      meta = { mode: parseInt(mode, 8), uid: Number(om[1]), gid: Number(om[2]), mtime: [Number(tm[1]), Number(tm[2])] };
    } else if (mode !== '-' || owner !== '-' || mtime !== '-') throw new SumFileError(`line ${ln}: metadata in a sum file made without it`);
    const r = num(root, 'root', ln);
    if (r >= head.roots) throw new SumFileError(`line ${ln}: root ${r} of ${head.roots}`);
    let p: Buffer;
    try {
      p = unescapePath(path);
    } catch (err) {
      throw new SumFileError(`line ${ln}: ${(err as Error).message}`);
    }
    const rec: SumRecord = { r, p, k: k as Kind, size: hasSize ? num(size, 'size', ln) : null, dig, content: hasSize ? content : null, meta, chunks: null, err: false };
    if (cur && compareRecords(cur, rec) >= 0) throw new SumFileError(`line ${ln}: entries out of order or repeated`);
    if (toHex(recordDigest(rec, r)) !== dig) throw new SumFileError(`line ${ln}: the digest does not match the line`);
    this.sums[r] = (this.sums[r]! + fromHex(dig)) & MASK128;
    this.count++;
    this.cur = rec;
    return cur;
  }

  /** The end of the file: the last record (if any), after checking the totals. */
  end(): SumRecord | null {
    if (!this.header) this.header = parseHeader('');
    const head = this.header;
    this.finishChunks(this.ln);
    if (this.count !== head.entries) throw new SumFileError(`the header announces ${head.entries} entries, the file has ${this.count} (truncated?)`);
    const total = this.sums.reduce((a, b) => (a + b) & MASK128, 0n);
    if (toHex(total) !== head.signature) throw new SumFileError('the entries do not add up to the signature in the header');
    const last = this.cur;
    this.cur = null;
    return last;
  }
}

/** Parse and verify a whole sum file. */
export function parseSumFile(text: string): SumFile {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  else throw new SumFileError('the file does not end with a newline (truncated?)');
  const parser = new SumFileParser();
  const records: SumRecord[] = [];
  for (const line of lines) {
    const x = parser.line(line);
    if (x) records.push(x);
  }
  const last = parser.end();
  if (last) records.push(last);
  return { ...parser.header!, rootPaths: parser.rootPaths, records };
}

/**
 * Read and verify a sum file as a stream (latin1, line by line): `onRecord` gets each
 * entry's record in file order. Memory does not grow with the file. Throws SumFileError
 * for a bad file, the read error for an unreadable one.
 */
/**
 * Only the header line of a sum file (its first line, read with one bounded read): what
 * every rank needs to check the command line, without reading the whole file.
 */
export async function readSumFileHeader(path: string): Promise<SumFileHeader> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.toString('latin1', 0, bytesRead);
    const nl = text.indexOf('\n');
    if (nl < 0) throw new SumFileError(bytesRead === 0 ? 'the file is empty' : 'no header line (not a sum file?)');
    return parseHeader(text.slice(0, nl));
  } finally {
    await fh.close();
  }
}

export async function readSumFile(path: string, onRecord: (x: SumRecord) => void): Promise<SumFileHeader & { rootPaths: Buffer[] }> {
  const parser = new SumFileParser();
  let rest = '';
  for await (const chunk of createReadStream(path, { encoding: 'latin1', highWaterMark: 1 << 20 })) {
    const text = rest + (chunk as string);
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      const x = parser.line(text.slice(from, nl));
      if (x) onRecord(x);
      from = nl + 1;
    }
    rest = text.slice(from);
    if (rest.length > 1 << 20) throw new SumFileError('a line of more than 1 MiB (not a sum file?)');
  }
  if (rest !== '') throw new SumFileError('the file does not end with a newline (truncated?)');
  const last = parser.end();
  if (last) onRecord(last);
  return { ...parser.header!, rootPaths: parser.rootPaths };
}
