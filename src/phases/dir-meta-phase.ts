/**
 * 7. directory metadata: deepest level first, a barrier between levels, so a directory's
 * times and mode are set after everything inside it is written. The last phase that
 * writes DST: the stall watch and the limits stop after it. Collective.
 */
import { forEachLimit } from '../util/for-each-limit.js';
import { metaOptions } from '../copy/copy-context.js';
import { dstOf, errPath, srcOf } from '../model/paths.js';
import { applyMeta } from '../copy/metadata.js';
import { dirMetaSame } from '../model/update-rule.js';
import { IN_FLIGHT, type CopyRun } from './run.js';
import type { Copied } from './copy-data-phase.js';
import type { Walked } from './walk-phase.js';

export async function dirMetaPhase(run: CopyRun, walked: Walked, { digests }: Copied): Promise<void> {
  const { rt, opts, roots, trees, throttle } = run;
  run.progress?.phase('dir metadata');
  const isNum = (x: unknown): x is number => typeof x === 'number';
  const maxDepth = walked.dirLevels !== null ? walked.dirLevels - 1 : await rt.collectives.allreduce<number>(run.lists.maxDirDepth(), Math.max, isNum);
  run.jobLimits.allRanks(); // every rank sets directories' metadata
  for (let depth = maxDepth; depth >= 0; depth--) {
    await forEachLimit(run.lists.dirsAtDepth(depth), IN_FLIGHT, async (d) => {
      if (throttle?.active) await throttle.take(0, 1);
      digests?.plain(d);
      const dst = dstOf(roots, d);
      try {
        await run.retrying(() => run.tracked('set metadata of', dst, async () => {
          // --update: a directory whose metadata is already right is left alone (one lstat).
          const rec = opts.update ? await trees.dst.lstatRecord(dst) : null;
          if (rec && dirMetaSame(d.m, rec, run.chown)) return;
          // The owner and mode it has: the mkdir phase may have given it the right ones
          // already. Otherwise what the kernel holds: no request (see cachedOwnerMode).
          const have = rec && rec[0] === 0 ? { mode: rec[1]!, uid: rec[2]!, gid: rec[3]! } : await trees.dst.cachedOwnerMode(dst).catch(() => null);
          await applyMeta(dst, d.m, { ...metaOptions(run, srcOf(roots, d)), have });
        }));
      } catch (err) {
        run.errors.report('set metadata of', errPath(err, dst), err); // the source, when it is what changed
      }
    });
    // The next level up waits for this one everywhere. After the last level, nothing
    // does: each rank makes its own writes durable, and the summary's collective follows.
    if (depth > 0) await rt.barrier();
  }
  run.inFlight?.stop();
  run.jobLimits.stop();
  run.mark('dir metadata');
}
