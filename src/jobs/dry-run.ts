/**
 * --dry-run: walk and decide, write nothing (no checkpoint, no lock, nothing in DST).
 *
 * Each rank looks at the entries it walked and says what the copy would do with each:
 *   copy    'dst'   not in DST yet
 *   update  'dst'   in DST but different (or any file, without --update)
 *   delete  'dst'   in DST only (with --delete)
 * and counts what --update would leave alone. Rank 0 prints the totals.
 */
import type { Runtime } from '../engine/runtime.js';
import { EntryErrors } from '../errors.js';
import { loadNative } from '../native/loader.js';
import { walkTask } from '../walk/walk-task.js';
import { WalkLists } from '../walk/walk-lists.js';
import type { Entry, Root } from '../walk/entry.js';
import type { PathFilter } from '../walk/filter.js';
import { dstOf } from '../copy/copy-task.js';
import { showPath } from '../copy/paths.js';
import { deleteExtras } from '../copy/delete-extras.js';
import { formatBytes, formatCount } from '../progress/format.js';
import { Trees } from '../copy/beneath.js';

export interface DryRunOptions {
  roots: Root[];
  update: false | 'time' | 'checksum';
  filter: PathFilter | null;
  deleteExtras: boolean;
  json: boolean;
}

export interface DryRunSummary {
  dryRun: true;
  copy: number;
  update: number;
  upToDate: number;
  delete: number;
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
  const walk = await rt.runPhase(walkTask({ roots: o.roots, side: trees.src, lists, errors, uid: process.getuid?.() ?? 0, native, filter: o.filter }));
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
        const same = st.isFile() && st.size === e.m.size && st.mtimeNs === BigInt(e.m.mtime[0]) * 1_000_000_000n + BigInt(e.m.mtime[1]);
        if (o.update && same) c.upToDate++;
        else {
          c.update++;
          c.bytes += e.m.size;
          say('update', e);
        }
      }
    }
  }
  const deleted = o.deleteExtras ? await deleteExtras(rt, { roots: o.roots, trees, filter: o.filter, errors, native, dryRun: true, verbose: true }) : 0;
  trees.close();
  const t = await rt.allreduceCounters({ ...c, deleted, errors: errors.count });
  const summary: DryRunSummary = {
    dryRun: true, copy: t.copy ?? 0, update: t.update ?? 0, upToDate: t.upToDate ?? 0, delete: t.deleted ?? 0,
    bytes: t.bytes ?? 0, excluded: walk.total.excluded ?? 0, errors: t.errors ?? 0,
  };
  if (rt.rank === 0 && !o.json) {
    process.stdout.write(`fcp: dry run: would copy ${formatCount(summary.copy)} entries, update ${formatCount(summary.update)} files ` +
      `(${formatBytes(summary.bytes)} to write), delete ${formatCount(summary.delete)}; ${formatCount(summary.upToDate)} up to date, ` +
      `${formatCount(summary.excluded)} excluded; nothing was written\n`);
  }
  return { summary, exitCode: summary.errors > 0 ? 1 : 0 };
}
