/**
 * The run object: everything a copy's phases share, built once by `setupRun` before the
 * walk (collective: every rank builds its own, in step). Phases read it; what one phase
 * hands to a later one is that phase's return value (see jobs/copy-job.ts), so nothing
 * here changes between phases except the counters of the objects it holds.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearUmask } from '../util/umask.js';
import { removeFlatDir } from '../util/remove.js';
import type { Runtime } from '../engine/runtime.js';
import { EXIT } from '../engine/runtime.js';
import { EntryErrors, causeOf } from '../errors.js';
import { loadNative, nativeSkips, type NativeAddon } from '../native/loader.js';
import { WalkLists } from '../walk/walk-lists.js';
import type { Root } from '../model/entry.js';
import { showPath } from '../model/paths.js';
import { JsonProgress, ProgressLine, type ProgressReporter } from '../progress/progress-line.js';
import { eraseLineBeforeWrites } from '../progress/terminal-line.js';
import { openCheckpoint, type JobCheckpoint } from '../checkpoint/job-checkpoint.js';
import { RankStore } from '../checkpoint/rank-store.js';
import { InFlight } from '../io/in-flight.js';
import { Trees } from '../io/beneath.js';
import { resolveLayout, type Layout } from '../copy/layout.js';
import { makeDataSync, type DataSync } from '../copy/data-sync.js';
import { Retries } from '../io/retry.js';
import { JobReport } from '../report/report.js';
import { partPath, type ReportPart } from '../report/report-part.js';
import { startJobLimits } from '../limits/job-limits.js';
import type { Throttle } from '../limits/throttle.js';
import { phaseTimer } from '../jobs/phase-timer.js';
import type { CopySummary } from '../jobs/copy-summary.js';
import type { CopyJobOptions } from './copy-options.js';

/** Entries worked on at once by the phases that run outside the engine (finish, links, directory metadata). */
export const IN_FLIGHT = 16;

export interface CopyRun {
  rt: Runtime;
  opts: CopyJobOptions;
  roots: Root[];
  /** FCP_TRACE_PHASES: rank 0 says each phase's wall time (jobs/phase-timer.ts) */
  mark: (phase: string) => void;
  native: NativeAddon | null;
  errors: EntryErrors;
  uid: number;
  /** chown to the source owner (only root may); also what metaOptions() reads */
  chown: boolean;
  /** rank 0's display; null on other ranks and without one */
  progress: ProgressReporter | null;
  /** Anchors of SRC and DST (io/beneath.ts), opened once by each rank. */
  trees: Trees;
  /** --layout, as DST's file system allows it (copy/layout.ts) */
  layout: Layout;
  jobReport: JobReport | null;
  /** this rank's part of --report */
  report: ReportPart | null;
  /** copied data is synced before the checkpoint records it (copy/data-sync.ts) */
  dataSync: DataSync;
  /** counts (and names once) a failed sync */
  syncFailed: (err: Error) => void;
  ckpt: JobCheckpoint;
  /** what earlier runs did (--resume); null on a fresh job */
  resume: JobCheckpoint['resume'];
  /** the checkpoint's store; null with --no-checkpoint */
  store: RankStore | null;
  /** without a checkpoint: a private store the lists spill to (removed at the end) */
  scratch: { dir: string; store: RankStore } | null;
  /** requests in flight, watched for stalls (io/in-flight.ts); null: --stall-timeout 0 */
  inFlight: InFlight | null;
  /** fn as a request in flight (watched for stalls) */
  tracked: <T>(op: string, path: Buffer, fn: () => Promise<T>) => Promise<T>;
  retries: Retries | null;
  /** fn, tried again while it fails transiently (the phases outside the engine wait in place) */
  retrying: <T>(fn: () => Promise<T>) => Promise<T>;
  /** --bwlimit/--max-ops: this rank's share; null: no limits */
  throttle: Throttle | null;
  jobLimits: { allRanks: () => void; stop: () => void };
  /** the walk's lists (files, directories, others, hard-linked), spilled to SQLite past the budget */
  lists: WalkLists;
  /** rank 0: the counters known so far, for a summary if the job ends early */
  known: Partial<CopySummary>;
}

