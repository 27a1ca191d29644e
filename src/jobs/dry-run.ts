/**
 * --dry-run: walk and decide, write nothing (no checkpoint, no lock, nothing in DST).
 *
 * Each rank looks at the entries it walked and says what the copy would do with each:
 *   copy    'dst'   not in DST yet
 *   update  'dst'   in DST but different (or any file, without --update)
 *   delete  'dst'   in DST only (with --delete)
 * and counts what --update would leave alone. Rank 0 prints the totals. The guards of
 * --delete (copy/delete-guards.ts) apply as in a real run: a refusal is said, with the exit
 * code the real run would have.
 */
import type { Runtime } from '../engine/runtime.js';
import { EntryErrors } from '../errors.js';
import { loadNative } from '../native/loader.js';
import { walkTask } from '../walk/walk-task.js';
import type { FileList } from '../walk/list-source.js';
import { WalkLists } from '../walk/walk-lists.js';
import type { Entry, Root } from '../model/entry.js';
import type { PathFilter } from '../walk/filter.js';
import { dstOf } from '../model/paths.js';
import { showPath } from '../model/paths.js';
import { deleteExtras } from '../copy/delete-extras.js';
import { guardAfterWalk, type MaxDelete } from '../copy/delete-guards.js';
import { EXIT } from '../engine/runtime.js';
import { formatBytes, formatCount } from '../progress/format.js';
import { Trees } from '../io/beneath.js';
import { sameByTime } from '../model/update-rule.js';

export interface DryRunOptions {
  roots: Root[];
  /** --files-from (walk/list-source.ts) */
  filesFrom?: FileList | null;
  update: false | 'time' | 'checksum';
  filter: PathFilter | null;
  deleteExtras: boolean;
  deleteFromEmpty: boolean;
  maxDelete: MaxDelete | null;
  /** entries a rank keeps in memory in each of --delete's lists before they spill */
  listBudget: number;
  json: boolean;
}

export interface DryRunSummary {
  dryRun: true;
  copy: number;
  update: number;
  upToDate: number;
  delete: number;
  /** why a real run would delete nothing (a guard), or null */
  deleteRefused: string | null;
  /** bytes the copy would write */
  bytes: number;
  excluded: number;
  errors: number;
}

export async function runDryRun(rt: Runtime, o: DryRunOptions): Promise<{ summary: DryRunSummary; exitCode: number }> {
  const errors = new EntryErrors('fcp');
  const lists = new WalkLists();
  const native = loadNative();
  const trees = new Trees(native, o.roots);
  const walk = await rt.runPhase(walkTask({ roots: o.roots, side: trees.src, lists, errors, uid: process.getuid?.() ?? 0, native, filter: o.filter, list: o.filesFrom }));
  const guard = o.deleteExtras ? await guardAfterWalk(rt, { roots: o.roots, filter: o.filter, walkErrors: errors.count, fromEmpty: o.deleteFromEmpty }) : null;
  const c = { copy: 0, update: 0, upToDate: 0, bytes: 0 };
  const say = (what: string, e: Entry) => process.stdout.write(`${what} '${showPath(dstOf(o.roots, e))}${e.k === 'd' ? '/' : ''}'\n`);
  for (const list of [lists.dirs(), lists.files(), lists.others()]) {
    for (const e of list) {
      const st = await trees.dst.lstat(dstOf(o.roots, e)).catch(() => null);
      if (!st) {
        c.copy++;
        if (e.k === 'f') c.bytes += e.m.size;
        say('copy', e);
      } else if (e.k === 'f') {
        // --update=checksum would read both sides; a dry run reads no content: size and
        // mtime tell what the time rule would skip, the rest is counted as an update.
        const same = sameByTime(e.m, st);
        if (o.update && same) c.upToDate++;
        else {
          c.update++;
          c.bytes += e.m.size;
          say('update', e);
        }
      }
    }
  }
  let deleted = 0;
  let deleteRefused = guard?.refused ?? null;
  if (o.deleteExtras && deleteRefused === null) {
    const d = await deleteExtras(rt, { roots: o.roots, trees, filter: o.filter, errors, native, dryRun: true, verbose: true, maxDelete: o.maxDelete, listBudget: o.listBudget });
    deleted = d.deleted;
    deleteRefused = d.refused;
  }
  trees.close();
  const t = await rt.allreduceCounters({ ...c, deleted, errors: errors.count });
  const summary: DryRunSummary = {
    dryRun: true, copy: t.copy ?? 0, update: t.update ?? 0, upToDate: t.upToDate ?? 0, delete: t.deleted ?? 0, deleteRefused,
    bytes: t.bytes ?? 0, excluded: walk.total.excluded ?? 0, errors: t.errors ?? 0,
  };
  if (rt.rank === 0 && !o.json) {
    process.stdout.write(`fcp: dry run: would copy ${formatCount(summary.copy)} entries, update ${formatCount(summary.update)} files ` +
      `(${formatBytes(summary.bytes)} to write), delete ${formatCount(summary.delete)}; ${formatCount(summary.upToDate)} up to date, ` +
      `${formatCount(summary.excluded)} excluded; nothing was written\n`);
  }
  if (rt.rank === 0 && deleteRefused !== null) process.stderr.write(`fcp: dry run: not deleting: ${deleteRefused}\n`);
  return { summary, exitCode: deleteRefused !== null ? EXIT.DELETE_REFUSED : summary.errors > 0 ? EXIT.ENTRIES_FAILED : EXIT.OK };
}
