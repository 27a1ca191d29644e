/**
 * Launching and running an fcp job from a checked plan: start the ranks, share the roots,
 * run the dry run or the copy, print the signature and summary, end the job with its exit
 * status. Never returns: every path ends in endJob (or an abort).
 */
import { showPath } from '../model/paths.js';
import { createReadStream } from 'node:fs';
import { endJob, startJob } from '../launch/job.js';
import { isBuf, type Root } from '../model/entry.js';
import { runCopyJob, type CopySummary } from '../jobs/copy-job.js';
import type { JsonOnExit } from './json-on-exit.js';
import { formatBytes, formatCount, formatDuration } from '../progress/format.js';
import { totalsLine } from '../jobs/job-totals.js';
import { CheckpointRefused } from '../checkpoint/job-checkpoint.js';
import { defaultCheckpointDir } from '../checkpoint/checkpoint-dir.js';
import { loadNative } from '../native/loader.js';
import { hardExit } from '../native/exit.js';
import { runDryRun } from '../jobs/dry-run.js';
import type { FileList } from '../walk/list-source.js';
import type { FcpOptions } from './fcp-command.js';
import { budgets, type FcpPlan } from './fcp-validate.js';

/** An argument as a POSIX shell reads it back; control characters as bash's $'..' (so a name cannot break the line). */
const shellQuote = (a: string) => {
  if (/^[\w@%+=:,./-]+$/.test(a)) return a;
  // eslint-disable-next-line no-control-regex
  if (!/[\x00-\x1f\x7f]/.test(a)) return `'${a.replace(/'/g, `'\\''`)}'`;
  return `$'${showPath(a).replace(/'/g, "\\'")}'`;
};

function printSummary(s: CopySummary, quiet: boolean): void {
  if (quiet) return;
  process.stdout.write(
    `fcp: ${totalsLine(s)}` +
      (s.retried > 0 ? ` (${formatCount(s.retried)} entr${s.retried === 1 ? 'y' : 'ies'} retried)` : '') +
      (s.bytesSkipped > 0 || s.filesSkipped > 0 ? ` (${formatBytes(s.bytesSkipped)} in ${formatCount(s.filesSkipped)} files already done by an earlier run)` : '') + '\n',
  );
}

