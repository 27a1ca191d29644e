/**
 * --delete: after the copy, remove what is in DST but not in SRC. Only below the copy's
 * own DST roots (DST itself, or DST/basename(SRC) for each SRC), only entries found by a
 * walk of DST that never follows a symlink, and only with the flag. Entries an --exclude
 * rule matches are protected (as rsync without --delete-excluded).
 *
 * DST is walked with the same distributed walk as SRC; each rank checks its share against
 * SRC (lstat: absent means extra) and removes the extras: files and links are unlinked,
 * directories removed with what is in them (every child is extra too).
 */
import { forEachLimit } from '../util/for-each-limit.js';
import type { Runtime } from '../engine/runtime.js';
import type { EntryErrors } from '../errors.js';
import type { NativeAddon } from '../native/loader.js';
import type { PathFilter } from '../walk/filter.js';
import { walkTask } from '../walk/walk-task.js';
import { WalkLists } from '../walk/walk-lists.js';
import type { Entry, Root } from '../walk/entry.js';
import { joinPath, showPath } from './paths.js';
import type { Trees } from './beneath.js';

export interface DeleteOptions {
  roots: Root[];
  /** SRC and DST beneath their anchors (beneath.ts): DST is walked, checked and cleaned through them */
  trees: Trees;
  filter: PathFilter | null;
  errors: EntryErrors;
  native: NativeAddon | null;
  /** only say what would go */
  dryRun: boolean;
  /** print one line per deleted entry */
  verbose: boolean;
}


/** Returns this rank's count of entries deleted (or, dry run, to delete). */
export async function deleteExtras(rt: Runtime, o: DeleteOptions): Promise<number> {
  const lists = new WalkLists();
  // A DST root that does not exist yet (dry run) simply has nothing to delete.
  const dstRoots: Root[] = o.roots.map((r) => ({ src: r.dst, dst: r.dst }));
  await rt.runPhase(walkTask({ roots: dstRoots, side: o.trees.dst, lists, errors: o.errors, uid: 0, native: o.native, filter: o.filter, optionalRoots: true }));
  let n = 0;
  const check = async (e: Entry) => {
    if (e.p.length === 0) return;
    const src = joinPath(o.roots[e.r]!.src, e.p);
    const dst = joinPath(o.roots[e.r]!.dst, e.p);
    const inSrc = await o.trees.src.lstat(src).then(() => true, (err: NodeJS.ErrnoException) => err.code !== 'ENOENT');
    if (inSrc) return;
    n++;
    if (o.dryRun || o.verbose) process.stdout.write(`${o.dryRun ? 'would delete' : 'deleted'} '${showPath(dst)}${e.k === 'd' ? '/' : ''}'\n`);
    if (o.dryRun) return;
    try {
      if (e.k === 'd') await o.trees.dst.removeTree(dst);
      else await o.trees.dst.unlink(dst);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') o.errors.report('delete', dst, err);
    }
  };
  // Files and links first, then directories: a directory's extras are gone before it is.
  await forEachLimit(lists.files(), 16, check);
  await forEachLimit(lists.others(), 16, check);
  await forEachLimit([...lists.dirs()].sort((a, b) => b.p.length - a.p.length), 16, check);
  await rt.barrier();
  return n;
}