/**
 * Opens everything a copy needs, in this order: the report part (a part that cannot be
 * made stops the job, exit 2), the checkpoint (refused: the job never starts), the stall
 * watch, the retries, a scratch store when there is no checkpoint, the limits (collective
 * with a --limits-file), the walk lists. Collective.
 */
export async function setupRun(rt: Runtime, opts: CopyJobOptions): Promise<CopyRun> {
  const mark = phaseTimer(rt);
  // Files in DST are created with the modes asked for, so most need no chmod (util/umask.ts).
  clearUmask();
  const native = loadNative();
  const errors = new EntryErrors('fcp');
  const uid = process.getuid?.() ?? 0;
  const roots = opts.roots;
  const progress = progressReporter(opts, rt.rank);
  // a stopped job's messages (why, where progress is saved) go on a clean line, and the line stays away
  if (progress) rt.addAbortHook(() => progress.done());
  if (opts.logDir) errors.logTo(opts.logDir, rt.rank);
  if (rt.rank === 0 && !native && !opts.quiet) process.stderr.write(`fcp: native addon not loaded: ${nativeSkips().join('; ')}\n`);
  // Not closed on abort: a stopping rank lets the work in flight finish (see in-flight.ts),
  // and that work still resolves its paths beneath these anchors; the process exit closes them.
  const trees = new Trees(native, roots, true);
  // Layouts: decided by DST's file system (each rank sees the same), said once.
  const resolved = resolveLayout(opts.layout ?? { mode: 'inherit' }, roots[0]!.dst);
  // Only the addon sets attributes: without it no layout is copied (as no xattr is).
  const layout = native ? resolved.layout : { ...resolved.layout, copy: false };
  const layoutNote = resolved.layout.copy && !native ? '--layout copy needs the native addon: files and directories get the destination\'s default layout' : resolved.note;
  if (rt.rank === 0 && layoutNote && !opts.quiet) process.stderr.write(`fcp: ${layoutNote}\n`);

  // --report: each rank's part, opened before anything is done
  let jobReport: JobReport | null = null;
  if (opts.report) {
    try {
      jobReport = new JobReport(rt, opts.report, roots);
    } catch (err) {
      // (opened O_NOFOLLOW: a symlink planted in its place is refused, not followed)
      const why = (err as NodeJS.ErrnoException).code === 'ELOOP' ? 'it is a symlink (ELOOP)' : causeOf(err);
      return rt.abort(`cannot create the report part '${showPath(`${partPath(opts.report.file, rt.rank)}.open`)}': ${why}`, EXIT.USAGE);
    }
  }
  const report = jobReport?.part ?? null;
  if (report) errors.onEntry = (op, path, cause) => report.failed(op, path, cause);

  // 0. checkpoint; copied data is synced before the checkpoint records it (data-sync.ts)
  progress?.phase('checkpoint');
  const dataSync = makeDataSync(opts.sync, native, roots);
  const ckpt = await openCheckpoint(rt, opts.checkpoint, dataSync.kind === 'none' ? null : () => dataSync.sync()).catch((err: unknown) => {
    jobReport?.discard(); // refused: the job never starts
    throw err;
  });
  const store = ckpt.store;
  let syncFailures = 0;
  const syncFailed = (err: Error) => {
    // One line per rank; later failures are counted (exit 1, checkpoint kept).
    if (syncFailures++ === 0) errors.report('sync', (err as NodeJS.ErrnoException).path ?? roots[0]!.dst, err);
    else errors.count++;
  };
  if (store) store.onSyncFailed = syncFailed;
  if (rt.rank === 0) {
    rt.addAbortHook((reason, code) => {
      progress?.stopped(reason);
      if ((code === EXIT.INTERRUPTED || code === EXIT.ABORTED || code === EXIT.DESTINATION_FULL) && store) {
        process.stderr.write(`fcp: progress is saved in ${showPath(ckpt.dir.dir)}; resume with: ${opts.resumeCommand}\n`);
      }
    });
  }
  // A full destination stops the job, named once, instead of failing every file left.
  // Every rank may fill up at once: each asks rank 0, which aborts with the first path it
  // hears of (engine/abort.ts); the files failing meanwhile are counted, not printed.
  errors.onFull = (path, code) => {
    errors.onFull = () => {};
    rt.requestAbort(`destination full: '${path}' (${code})`, EXIT.DESTINATION_FULL);
  };
  // A request that never returns (a hung server) is named, and the job stops as on SIGTERM.
  const inFlight = opts.stallTimeoutMs > 0
    ? new InFlight({
      stallMs: opts.stallTimeoutMs,
      onStall: (st) => void rt.abort(`rank ${rt.rank}: ${st.op} '${showPath(st.path)}' has not returned for ${st.seconds} s (stalled file system?)`, EXIT.INTERRUPTED),
    })
    : null;
  inFlight?.start();
  const tracked = <T>(op: string, path: Buffer, fn: () => Promise<T>): Promise<T> => (inFlight ? inFlight.track(op, path, fn) : fn());
  rt.addAbortHook(() => inFlight?.stop());
  // Transient failures are tried again after a backoff before they are named (io/retry.ts).
  const retries = opts.retries > 0 ? new Retries(opts.retries) : null;
  const retrying = <T>(fn: () => Promise<T>): Promise<T> => (retries ? retries.run(fn) : fn());
  // Stopping: what is in flight finishes and is recorded first (bounded: a hung request never returns).
  ckpt.beforeClose = async () => inFlight?.drain(1000);
  // --report: on a stop it too waits for what is in flight, which the checkpoint records as done.
  if (jobReport) jobReport.beforeClose = async () => inFlight?.drain(1000);
  // Without a checkpoint the lists still need somewhere to spill: a private scratch store.
  let scratch: { dir: string; store: RankStore } | null = null;
  if (!store) {
    const dir = mkdtempSync(join(tmpdir(), 'fcp-lists-'));
    scratch = { dir, store: new RankStore(join(dir, 'lists.db')) };
    rt.addAbortHook(() => removeFlatDir(dir));
  }
  // --bwlimit/--max-ops (collective when there is a --limits-file); they pace the walk, mkdir, copy and directory metadata.
  const jobLimits = opts.limits
    ? await startJobLimits(rt, { ...opts.limits, warn: (line) => { if (rt.rank === 0 && !opts.quiet) process.stderr.write(`fcp: ${line}\n`); } })
    : { throttle: null, allRanks: () => {}, stop: () => {} };
  rt.addAbortHook(() => jobLimits.stop());
  // With a checkpoint the store holds the walk's listings: spilled files are read from them.
  const lists = new WalkLists(store ?? scratch!.store, opts.listBudget, store !== null);
  mark('setup');
  return {
    rt, opts, roots, mark, native, errors, uid, chown: uid === 0, progress, trees, layout, jobReport, report, dataSync, syncFailed,
    ckpt, resume: ckpt.resume, store, scratch, inFlight, tracked, retries, retrying, throttle: jobLimits.throttle, jobLimits, lists,
    known: opts.known ?? {},
  };
}

/**
 * Closes the stores this rank opened (the checkpoint's and the scratch one, which goes).
 * `keep` false: rank 0 removes the checkpoint after the final barrier, so records not yet
 * written need not be (a job that never wrote its file does not create it).
 */
export function closeStores(run: CopyRun, keep = true): void {
  run.ckpt.close(keep);
  run.scratch?.store.close(false);
  if (run.scratch) removeFlatDir(run.scratch.dir);
}

function progressReporter(opts: CopyJobOptions, rank: number): ProgressReporter | null {
  // auto: a line on a terminal, unless stdout carries --json (launchers like mpirun give
  // ranks a pseudo-terminal, and the JSON must stay a clean last line).
  const mode = opts.quiet ? 'none' : opts.progress === 'auto' ? (process.stdout.isTTY && !opts.json ? 'line' : 'none') : opts.progress;
  // Only rank 0 draws; the others' error lines erase its line first.
  if (rank !== 0) {
    if (mode === 'line') eraseLineBeforeWrites(process.stderr);
    return null;
  }
  if (mode === 'line') return new ProgressLine(process.stdout);
  if (mode === 'json') return new JsonProgress(process.stdout);
  return null;
}
