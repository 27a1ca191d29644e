/**
 * --delete: after the copy, remove what is in DST but not in SRC. Only below the copy's
 * own DST roots (DST itself, or DST/basename(SRC) for each SRC), only entries found by a
 * walk of DST that never follows a symlink, and only with the flag. Entries an --exclude
 * rule matches are protected (as rsync without --delete-excluded).
 *
 * DST is walked with the same distributed walk as SRC; each rank checks its share against
 * SRC (lstat: absent means extra) and removes the extras: files and links are unlinked,
 * then directories (every child of an extra directory is extra too) removed when empty.
 *
 * Count, then delete (the --max-delete guard, copy/delete-guards.ts): the extras are
 * counted over all ranks before any is removed, and each rank keeps its extras in a list
 * that spills to a scratch store like the walk's, so a huge DST is not held in memory.
 * Exactly the entries counted are deleted.
 */
import { forEachLimit } from '../util/for-each-limit.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RankStore } from '../checkpoint/rank-store.js';
import { overLimit, type MaxDelete } from './delete-guards.js';
import type { Runtime } from '../engine/runtime.js';
import type { EntryErrors } from '../errors.js';
import type { NativeAddon } from '../native/loader.js';
import type { PathFilter } from '../walk/filter.js';
import { walkTask } from '../walk/walk-task.js';
import { WalkLists } from '../walk/walk-lists.js';
import type { Entry, Root } from '../model/entry.js';
import { joinPath, showPath } from '../model/paths.js';
import type { Trees } from '../io/beneath.js';
import { ACTION, type ReportPart } from '../report/report-part.js';

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
  /** --max-delete: nothing is deleted when more would be */
  maxDelete: MaxDelete | null;
  /** entries a rank keeps in memory (each of its two lists) before they spill to a scratch store */
  listBudget: number;
  /** --report: each deleted entry is reported */
  report?: ReportPart | null;
}

export interface DeleteResult {
  /** this rank's count of entries deleted (refused: 0; dry run: listed as 'would delete', refused or not) */
  deleted: number;
  /** the --max-delete refusal (the same on every rank), or null */
  refused: string | null;
}

/** Collective: every rank calls it. */
export async function deleteExtras(rt: Runtime, o: DeleteOptions): Promise<DeleteResult> {
  const dir = mkdtempSync(join(tmpdir(), 'fcp-delete-'));
  rt.addAbortHook(() => rmSync(dir, { recursive: true, force: true }));
  const stores = [new RankStore(join(dir, 'dst.db')), new RankStore(join(dir, 'extras.db'))] as const;
  try {
    return await countThenDelete(rt, o, new WalkLists(stores[0], o.listBudget), new WalkLists(stores[1], o.listBudget));
  } finally {
    for (const s of stores) s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function countThenDelete(rt: Runtime, o: DeleteOptions, lists: WalkLists, extras: WalkLists): Promise<DeleteResult> {
  // A DST root that does not exist yet (dry run) simply has nothing to delete.
  const dstRoots: Root[] = o.roots.map((r) => ({ src: r.dst, dst: r.dst }));
  await rt.runPhase(walkTask({ roots: dstRoots, side: o.trees.dst, lists, errors: o.errors, uid: 0, native: o.native, filter: o.filter, optionalRoots: true }));
  let seen = 0;
  let mine = 0;
  const count = async (e: Entry) => {
    if (e.p.length === 0) return;
    seen++;
    const src = joinPath(o.roots[e.r]!.src, e.p);
    const inSrc = await o.trees.src.lstat(src).then(() => true, (err: NodeJS.ErrnoException) => err.code !== 'ENOENT');
    if (inSrc) return;
    extras.add(e);
    mine++;
    if (o.dryRun) process.stdout.write(`would delete '${showPath(joinPath(o.roots[e.r]!.dst, e.p))}${e.k === 'd' ? '/' : ''}'\n`);
  };
  await forEachLimit(lists.files(), 16, count);
  await forEachLimit(lists.others(), 16, count);
  await forEachLimit(lists.dirs(), 16, count);
  const t = await rt.allreduceCounters({ seen, extras: mine });
  const refused = o.maxDelete ? overLimit(t.extras ?? 0, t.seen ?? 0, o.maxDelete) : null;
  if (refused || o.dryRun) return { deleted: o.dryRun ? mine : 0, refused };

  let deleted = 0;
  const remove = async (e: Entry) => {
    const dst = joinPath(o.roots[e.r]!.dst, e.p);
    try {
      if (e.k === 'd') await o.trees.dst.rmdir(dst);
      else await o.trees.dst.unlink(dst);
      deleted++;
      o.report?.add(ACTION.deleted, e.r, e.p);
      if (o.verbose) process.stdout.write(`deleted '${showPath(dst)}${e.k === 'd' ? '/' : ''}'\n`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Not empty: it holds what was not counted (excluded entries, or something written
      // since the walk), and only what was counted goes. Gone already: nothing to do.
      if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') o.errors.report('delete', dst, err);
    }
  };
  // Files and links first, then directories deepest level first, a barrier between levels
  // (a directory's extras may be on any rank): each is empty by the time it is removed.
  await forEachLimit(extras.files(), 16, remove);
  await forEachLimit(extras.others(), 16, remove);
  await rt.barrier();
  const isNum = (x: unknown): x is number => typeof x === 'number';
  const maxDepth = await rt.collectives.allreduce<number>(extras.maxDirDepth(), Math.max, isNum);
  for (let depth = maxDepth; depth >= 1; depth--) {
    await forEachLimit(extras.dirsAtDepth(depth), 16, remove);
    await rt.barrier();
  }
  return { deleted, refused: null };
}
