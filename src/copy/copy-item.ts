/**
 * The copy phase's work items, as they travel between ranks (stolen, retried): a batch of
 * whole files, one chunk of a large file, or a batch of other entries (symlinks, FIFOs).
 * Plain data, validated on arrival; what each costs against --bwlimit/--max-ops.
 */
import { isEntry, type Entry } from '../model/entry.js';
import { Retries } from '../io/retry.js';

/** `a`: the try this item is (absent: the first; n: its n-th retry, see retry.ts). */
export type CopyItem =
  | { t: 'b'; f: Entry[]; a?: number }
  | { t: 'c'; f: Entry; o: number; l: number; a?: number }
  | { t: 'o'; e: Entry[]; a?: number };

/** Is x a copy item over `roots` roots (a message from another rank)? */
export function isCopyItem(x: unknown, roots: number): x is CopyItem {
  if (typeof x !== 'object' || x === null) return false;
  const i = x as Record<string, unknown>;
  const n = roots;
  if (!Retries.validAttempt(i.a)) return false;
  if (i.t === 'b') return Array.isArray(i.f) && i.f.every((e) => isEntry(e, n) && (e as Entry).k === 'f');
  if (i.t === 'o') return Array.isArray(i.e) && i.e.every((e) => isEntry(e, n) && (e as Entry).k !== 'f' && (e as Entry).k !== 'd');
  if (i.t === 'c') {
    return isEntry(i.f, n) && Number.isSafeInteger(i.o) && Number.isSafeInteger(i.l) && (i.o as number) >= 0 && (i.l as number) > 0
      && (i.o as number) + (i.l as number) <= (i.f as Entry).m.size;
  }
  return false;
}

/** The data bytes an item moves (what --bwlimit counts). */
export function itemBytes(item: CopyItem): number {
  if (item.t === 'c') return item.l;
  if (item.t === 'o') return 0;
  let n = 0;
  for (const e of item.f) n += e.m.size;
  return n;
}

/** The operations an item makes (what --max-ops counts): one per entry, one per chunk. */
export const itemOps = (item: CopyItem): number => (item.t === 'c' ? 1 : item.t === 'b' ? item.f.length : item.e.length);
