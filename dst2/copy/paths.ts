/**
 * Paths are bytes. Names on a POSIX file system may be any bytes but '/' and NUL, so
 * fcp carries every path as a Buffer and converts to text only to print it.
 */
import { createHash } from 'node:crypto';

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

/** Printable form: valid UTF-8 as is, other bytes as \xNN, so every path can be named exactly. */
export function showPath(p: Buffer | string): string {
  if (typeof p === 'string') return p;
  const s = p.toString('utf8');
  if (!s.includes('\uFFFD') && Buffer.from(s, 'utf8').equals(p)) return s;
  let out = '';
  let i = 0;
  while (i < p.length) {
    // Decode one UTF-8 sequence if valid, else escape the byte.
    const b = p[i]!;
    const len = b < 0x80 ? 1 : b >> 5 === 6 ? 2 : b >> 4 === 14 ? 3 : b >> 3 === 30 ? 4 : 0;
    if (len > 0 && i + len <= p.length) {
      const piece = p.subarray(i, i + len);
      const t = piece.toString('utf8');
      if (!t.includes('\uFFFD') && Buffer.from(t, 'utf8').equals(piece)) {
        out += t;
        i += len;
        continue;
      }
    }
    out += `\\x${b.toString(16).padStart(2, '0')}`;
    i++;
  }
  return out;
}

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
