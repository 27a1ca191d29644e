/**
 * A copy, top-down: the phases in order, a collective between each (as mpiFileUtils'
 * dcp). Each phase is a module of src/phases/ with one entry function over the run
 * object (phases/run.ts: options, roots, anchors, checkpoint, lists, errors, limits...);
 * what one phase hands on to the next is its return value.
 *
 *   0. setup         report parts, checkpoint (on --resume, what earlier runs did), limits
 *   1. walk          distributed; lists spill to the rank's SQLite store; unless the job
 *                    rules it out, it also makes the directories it finds and copies their
 *                    small plain files as it goes (phases/walk-copy.ts)
 *      guards        --delete's guards the walk decides (may refuse the job: nothing written)
 *   2. plan          chunk size, hard-link groups
 *   3. mkdir         every directory the walk did not make, owner-only mode for now (so
 *                    read-only ones can be filled)
 *   4. copy data     whole files, chunks of large files, symlinks and FIFOs (work stealing);
 *                    what an earlier run finished is skipped
 *   5. finish        owners give large files their metadata and rename them into place
 *   6. links         extra names of hard-linked files
 *   6b. delete       --delete: what DST has and SRC has not
 *   7. dir metadata  deepest level first, so a directory's times and mode are set after
 *                    everything inside it is written
 *   8. verify        --verify: re-read DST, compare with what was read from SRC
 *   9. summary       signature, report, sync, counters; the checkpoint's fate
 */
import type { Runtime } from '../engine/runtime.js';
import type { CopyJobOptions, CopyJobResult } from '../phases/copy-options.js';
import { setupRun } from '../phases/run.js';
import { walkPhase } from '../phases/walk-phase.js';
import { deleteGuardPhase } from '../phases/delete-guard-phase.js';
import { planPhase } from '../phases/plan-phase.js';
import { mkdirPhase } from '../phases/mkdir-phase.js';
import { copyDataPhase } from '../phases/copy-data-phase.js';
import { finishLargePhase } from '../phases/finish-phase.js';
import { linksPhase } from '../phases/links-phase.js';
import { deletePhase } from '../phases/delete-phase.js';
import { dirMetaPhase } from '../phases/dir-meta-phase.js';
import { verifyPhase } from '../phases/verify-phase.js';
import { summaryPhase } from '../phases/summary-phase.js';

export type { CopyJobOptions, CopyJobResult } from '../phases/copy-options.js';
export type { CopySummary } from './copy-summary.js';

export async function runCopyJob(rt: Runtime, opts: CopyJobOptions): Promise<CopyJobResult> {
  const run = await setupRun(rt, opts);
  const walked = await walkPhase(run);
  const guard = await deleteGuardPhase(run, walked);
  if (guard.stop) return guard.stop;
  const plan = await planPhase(run, walked);
  const mkdir = await mkdirPhase(run, walked);
  const copied = await copyDataPhase(run, walked, plan);
  const finishedFiles = await finishLargePhase(run, plan, copied);
  await linksPhase(run, plan, copied);
  const deleted = await deletePhase(run, guard.refused);
  await dirMetaPhase(run, walked, copied);
  const verifyMismatches = await verifyPhase(run, plan, copied);
  return summaryPhase(run, { walked, plan, mkdir, copied, finishedFiles, deleted, verifyMismatches });
}
