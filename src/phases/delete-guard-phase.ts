/**
 * --delete's guards that the walk decides (copy/delete-guards.ts): an empty SRC refuses
 * the whole job here, before anything is written; walk errors skip the delete phase only.
 * Collective.
 */
import { EXIT } from '../engine/runtime.js';
import type { Counters } from '../transport/messages.js';
import type { DropCounts } from '../transport/codec.js';
import { guardAfterWalk } from '../copy/delete-guards.js';
import { reportDrops } from '../jobs/report-drops.js';
import type { CopySummary } from '../jobs/copy-summary.js';
import type { CopyJobResult } from './copy-options.js';
import { closeStores, type CopyRun } from './run.js';
import type { Walked } from './walk-phase.js';

export interface DeleteGuard {
  /** why --delete deletes nothing (said at the delete phase); null: it may delete */
  refused: string | null;
  /** the job's end when refused before the copy: nothing was written */
  stop: CopyJobResult | null;
}

export async function deleteGuardPhase(run: CopyRun, walked: Walked): Promise<DeleteGuard> {
  const { rt, opts, errors } = run;
  if (!opts.deleteExtras) return { refused: null, stop: null };
  const guard = await guardAfterWalk(rt, { roots: run.roots, filter: opts.filter, walkErrors: errors.count, fromEmpty: opts.deleteFromEmpty });
  if (!guard.beforeCopy) return { refused: guard.refused, stop: null };
  run.progress?.done();
  if (rt.rank === 0) process.stderr.write(`fcp: not deleting: ${guard.refused}\n`);
  // Nothing was done: a fresh job's checkpoint goes; a resumed one keeps its earlier work.
  closeStores(run, run.resume !== null);
  const finalize = () => {
    if (rt.rank !== 0) return;
    if (run.resume) run.ckpt.dir.unlock();
    else run.ckpt.dir.remove();
  };
  await run.jobReport?.finish(); // what the walk excluded or could not read
  const dropped = await reportDrops(rt, 'fcp', (where, what) => errors.note(where, 'receive', 'EFOREIGN', what));
  return {
    refused: guard.refused,
    stop: { summary: nothingCopied(walked.result.total, rt.size, guard.refused, dropped), exitCode: EXIT.DELETE_REFUSED, finalize, wroteNothing: true },
  };
}

/** The summary of a job refused right after its walk: what was found, nothing copied. */
function nothingCopied(walk: Counters, size: number, deleteRefused: string | null, droppedMessages: DropCounts): CopySummary {
  return {
    files: walk.files ?? 0, dirs: walk.dirs ?? 0, symlinks: walk.symlinks ?? 0, specials: walk.specials ?? 0, bytes: walk.bytes ?? 0,
    seconds: process.uptime(), bytesPerSecond: 0, errors: 0, bytesCopied: 0, bytesSkipped: 0, filesCopied: 0, filesSkipped: 0,
    chunkSize: 0, signature: null, filesUpToDate: 0, filesRead: 0, deleted: 0, deleteRefused, excluded: walk.excluded ?? 0, retried: 0, retries: 0, droppedMessages,
    spilled: { listRanks: 0, queueItems: 0 },
    ranks: Array.from({ length: size }, () => ({ files: 0, bytes: 0, chunks: 0, steals: 0 })),
  };
}
