/**
 * 3. mkdir: every directory, owner-only mode for now (so read-only ones can be filled;
 * their modes and times are set last, see dir-meta-phase.ts). Order-free: a recursive
 * mkdir creates missing parents. Work stealing over batches of directories. Collective.
 */
import { forEachLimit } from '../util/for-each-limit.js';
import type { PhaseResult, Task } from '../engine/task.js';
import type { EntryErrors } from '../errors.js';
import type { WalkLists } from '../walk/walk-lists.js';
import { isBuf, type Entry, type Root } from '../model/entry.js';
import { batches } from '../copy/plan.js';
import { dirKey, dstOf, errPath, srcOf } from '../model/paths.js';
import { Trees, copyLayoutBeneath } from '../io/beneath.js';
import type { Layout } from '../copy/layout.js';
import { ACTION, type ReportPart } from '../report/report-part.js';
import type { Throttle } from '../limits/throttle.js';
import type { CopyRun } from './run.js';
import type { Walked } from './walk-phase.js';

export async function mkdirPhase(run: CopyRun, walked: Walked): Promise<PhaseResult> {
  run.progress?.phase('mkdir');
  const tracked: Tracked = (op, path, fn) => run.retrying(() => run.tracked(op, path, fn));
  const mk = await run.rt.runPhase(mkdirTask(run.lists, run.roots, run.trees, run.errors, tracked, run.layout.copy ? run.layout : null, run.report, walked.dstDirs, run.throttle));
  run.mark('mkdir');
  return mk;
}

type Tracked = <T>(op: string, path: Buffer, fn: () => Promise<T>) => Promise<T>;

/** `existing`: directories DST had when walked (--update): nothing to create. layout: --layout copy (copy/layout.ts): each directory gets its source's default layout, before anything is created in it. */
function mkdirTask(lists: WalkLists, roots: Root[], trees: Trees, errors: EntryErrors, tracked: Tracked, layout: Layout | null, report: ReportPart | null, existing: Set<string> | null, throttle: Throttle | null): Task<Entry[]> {
  return {
    name: 'mkdir',
    concurrency: 4,
    seed() {},
    source: () => batches(lists.dirs(), () => 0, 128),
    ready: throttle ? () => (throttle.active ? throttle.idle() : null) : undefined,
    async process(list, ctx) {
      if (throttle?.active) await throttle.take(0, list.length); // one operation per directory (--max-ops)
      await forEachLimit(list, 8, async (d) => {
        if (existing?.has(dirKey(d.r, d.p))) {
          ctx.count('dirs');
          report?.add(ACTION.upToDate, d.r, d.p);
          return;
        }
        const dst = dstOf(roots, d);
        try {
          let existed = false;
          const st = await tracked('create of directory', dst, async () => {
            // --report: created or there already (one lstat more, only with --report)
            if (report) existed = await trees.dst.lstat(dst).then(() => true, () => false);
            await trees.dst.mkdir(dst, 0o700, true);
            return trees.dst.lstat(dst);
          });
          if (!st.isDirectory()) throw Object.assign(new Error('exists and is not a directory'), { code: 'EEXIST' });
          report?.add(existed ? ACTION.upToDate : ACTION.copied, d.r, d.p);
          ctx.count('dirs');
          if (layout && trees.native) {
            await tracked('set layout of', dst, () => copyLayoutBeneath(trees.native!, trees.src, srcOf(roots, d), trees.dst, dst, layout.name)).catch((err) => {
              errors.report('set layout of', errPath(err, dst), err);
              ctx.count('errors');
            });
          }
        } catch (err) {
          errors.report('create directory', dst, err);
          ctx.count('errors');
        }
      });
    },
    isItem: (x): x is Entry[] => Array.isArray(x) && x.every((e) => typeof e === 'object' && e !== null && (e as Entry).k === 'd' && isBuf((e as Entry).p)),
  };
}
