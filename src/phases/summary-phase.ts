/**
 * 9. summary: the signature, the --report parts joined, everything this rank wrote made
 * durable, the counters summed, the stores closed; and what rank 0 does with the
 * checkpoint after the final barrier (`finalize`). Collective.
 */
import { EXIT } from '../engine/runtime.js';
import { showPath } from '../model/paths.js';
import { isHex128, toHex } from '../checksum/hasher.js';
import { sayDrops } from '../jobs/report-drops.js';
import { dropCountsOf } from '../transport/drop-report.js';
import { isCounters, type Counters } from '../transport/messages.js';
import { CopyDigests } from '../copy/copy-digests.js';
import { addCounters } from '../engine/progress.js';
import type { CopySummary } from '../jobs/copy-summary.js';
import { walkedEntries } from '../jobs/job-totals.js';
import type { CopyJobResult } from './copy-options.js';
import { closeStores, type CopyRun } from './run.js';
import type { Walked } from './walk-phase.js';
import type { Plan } from './plan-phase.js';
import type { PhaseResult } from '../engine/task.js';
import type { Copied } from './copy-data-phase.js';
import type { Deleted } from './delete-phase.js';

/** What the phases before found, for the summary. */
export interface Outcomes {
  walked: Walked;
  plan: Plan;
  mkdir: PhaseResult;
  copied: Copied;
  /** large files this rank finished */
  finishedFiles: number;
  deleted: Deleted;
  verifyMismatches: number | undefined;
}

export async function summaryPhase(run: CopyRun, o: Outcomes): Promise<CopyJobResult> {
  const { rt, opts, progress, store, dataSync, errors, ckpt } = run;
  const { digests } = o.copied;
  const walk = o.walked.result;
  const copy = o.copied.result;
  // Every entry has its line by now: each rank sorts its part, rank 0 joins them.
  if (run.jobReport) {
    progress?.phase('report');
    await run.jobReport.finish();
    run.mark('report');
  }
  progress?.done();

  // Everything this rank wrote is made durable before its last records are committed and
  // before success is reported (and the checkpoint removed, after the final barrier). A
  // store that has no file yet writes them only if the checkpoint is kept (closeStores).
  if (store && !store.broken) await store.finish();
  else await dataSync.sync().catch(run.syncFailed);
  dataSync.close();
  run.mark('sync');

  // Summary; the checkpoint goes once everything is copied (kept on errors, to retry with --resume)
  // wall time as the user sees it: from the start of this process (rank 0 started the job);
  // process.uptime, not performance.now, whose first use loads perf_hooks (~1.5 ms of CPU a rank)
  const seconds = process.uptime();
  const secondaryBytes = o.plan.links.secondaryBytes();
  o.plan.links.close();
  run.trees.close();
  // One collective for all the job's sums (each costs a few round trips among all ranks):
  // this rank's counters, the messages its transport dropped and its share of the signature.
  const dropped = dropCountsOf(rt.dropped);
  const mine: Share = {
    c: {
      errors: errors.count, secondaryBytes, deleted: o.deleted.deleted, listSpilled: run.lists.isSpilled ? 1 : 0, retried: run.retries?.retried ?? 0, retries: run.retries?.retries ?? 0,
      finished: o.finishedFiles, missing: digests?.missing ?? 0,
    },
    dropped,
    sig: digests ? digests.share() : '',
  };
  const shares = await rt.collectives.allgather<Share>(mine, isShare);
  const sum = (of: (s: Share) => Counters) => shares.reduce((a, s) => addCounters(a, of(s)), {} as Counters);
  const total = sum((s) => s.c);
  const finishedPerRank = shares.map((s) => s.c.finished ?? 0);
  const sig = digests ? { signature: CopyDigests.signatureOf(shares.map((s) => s.sig)), missing: total.missing ?? 0 } : null;
  const droppedMessages = sayDrops(rt, 'fcp', dropped, dropCountsOf(sum((s) => s.dropped)), (where, what) => errors.note(where, 'receive', 'EFOREIGN', what));
  const ranks = copy.perRank.map((c, r) => ({
    // whole files count when copied, large files once finished by their owner
    files: (c.files ?? 0) + (finishedPerRank[r] ?? 0),
    bytes: c.bytes ?? 0,
    chunks: c.chunks ?? 0,
    steals: (c.steals ?? 0) + (walk.perRank[r]?.steals ?? 0) + (o.mkdir.perRank[r]?.steals ?? 0),
  }));
  const errorsTotal = total.errors ?? 0;
  // finalize's rule: the checkpoint stays on errors or when asked to
  const keepCheckpoint = errorsTotal > 0 || opts.keepCheckpoint;
  closeStores(run, keepCheckpoint);
  run.mark('summary');
  // Removed last of all (after the final barrier, see endJob), so a job killed while it
  // exits still has its records: a resume then finds everything done.
  const finalize = () => {
    if (rt.rank !== 0) return;
    if (!keepCheckpoint) ckpt.dir.remove();
    else {
      ckpt.dir.unlock();
      if (errorsTotal > 0 && store) {
        process.stderr.write(`fcp: checkpoint kept in ${showPath(ckpt.dir.dir)}: fix the errors above, then '${opts.resumeCommand}' copies only what is missing\n`);
      }
    }
  };
  const walkTotals = walk.total;
  const copiedBytes = ranks.reduce((a, r) => a + r.bytes, 0);
  const { verifyMismatches } = o;
  const deleteRefused = o.deleted.refused;
  const summary: CopySummary = {
    ...walkedEntries(walkTotals),
    // data bytes: a hard-linked file's data counts once, however many names it has
    bytes: o.copied.totalBytes - (total.secondaryBytes ?? 0),
    seconds,
    bytesPerSecond: copiedBytes / Math.max(seconds, 1e-9),
    errors: errorsTotal,
    bytesCopied: copiedBytes,
    bytesSkipped: copy.total.skippedBytes ?? 0,
    filesCopied: ranks.reduce((a, r) => a + r.files, 0),
    filesSkipped: copy.total.skippedFiles ?? 0,
    chunkSize: o.plan.chunk,
    signature: sig && sig.missing === 0 && errorsTotal === 0 ? toHex(sig.signature) : null,
    verifyMismatches,
    filesUpToDate: (copy.total.upToDate ?? 0) + (walkTotals.upToDate ?? 0),
    filesRead: copy.total.filesRead ?? 0,
    deleted: total.deleted ?? 0,
    deleteRefused,
    excluded: walkTotals.excluded ?? 0,
    retried: total.retried ?? 0,
    retries: total.retries ?? 0,
    droppedMessages,
    spilled: {
      listRanks: total.listSpilled ?? 0,
      queueItems: (walk.total.spilledItems ?? 0) + (o.mkdir.total.spilledItems ?? 0) + (copy.total.spilledItems ?? 0),
    },
    ranks,
  };
  const exitCode = deleteRefused !== null ? EXIT.DELETE_REFUSED : errorsTotal > 0 || (verifyMismatches ?? 0) > 0 ? EXIT.ENTRIES_FAILED : EXIT.OK;
  return { summary, exitCode, finalize };
}

/** What each rank adds to the job's sums at its end (summaryPhase): its counters, its transport's drop counts, and its share of the signature ('' without one). */
interface Share { c: Counters; dropped: Counters; sig: string }
const isShare = (x: unknown): x is Share =>
  typeof x === 'object' && x !== null && isCounters((x as Share).c) && isCounters((x as Share).dropped)
  && typeof (x as Share).sig === 'string' && ((x as Share).sig === '' || isHex128((x as Share).sig));
