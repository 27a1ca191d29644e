/**
 * The lines of a --files-from list, read as a stream (a list may hold 100 million lines:
 * it is never read whole). Lines are bytes: a name need not be UTF-8, and with NUL as the
 * separator (--from0) a name may hold a newline.
 */
import type { Readable } from 'node:stream';

/** Longer than PATH_MAX: no path can be that long, and it keeps a separator-less file from filling memory. */
export const MAX_LINE = 4096;

export type ListLine =
  | { no: number; line: Buffer }
  | { no: number; tooLong: true };

/**
 * The list's lines (without the separator; the last one may lack it), lazily: the stream
 * is read only as fast as the lines are taken.
 */
export async function* listLines(input: Readable, sep: 0 | 10): AsyncGenerator<ListLine> {
  let carry: Buffer[] = [];
  let carryLen = 0;
  let tooLong = false;
  let no = 0;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    let s = 0;
    for (;;) {
      const e = chunk.indexOf(sep, s);
      if (e < 0) break;
      no++;
      if (tooLong || carryLen + (e - s) > MAX_LINE) yield { no, tooLong: true };
      else yield { no, line: carryLen > 0 ? Buffer.concat([...carry, chunk.subarray(s, e)]) : Buffer.from(chunk.subarray(s, e)) };
      carry = [];
      carryLen = 0;
      tooLong = false;
      s = e + 1;
    }
    if (s < chunk.length && !tooLong) {
      carry.push(Buffer.from(chunk.subarray(s)));
      carryLen += chunk.length - s;
      // Past any possible path: drop what is held, skip on to the next separator.
      if (carryLen > MAX_LINE) {
        tooLong = true;
        carry = [];
        carryLen = 0;
      }
    }
  }
  if (tooLong) yield { no: no + 1, tooLong: true };
  else if (carryLen > 0) yield { no: no + 1, line: Buffer.concat(carry) };
}

export type ListPath =
  | { kind: 'path'; p: Buffer }
  | { kind: 'blank' }
  | { kind: 'dotdot' };

/**
 * One line as a path relative to SRC, as rsync takes --files-from lines: leading '/' and
 * './' are relative to SRC, empty and '.' components are dropped ('a//./b/' is 'a/b');
 * a '..' component is refused (it could leave SRC). '' (from '.' or '/') is SRC itself.
 */
export function listPath(line: Buffer): ListPath {
  if (line.length === 0) return { kind: 'blank' };
  const parts: Buffer[] = [];
  let s = 0;
  for (let i = 0; i <= line.length; i++) {
    if (i < line.length && line[i] !== 0x2f) continue;
    const n = line.subarray(s, i);
    s = i + 1;
    if (n.length === 0 || (n.length === 1 && n[0] === 0x2e)) continue;
    if (n.length === 2 && n[0] === 0x2e && n[1] === 0x2e) return { kind: 'dotdot' };
    parts.push(n);
  }
  if (parts.length === 1) return { kind: 'path', p: Buffer.from(parts[0]!) };
  const out = Buffer.allocUnsafe(parts.reduce((a, b) => a + b.length, 0) + Math.max(0, parts.length - 1));
  let o = 0;
  parts.forEach((n, i) => {
    if (i > 0) out[o++] = 0x2f;
    o += n.copy(out, o);
  });
  return { kind: 'path', p: out };
}
