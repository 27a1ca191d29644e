/**
 * What differs between a reference set of records (a sum file, or tree A) and a fresh
 * one (the PATH given to --check, or tree B): missing and extra entries, and for entries
 * on both sides which aspects differ, with the byte ranges of the differing chunks for
 * content differences.
 */
import { showPath } from '../model/paths.js';
import { compareRecords, type SumRecord } from './records.js';

export interface Difference {
  /** missing: in the reference only; extra: in the fresh set only; unreadable: could not be hashed now */
  kind: 'missing' | 'extra' | 'differs' | 'unreadable';
  r: number;
  p: Buffer;
  /** for 'differs': the aspects, e.g. 'type f -> l', 'size 10 -> 12', 'content', 'target', 'mode 0644 -> 0600' */
  what: string[];
  /** for content differences: inclusive byte ranges [first, last] of the differing chunks */
  ranges: [number, number][];
}

const key = (x: SumRecord) => `${x.r}:${x.p.toString('hex')}`;
const oct = (m: number) => (m & 0o7777).toString(8).padStart(4, '0');
const ts = (t: [number, number]) => `${t[0]}.${String(t[1]).padStart(9, '0')}`;

/** Inclusive ranges of the chunks whose digests differ, adjacent ranges merged. */
export function differingRanges(a: SumRecord, b: SumRecord): [number, number][] {
  type C = [number, number, string | null];
  const chunksOf = (x: SumRecord): C[] => x.chunks ?? ((x.size ?? 0) > 0 ? [[0, x.size!, null]] : []);
  const ca = new Map(chunksOf(a).map((c) => [c[0], c]));
  const cb = new Map(chunksOf(b).map((c) => [c[0], c]));
  const offsets = [...new Set([...ca.keys(), ...cb.keys()])].sort((x, y) => x - y);
  const out: [number, number][] = [];
  for (const o of offsets) {
    const x = ca.get(o);
    const y = cb.get(o);
    const same = x && y && x[2] !== null && y[2] !== null && x[1] === y[1] && x[2] === y[2];
    if (same) continue;
    const end = o + Math.max(x?.[1] ?? 0, y?.[1] ?? 0) - 1;
    const last = out[out.length - 1];
    if (last && last[1] + 1 >= o) last[1] = Math.max(last[1], end);
    else out.push([o, end]);
  }
  // two single-chunk files with different content digests but equal (null) chunk digests
  if (out.length === 0 && Math.max(a.size ?? 0, b.size ?? 0) > 0) out.push([0, Math.max(a.size ?? 0, b.size ?? 0) - 1]);
  return out;
}

/** What differs between the records of one entry in the reference (a) and now (b); null: nothing. */
export function diffPair(a: SumRecord, b: SumRecord): Difference | null {
  if (b.err) return { kind: 'unreadable', r: b.r, p: b.p, what: [], ranges: [] };
  if (a.dig === b.dig && a.r === b.r) return null;
  const what: string[] = [];
  let ranges: [number, number][] = [];
  if (a.k !== b.k) what.push(`type ${a.k} -> ${b.k}`);
  else {
    if (a.size !== b.size) what.push(`size ${a.size} -> ${b.size}`);
    if (a.content !== b.content) {
      if (a.k === 'l') what.push('target');
      else {
        what.push('content');
        ranges = differingRanges(a, b);
      }
    }
  }
  if (a.meta && b.meta) {
    if ((a.meta.mode & 0o7777) !== (b.meta.mode & 0o7777)) what.push(`mode ${oct(a.meta.mode)} -> ${oct(b.meta.mode)}`);
    if (a.meta.uid !== b.meta.uid || a.meta.gid !== b.meta.gid) what.push(`owner ${a.meta.uid}:${a.meta.gid} -> ${b.meta.uid}:${b.meta.gid}`);
    if (a.meta.mtime[0] !== b.meta.mtime[0] || a.meta.mtime[1] !== b.meta.mtime[1]) what.push(`mtime ${ts(a.meta.mtime)} -> ${ts(b.meta.mtime)}`);
  }
  // Digests of equal fields are equal; anything else is a difference we cannot name.
  if (what.length === 0 && a.dig !== b.dig) what.push('digest');
  return what.length > 0 ? { kind: 'differs', r: b.r, p: b.p, what, ranges } : null;
}

const missing = (a: SumRecord): Difference => ({ kind: 'missing', r: a.r, p: a.p, what: [], ranges: [] });
const extra = (b: SumRecord): Difference => ({ kind: b.err ? 'unreadable' : 'extra', r: b.r, p: b.p, what: [], ranges: [] });

/** The differences between two sets of records held in memory, sorted by root and path. */
export function diffRecords(ref: SumRecord[], now: SumRecord[]): Difference[] {
  const byKey = new Map(now.map((x) => [key(x), x]));
  const out: Difference[] = [];
  for (const a of ref) {
    const k = key(a);
    const b = byKey.get(k);
    if (!b) {
      out.push(missing(a));
      continue;
    }
    byKey.delete(k);
    const d = diffPair(a, b);
    if (d) out.push(d);
  }
  for (const b of byKey.values()) out.push(extra(b));
  return out.sort((x, y) => compareRecords(x as unknown as SumRecord, y as unknown as SumRecord));
}

/**
 * The same differences as diffRecords, from two streams each sorted by (root, path)
 * with no key twice (a merge join): yielded in that order, one record of each side held.
 */
export function* diffSorted(ref: Iterable<SumRecord>, now: Iterable<SumRecord>): Generator<Difference> {
  const ia = ref[Symbol.iterator]();
  const ib = now[Symbol.iterator]();
  try {
    let a = ia.next();
    let b = ib.next();
    while (!a.done || !b.done) {
      const c = a.done ? 1 : b.done ? -1 : compareRecords(a.value, b.value);
      if (c < 0) {
        yield missing(a.value as SumRecord);
        a = ia.next();
      } else if (c > 0) {
        yield extra(b.value as SumRecord);
        b = ib.next();
      } else {
        const d = diffPair(a.value as SumRecord, b.value as SumRecord);
        if (d) yield d;
        a = ia.next();
        b = ib.next();
      }
    }
  } finally {
    ia.return?.();
    ib.return?.();
  }
}

/** One line per difference: `differs 'DIR/file': content: bytes 0-99 differ`. */
export function formatDifference(d: Difference, shownPath: (r: number, p: Buffer) => Buffer): string {
  const path = `'${showPath(shownPath(d.r, d.p))}'`;
  if (d.kind !== 'differs') return `${d.kind} ${path}`;
  const what = d.what.map((w) => (w === 'content' && d.ranges.length > 0 ? `content: ${d.ranges.map(([a, b]) => `bytes ${a}-${b}`).join(', ')} differ` : w));
  return `differs ${path}: ${what.join('; ')}`;
}
