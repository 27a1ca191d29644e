/**
 * The guards of --delete: when deleting would be a mistake, nothing is deleted. As dsync
 * and rsync users expect:
 * - the walk of SRC had an error (dsync's rule): an unreadable directory looks empty, so
 *   everything below it in DST would look extra. The copy goes on; the delete is skipped.
 * - a SRC root is an empty directory and its DST is not: an unmounted file system or a
 *   wrong path looks like "nothing should be there". Decided right after the walk, so the
 *   job is refused before anything is written (--delete-from-empty allows it).
 * - more would be deleted than --max-delete allows (N entries, or P% of the entries the
 *   delete walk found in DST): counted over all ranks before anything is deleted.
 *
 * This module only decides; copy/delete-extras.ts counts and deletes.
 */
import { promises as fsp } from 'node:fs';
import type { Runtime } from '../engine/runtime.js';
import type { Root } from '../model/entry.js';
import type { PathFilter } from '../walk/filter.js';
import { showPath } from '../model/paths.js';

/** --max-delete N (entries) or P% (of the entries found in DST below the copy's roots). */
export type MaxDelete = { kind: 'count'; n: number } | { kind: 'percent'; p: number };

/** Parse `N` or `P%` (P a decimal number from 0 to 100); throws with a message for the user. */
export function parseMaxDelete(v: string): MaxDelete {
  const pct = /^(\d+(?:\.\d{1,6})?)%$/.exec(v);
  if (pct) {
    const p = Number(pct[1]);
    if (p <= 100) return { kind: 'percent', p };
  } else if (/^\d+$/.test(v) && Number.isSafeInteger(Number(v))) {
    return { kind: 'count', n: Number(v) };
  }
  throw new Error(`--max-delete must be a number of entries (100) or a percentage of DST's entries (10%), not '${v}'`);
}

export function showMaxDelete(m: MaxDelete): string {
  return m.kind === 'count' ? String(m.n) : `${m.p}%`;
}

/** The refusal for `wouldDelete` extras out of `dstEntries` entries in DST, or null when within the limit. */
export function overLimit(wouldDelete: number, dstEntries: number, m: MaxDelete): string | null {
  // The percent form in integers (millionths of a percent): 10% of 30 entries allows exactly 3.
  const over = m.kind === 'count'
    ? wouldDelete > m.n
    : BigInt(wouldDelete) * 100_000_000n > BigInt(Math.round(m.p * 1e6)) * BigInt(dstEntries);
  if (!over) return null;
  const of = m.kind === 'percent' ? ` of the ${dstEntries} entries in DST` : '';
  return `${wouldDelete} entr${wouldDelete === 1 ? 'y' : 'ies'} would be deleted, more than --max-delete ${showMaxDelete(m)}${of}`;
}

export interface WalkGuardOptions {
  roots: Root[];
  filter: PathFilter | null;
  /** this rank's count of errors so far (the walk of SRC is the first thing that reports any) */
  walkErrors: number;
  /** --delete-from-empty */
  fromEmpty: boolean;
}

export interface WalkGuard {
  /** why nothing will be deleted (without the leading 'not deleting: '), or null */
  refused: string | null;
  /** the refusal comes before the copy: nothing at all is to be written */
  beforeCopy: boolean;
}

/**
 * The guards the walk of SRC decides. Collective: every rank calls it after the walk and
 * gets the same answer (errors summed over the ranks; the empty-source check is rank 0's).
 */
export async function guardAfterWalk(rt: Runtime, o: WalkGuardOptions): Promise<WalkGuard> {
  const n = (await rt.allreduceCounters({ walkErrors: o.walkErrors })).walkErrors ?? 0;
  if (n > 0) return { refused: `the walk of SRC had ${n} error${n === 1 ? '' : 's'}`, beforeCopy: false };
  if (o.fromEmpty) return { refused: null, beforeCopy: false };
  const isRefusal = (x: unknown): x is { why: string | null } => typeof x === 'object' && x !== null && (typeof (x as { why: unknown }).why === 'string' || (x as { why: unknown }).why === null);
  const { why } = await rt.collectives.bcast(rt.rank === 0 ? { why: await emptySourceRefusal(o.roots, o.filter) } : null, isRefusal);
  return { refused: why, beforeCopy: why !== null };
}

/** Is some root's SRC an empty directory while its DST has something --delete would remove? */
async function emptySourceRefusal(roots: Root[], filter: PathFilter | null): Promise<string | null> {
  for (const r of roots) {
    const st = await fsp.lstat(r.src).catch(() => null);
    if (!st?.isDirectory() || (await firstEntry(r.src, null)) !== false) continue;
    if ((await firstEntry(r.dst, filter)) === false) continue;
    return `SRC '${showPath(r.src)}' is empty and DST '${showPath(r.dst)}' is not; nothing was copied (--delete-from-empty deletes everything in DST)`;
  }
  return null;
}

/**
 * Does directory `dir` have an entry (one the filter does not exclude)? Reads only until
 * the first. false: none, or no such directory; null: it cannot be read (taken as not
 * empty on the DST side: refusing is the safe answer; the walk reports SRC's errors).
 */
async function firstEntry(dir: Buffer, filter: PathFilter | null): Promise<boolean | null> {
  let d;
  try {
    d = await fsp.opendir(dir, { encoding: 'buffer' as BufferEncoding, bufferSize: 32 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? false : null;
  }
  try {
    for (;;) {
      const e = await d.read();
      if (!e) return false;
      // At the top level every entry not excluded is extra when SRC is empty.
      if (!filter?.excludes(e.name as unknown as Buffer, e.isDirectory())) return true;
    }
  } catch {
    return null;
  } finally {
    await d.close().catch(() => {});
  }
}