/** Run the job `plan` describes; `argv` as given (for the resume command), `jsonOut` rank 0's --json summary. */
export async function runFcp(opts: FcpOptions, plan: FcpPlan, argv: string[], jsonOut: JsonOnExit<CopySummary> | null): Promise<never> {
  const { update, filter, paths, reportFile } = plan;
  let roots = plan.roots;
  const job = await startJob({
    tool: 'fcp',
    np: opts.np,
    rendezvous: opts.rendezvous,
    besidePath: Buffer.from(roots[0]!.dst).toString(),
    bind: opts.bind,
    startupTimeoutMs: opts.startupTimeout * 1000,
    heartbeatTimeoutMs: opts.heartbeatTimeout * 1000,
    delayWorkMs: opts.testDelayWorkMs || undefined,
    delayAbortMs: opts.testDelayAbortMs || undefined,
    exchangeRound: opts.testExchangeRound || undefined,
    queueInMemory: budgets(opts.memLimit).queueItems,
    exit: hardExit(loadNative()),
    onStartupFailure: (reason) => jsonOut?.ended(reason),
  });
  job.rt.addAbortHook((reason) => jsonOut?.ended(reason));
  if (opts.timeLimit !== undefined && job.rt.rank === 0) {
    // From the start of rank 0, as the batch system counts; rank 0 stops everyone.
    const limit = opts.timeLimit;
    setTimeout(() => job.rt.stop(`time limit of ${formatDuration(limit)} reached`), Math.max(0, limit * 1000 - performance.now())).unref();
  }
  // Rank 0's view of the roots is the job's: ranks on other hosts follow it.
  const isRoots = (x: unknown): x is Root[] => Array.isArray(x) && x.every((r) => isBuf((r as Root).src) && isBuf((r as Root).dst));
  roots = await job.rt.collectives.bcast<Root[]>(job.rt.rank === 0 ? roots : null, isRoots);

  const filesFrom: FileList | null = opts.filesFrom === undefined ? null : {
    open: () => (opts.filesFrom === '-' ? process.stdin : createReadStream(opts.filesFrom!, { highWaterMark: 256 * 1024 })),
    name: opts.filesFrom === '-' ? '(stdin)' : opts.filesFrom,
    sep: opts.from0 ? 0 : 10,
    recursive: opts.recursiveList,
  };

  if (opts.dryRun) {
    const { summary, exitCode } = await runDryRun(job.rt, {
      filesFrom,
      roots, update, filter, deleteExtras: opts.delete, deleteFromEmpty: opts.deleteFromEmpty, maxDelete: opts.maxDelete ?? null,
      listBudget: budgets(opts.memLimit).listEntries, json: opts.json,
    });
    if (job.rt.rank === 0 && opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    await endJob(job, exitCode);
  }
  const dstArg = paths[paths.length - 1]!;
  const resumeArgs = argv.filter((a) => a !== '--resume').map(shellQuote).join(' ');
  let result;
  try {
    result = await runCopyJob(job.rt, {
      roots, filesFrom, chunkSize: opts.chunkSize, quiet: opts.quiet, json: opts.json, keepCheckpoint: opts.keepCheckpoint,
      listBudget: budgets(opts.memLimit).listEntries,
      hash: opts.hash,
      verify: opts.verify,
      update,
      filter,
      deleteExtras: opts.delete,
      deleteFromEmpty: opts.deleteFromEmpty,
      maxDelete: opts.maxDelete ?? null,
      progress: opts.progress,
      logDir: opts.logDir,
      report: reportFile === null ? null : { file: reportFile, format: opts.reportFormat },
      stallTimeoutMs: opts.stallTimeout * 1000,
      layout: { mode: opts.layout, testXattr: opts.layoutXattr },
      retries: opts.retries,
      limits: opts.bwlimit || opts.maxOps || opts.limitsFile !== undefined
        ? { cli: { bytesPerSecond: opts.bwlimit ?? 0, opsPerSecond: opts.maxOps ?? 0 }, file: opts.limitsFile ?? null }
        : undefined,
      known: jsonOut?.known,
      sync: opts.sync,
      corruptForTest: opts.testCorruptBeforeVerify,
      testSlowCopyMs: opts.testSlowCopyMs || undefined,
      resumeCommand: `fcp --resume ${resumeArgs}`,
      checkpoint: {
        dir: opts.checkpointDir ?? defaultCheckpointDir(dstArg, roots),
        intervalMs: opts.checkpointInterval * 1000,
        resume: opts.resume,
        enabled: opts.checkpoint,
        roots,
        list: filesFrom !== null,
        bufferRows: budgets(opts.memLimit).checkpointRows,
      },
    });
  } catch (err) {
    // Refused before anything was written (its exit status: the code's, errors.ts).
    if (err instanceof CheckpointRefused) {
      if (job.rt.rank === 0) process.stderr.write(`fcp: ${err.message}\n`);
      jsonOut?.ended(err.message);
      await endJob(job, err.exitStatus);
    }
    throw err;
  }
  const { summary, exitCode, finalize, wroteNothing } = result;
  job.rt.markFinishing();
  if (job.rt.rank === 0) {
    if (opts.signature && !opts.json && !wroteNothing) {
      process.stdout.write(summary.signature
        ? `signature ${summary.signature}\n`
        : 'fcp: no signature: some entries could not be read (see the errors above), or an earlier run copied them with --no-hash\n');
    }
    // A job refused before anything was written says so in one line (above), not a summary.
    if (jsonOut) jsonOut.finished(summary, exitCode);
    else printSummary(summary, opts.quiet || wroteNothing === true);
  }
  return endJob(job, exitCode, finalize);
}
