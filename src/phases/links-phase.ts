/**
 * 6. hard links: each extra name of a hard-linked file is linked to its primary's copy;
 * only a regular file of that name is replaced. First the signature gets the secondaries'
 * share from their groups' owners (every primary's digest is known by now). Collective.
 */
import { forEachLimit } from '../util/for-each-limit.js';
import { dstOf } from '../model/paths.js';
import { sumSecondaries } from '../copy/link-digests.js';
import { ACTION } from '../report/report-part.js';
import { IN_FLIGHT, type CopyRun } from './run.js';
import type { Plan } from './plan-phase.js';
import type { Copied } from './copy-data-phase.js';

export async function linksPhase(run: CopyRun, { links }: Plan, { digests }: Copied): Promise<void> {
  const { rt, roots, trees, errors, report } = run;
  // No rank found a hard-linked file (the plan knew it from the walk's totals).
  if (links.none) {
    run.mark('links');
    return;
  }
  if (digests) await sumSecondaries(rt, links, digests);
  run.progress?.phase('links');
  await forEachLimit(links.secondaries(), IN_FLIGHT, async (e) => {
    const target = dstOf(roots, e.primary);
    const dst = dstOf(roots, e);
    try {
      await run.retrying(async () => {
        try {
          await trees.dst.link(target, dst);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !(await trees.dst.lstat(dst)).isFile()) throw err;
          await trees.dst.unlink(dst);
          await trees.dst.link(target, dst);
        }
      });
      report?.add(ACTION.linked, e.r, e.p);
    } catch (err) {
      errors.report('link', dst, err);
    }
  });
  await rt.barrier();
  run.mark('links');
}
