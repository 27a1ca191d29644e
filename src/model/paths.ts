/**
 * Paths are bytes. Names on a POSIX file system may be any bytes but '/' and NUL, so
 * fcp carries every path as a Buffer and converts to text only to print it.
 */
import { createHash } from 'node:crypto';
import type { Entry, Root } from './entry.js';

const SLASH = 0x2f;

/** parent + '/' + name, without a doubled slash. */
export function joinPath(parent: Buffer, name: Buffer): Buffer {
  if (parent.length === 0) return name;
  if (name.length === 0) return parent;
  // One allocation and two copies (a path per entry found: this is on the walk's hot path).
  const sep = parent[parent.length - 1] === SLASH ? 0 : 1;
  const out = Buffer.allocUnsafe(parent.length + sep + name.length);
  parent.copy(out, 0);
  if (sep) out[parent.length] = SLASH;
  name.copy(out, parent.length + sep);
  return out;
}

/** The last component of a path (without trailing slashes). */
export function baseName(p: Buffer): Buffer {
  let end = p.length;
  while (end > 1 && p[end - 1] === SLASH) end--;
  const start = p.lastIndexOf(SLASH, end - 1) + 1;
  return p.subarray(start, end);
}

export function dirName(p: Buffer): Buffer {
  const i = p.lastIndexOf(SLASH);
  if (i < 0) return Buffer.from('.');
  if (i === 0) return Buffer.from('/');
  return p.subarray(0, i);
}

/** Number of components in a relative path ('' is the root itself, depth 0). */
export function depthOf(rel: Buffer): number {
  if (rel.length === 0) return 0;
  let d = 1;
  for (let i = rel.indexOf(SLASH); i >= 0; i = rel.indexOf(SLASH, i + 1)) d++;
  return d;
}

/**
 * Printable form of a path, as `ls -b` prints names: valid UTF-8 as is; `\n`, `\t`, and
 * `\xHH` for other control bytes (< 0x20, 0x7f), for C1 controls and for bytes that are
 * not valid UTF-8; a backslash as `\\`. A name can then neither forge a line of fcp's
 * output or logs nor hide what it is, and every path is named exactly. Strings (paths as
 * the user typed them) are escaped the same way, byte by byte of their UTF-8.
 */
export function showPath(p: Buffer | string): string {
  const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
  let plain = true;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c < 0x20 || c === 0x7f || c === 0x5c || c >= 0x80) { plain = false; break; }
  }
  if (plain) return b.toString('latin1');
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c === 0x5c) { out += '\\\\'; i++; continue; }
    if (c === 0x0a) { out += '\\n'; i++; continue; }
    if (c === 0x09) { out += '\\t'; i++; continue; }
    if (c < 0x20 || c === 0x7f) { out += hexByte(c); i++; continue; }
    if (c < 0x80) { out += String.fromCharCode(c); i++; continue; }
    // One UTF-8 sequence if it is valid (and not a C1 control), else the byte escaped.
    const len = c >> 5 === 6 ? 2 : c >> 4 === 14 ? 3 : c >> 3 === 30 ? 4 : 0;
    if (len > 0 && i + len <= b.length) {
      const piece = b.subarray(i, i + len);
      const t = piece.toString('utf8');
      const cp = t.codePointAt(0) ?? 0;
      if (!t.includes('\uFFFD') && Buffer.from(t, 'utf8').equals(piece) && !(cp >= 0x80 && cp < 0xa0)) {
        out += t;
        i += len;
        continue;
      }
    }
    out += hexByte(c);
    i++;
  }
  return out;
}

const hexByte = (c: number) => `\\x${c.toString(16).padStart(2, '0')}`;

/**
 * Temporary name for a file written in several chunks by several ranks: hidden, in the
 * same directory (so the final rename is atomic), short (a 255-byte name must still fit),
 * and stable for the same destination so a resumed job finds it again.
 */
export function partName(dstPath: Buffer): Buffer {
  const h = createHash('sha1').update(dstPath).digest('hex').slice(0, 20);
  return joinPath(dirName(dstPath), Buffer.from(`.fcp-part.${h}`));
}

export function compareBuffers(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

/** An entry's path in SRC and in DST. */
export const srcOf = (roots: Root[], e: Pick<Entry, 'r' | 'p'>) => joinPath(roots[e.r]!.src, e.p);
export const dstOf = (roots: Root[], e: Pick<Entry, 'r' | 'p'>) => joinPath(roots[e.r]!.dst, e.p);

/** Keys of a file and a directory within the job (root index and path), for maps and sets. */
export const fileKey = (e: Pick<Entry, 'r' | 'p'>) => `${e.r}:${e.p.toString('hex')}`;
export const dirKey = (r: number, p: Buffer): string => `${r}:${p.toString('hex')}`;

/** The path an error is about: the one the failing syscall named, else the given one. */
export function errPath(err: unknown, fallback: Buffer): Buffer | string {
  const p = (err as NodeJS.ErrnoException)?.path as unknown;
  return typeof p === 'string' || Buffer.isBuffer(p) ? (p as string | Buffer) : fallback;
}
