/**
 * The copy phase's work items, as they travel between ranks (stolen, retried): a batch of
 * whole files, one chunk of a large file, or a batch of other entries (symlinks, FIFOs).
 * Plain data, validated on arrival; what each costs against --bwlimit/--max-ops.
 */
import { hasDotDot, isBuf, isEntry, type Entry } from '../model/entry.js';
import { doublesView, PACKED_NUMS } from '../model/file-run.js';
import { Retries } from '../io/retry.js';

/**
 * `a`: the try this item is (absent: the first; n: its n-th retry, see retry.ts).
 * 'p' is a batch of plain whole files packed as copyFiles takes them (model/file-run.ts):
 * `p` their paths relative to their roots, `n` PACKED_NUMS doubles each, as bytes.
 */
export type CopyItem =
  | { t: 'b'; f: Entry[]; a?: number }
  | { t: 'p'; p: Buffer[]; n: Buffer; a?: number }
  | { t: 'c'; f: Entry; o: number; l: number; a?: number }
  | { t: 'o'; e: Entry[]; a?: number };

/** Is x a copy item over `roots` roots (a message from another rank)? */
export function isCopyItem(x: unknown, roots: number): x is CopyItem {
  if (typeof x !== 'object' || x === null) return false;
  const i = x as Record<string, unknown>;
  const n = roots;
  if (!Retries.validAttempt(i.a)) return false;
  if (i.t === 'b') return Array.isArray(i.f) && i.f.every((e) => isEntry(e, n) && (e as Entry).k === 'f');
  if (i.t === 'p') return isPackedFiles(i.p, i.n, n);
  if (i.t === 'o') return Array.isArray(i.e) && i.e.every((e) => isEntry(e, n) && (e as Entry).k !== 'f' && (e as Entry).k !== 'd');
  if (i.t === 'c') {
    return isEntry(i.f, n) && Number.isSafeInteger(i.o) && Number.isSafeInteger(i.l) && (i.o as number) >= 0 && (i.l as number) > 0
      && (i.o as number) + (i.l as number) <= (i.f as Entry).m.size;
  }
  return false;
}

/** Paths inside their roots, and for each whole integers in the ranges copyFiles accepts. */
function isPackedFiles(p: unknown, bytes: unknown, roots: number): boolean {
  if (!Array.isArray(p) || p.length === 0 || !isBuf(bytes) || bytes.byteLength !== p.length * PACKED_NUMS * 8) return false;
  if (!p.every((x) => isBuf(x) && x.length > 0 && !hasDotDot(x) && !x.includes(0))) return false;
  const nums = doublesView(bytes);
  for (let o = 0; o < nums.length; o += PACKED_NUMS) {
    const r = nums[o]!;
    if (!Number.isInteger(r) || r < 0 || r >= roots) return false;
    for (let k = 1; k < PACKED_NUMS; k++) if (!Number.isSafeInteger(nums[o + k])) return false;
    if (nums[o + 1]! < 0 || nums[o + 6]! < 0 || nums[o + 6]! >= 1e9 || nums[o + 8]! < 0 || nums[o + 8]! >= 1e9) return false;
  }
  return true;
}

/** The data bytes an item moves (what --bwlimit counts). */
export function itemBytes(item: CopyItem): number {
  if (item.t === 'c') return item.l;
  if (item.t === 'o') return 0;
  if (item.t === 'p') {
    const nums = doublesView(item.n);
    let n = 0;
    for (let o = 1; o < nums.length; o += PACKED_NUMS) n += nums[o]!;
    return n;
  }
  let n = 0;
  for (const e of item.f) n += e.m.size;
  return n;
}

/** The operations an item makes (what --max-ops counts): one per entry, one per chunk. */
export const itemOps = (item: CopyItem): number => (item.t === 'c' ? 1 : item.t === 'b' ? item.f.length : item.t === 'p' ? item.p.length : item.e.length);
