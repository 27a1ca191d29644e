/**
 * The phases of a copy, with a collective between each (as mpiFileUtils' dcp):
 *
 *   0. checkpoint    lock DST's checkpoint; on --resume merge what earlier runs did
 *   1. walk          distributed, reads SRC only
 *   2. plan          totals, chunk size, hard-link groups
 *   3. mkdir         every directory, owner-only mode for now (so read-only ones can be filled)
 *   4. copy          whole files, chunks of large files, symlinks and FIFOs (work stealing);
 *                    what an earlier run finished is skipped
 *   5. finish        owners give large files their metadata and rename them into place
 *   6. links         extra names of hard-linked files
 *   7. dir metadata  deepest level first, so a directory's times and mode are set after
 *                    everything inside it is written
 *
 * Every per-file list is read lazily from the walk lists, which spill to the rank's
 * SQLite store past the memory budget.
 */
import { phaseTimer } from './phase-timer.js';
import { mkdirp } from '../util/mkdirp.js';
import { clearUmask } from '../util/umask.js';
import { forEachLimit } from '../util/for-each-limit.js';
import { constants as C, close as closeCb, ftruncate as ftruncateCb, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runtime } from '../engine/runtime.js';
import { EXIT } from '../engine/runtime.js';
import type { Task, TaskContext } from '../engine/task.js';
import type { Counters } from '../transport/messages.js';
import { EntryErrors, causeOf, systemErrorFromCode } from '../errors.js';
import type { DropCounts } from '../transport/codec.js';
import { reportDrops } from './report-drops.js';
import { loadNative, nativeSkips } from '../native/loader.js';
import { dirKey, walkTask } from '../walk/walk-task.js';
import type { FileList } from '../walk/list-source.js';
import { WalkLists } from '../walk/walk-lists.js';
import { isBuf, type Entry, type Root } from '../walk/entry.js';
import { batches, chooseBatchFiles, chooseChunkSize, chunksOf } from '../copy/plan.js';
import { copyTask, dstOf, errPath, fileKey, metaOptions, srcOf, type ChunkFailure, type CopyContext, type CopyItem } from '../copy/copy-task.js';
import { applyMeta } from '../copy/metadata.js';
import { partName, showPath } from '../copy/paths.js';
import { planHardLinks } from '../copy/hardlinks.js';
import { sumSecondaries } from '../copy/link-digests.js';
import { JsonProgress, ProgressLine, type ProgressReporter } from '../progress/progress-line.js';
import { eraseLineBeforeWrites } from '../progress/terminal-line.js';
import type { PathFilter } from '../walk/filter.js';
import { deleteExtras } from '../copy/delete-extras.js';
import { guardAfterWalk, type MaxDelete } from '../copy/delete-guards.js';
import { hashFile } from '../copy/copy-task.js';
import { openCheckpoint, type CheckpointOptions } from '../checkpoint/job-checkpoint.js';
import { RankStore, readVerifiable, type DoneWork } from '../checkpoint/rank-store.js';
import { CopyDigests } from '../copy/copy-digests.js';
import { initHashing, fromHex, toHex } from '../checksum/hasher.js';
import { verifyTask, corruptForTest } from '../copy/verify-task.js';
import { InFlight } from '../copy/in-flight.js';
import type { CopySummary } from './copy-summary.js';
import { Trees, copyLayoutBeneath } from '../copy/beneath.js';
import { O_LOV_DELAY_CREATE, resolveLayout, type Layout, type LayoutOptions } from '../copy/layout.js';
import { datasyncBeforeRename, makeDataSync } from '../copy/data-sync.js';
import { Retries } from '../copy/retry.js';
import { JobReport, type ReportOptions } from '../report/report.js';
import { ACTION, partPath, type ReportPart } from '../report/report-part.js';
import { dirMetaSame, sameByTime } from '../copy/update-rule.js';
import { startJobLimits, type LimitsOptions } from '../limits/job-limits.js';
import type { Throttle } from '../limits/throttle.js';

export interface CopyJobOptions {
  roots: Root[];
  /** --files-from: copy only what the list names (walk/list-source.ts) */
  filesFrom?: FileList | null;
  chunkSize?: number;
  quiet: boolean;
  json: boolean;
  checkpoint: CheckpointOptions;
  keepCheckpoint: boolean;
  /** the command that resumes this job, for messages */
  resumeCommand: string;
  /** entries a rank keeps in memory before its lists spill to SQLite */
  listBudget: number;
  /** hash what is read (default on): the signature and --verify need it */
  hash: boolean;
  /** re-read DST after the copy and compare it with the source's digests */
  verify: boolean;
  /** test hook: flip one byte of DST (root 0, 'rel/path:offset') before verifying */
  corruptForTest?: string;
  /** --update: skip what DST already has (see copy-task.ts) */
  update: false | 'time' | 'checksum';
  /** --exclude/--include rules */
  filter: PathFilter | null;
  /** --delete: remove what is in DST but not in SRC, after the copy */
  deleteExtras: boolean;
  /** --delete-from-empty: an empty SRC directory may empty its DST */
  deleteFromEmpty: boolean;
  /** --max-delete: delete nothing when more would be deleted */
  maxDelete: MaxDelete | null;
  /** progress display: auto (a line on a terminal), line, json, none */
  progress: 'auto' | 'line' | 'json' | 'none';
  /** --log-dir: per-rank logs of failed entries */
  logDir?: string;
  /** --layout: DST's default layouts (inherit, the default) or the source's, set at create (copy) */
  layout?: LayoutOptions;
  /** --stall-timeout: a file system request this old stops the job (exit 4); 0: never */
  stallTimeoutMs: number;
  /** for tests: every copy item waits this long first (copy-task.ts slowMs) */
  testSlowCopyMs?: number;
  /** --retries: tries again of an entry that failed transiently (copy/retry.ts); 0: none */
  retries: number;
  /** --report FILE: one line per entry (report/) */
  report?: ReportOptions | null;
  /** --bwlimit, --max-ops, --limits-file (limits/job-limits.ts); absent: no limits */
  limits?: Omit<LimitsOptions, 'warn'>;
  /** rank 0: filled with the counters as they become known, for a summary if the job ends early */
  known?: Partial<CopySummary>;
  /** make copied data durable before the checkpoint records it and before success (false: --no-sync) */
  sync: boolean;
}

export type { CopySummary } from './copy-summary.js';

const IN_FLIGHT = 16;



export async function runCopyJob(rt: Runtime, opts: CopyJobOptions): Promise<{ summary: CopySummary; exitCode: number; finalize: () => void; wroteNothing?: true }> {
  const mark = phaseTimer(rt);
  // Files in DST are created with the modes asked for, so most need no chmod (util/umask.ts).
  clearUmask();
  const native = loadNative();
  const errors = new EntryErrors('fcp');
  const uid = process.getuid?.() ?? 0;
  const asRoot = uid === 0;
  const roots = opts.roots;
  const progress = progressReporter(opts, rt.rank);
  // a stopped job's messages (why, where progress is saved) go on a clean line, and the line stays away
  if (progress) rt.addAbortHook(() => progress.done());
  if (opts.logDir) errors.logTo(opts.logDir, rt.rank);
  if (rt.rank === 0 && !native && !opts.quiet) process.stderr.write(`fcp: native addon not loaded: ${nativeSkips().join('; ')}\n`);
  // Anchors of SRC and DST (copy/beneath.ts), opened once by each rank.
  const trees = new Trees(native, roots, true);
  // Not closed on abort: a stopping rank lets the work in flight finish (see in-flight.ts),
  // and that work still resolves its paths beneath these anchors; the process exit closes them.
  // Layouts: decided by DST's file system (each rank sees the same), said once.
  const resolved = resolveLayout(opts.layout ?? { mode: 'inherit' }, roots[0]!.dst);
  // Only the addon sets attributes: without it no layout is copied (as no xattr is).
  const layout = native ? resolved.layout : { ...resolved.layout, copy: false };
  const layoutNote = resolved.layout.copy && !native ? '--layout copy needs the native addon: files and directories get the destination\'s default layout' : resolved.note;
  if (rt.rank === 0 && layoutNote && !opts.quiet) process.stderr.write(`fcp: ${layoutNote}\n`);

  // --report: each rank's part, opened before anything is done (a part that cannot be made stops the job, exit 2)
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
  const { resume } = ckpt;
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
  // Every rank may fill up at once: rank 0 speaks first, another only if no abort came.
  errors.onFull = (path, code) => {
    errors.onFull = () => {};
    const go = () => void rt.abort(`destination full: '${path}' (${code})`, EXIT.DESTINATION_FULL);
    if (rt.rank === 0) go();
    else setTimeout(go, 100 * Math.min(rt.rank, 20)).unref();
  };
  // A request that never returns (a hung server) is named, and the job stops as on SIGTERM.
  const inFlight = opts.stallTimeoutMs > 0
    ? new InFlight({
      stallMs: opts.stallTimeoutMs,
      onStall: (st) => void rt.abort(`rank ${rt.rank}: ${st.op} '${showPath(st.path)}' has not returned for ${st.seconds} s (stalled file system?)`, EXIT.INTERRUPTED),
    })
    : null;
  inFlight?.start();
  /** fn as a request in flight (watched for stalls) */
  const tracked = <T>(op: string, path: Buffer, fn: () => Promise<T>): Promise<T> => (inFlight ? inFlight.track(op, path, fn) : fn());
  rt.addAbortHook(() => inFlight?.stop());
  // Transient failures are tried again after a backoff before they are named (copy/retry.ts).
  const retries = opts.retries > 0 ? new Retries(opts.retries) : null;
  /** fn, tried again while it fails transiently (the phases outside the engine wait in place) */
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
    rt.addAbortHook(() => rmSync(dir, { recursive: true, force: true }));
  }
  // --bwlimit/--max-ops (collective when there is a --limits-file); they pace the walk, mkdir, copy and directory metadata.
  const jobLimits = opts.limits
    ? await startJobLimits(rt, { ...opts.limits, warn: (line) => { if (rt.rank === 0 && !opts.quiet) process.stderr.write(`fcp: ${line}\n`); } })
    : { throttle: null, allRanks: () => {}, stop: () => {} };
  rt.addAbortHook(() => jobLimits.stop());
  const throttle = jobLimits.throttle;
  // With a checkpoint the store holds the walk's listings: spilled files are read from them.
  const lists = new WalkLists(store ?? scratch!.store, opts.listBudget, store !== null);

  // 1. walk
  progress?.phase('walk');
  rt.onProgress((_p, total) => progress?.walk(total.entries ?? 0));
  // --update (time rule): files DST already has are found by the walk and never listed
  // (a resume re-checks its kept entries in the copy, as before).
  const updateDst = opts.update === 'time' && native && !resume ? trees.dst : null;
  /** directories DST had as directories when walked (mkdir skips them) */
  const dstDirs = updateDst ? new Set<string>() : null;
  const walk = await rt.runPhase(walkTask({ roots, side: trees.src, lists, errors, uid, native, store, resume, filter: opts.filter, inFlight, list: opts.filesFrom, retries, report, updateDst, dstDirs, limits: throttle }));
  const walkTotals = walk.total;
  const known = opts.known ?? {};
  Object.assign(known, {
    files: walkTotals.files ?? 0, dirs: walkTotals.dirs ?? 0, symlinks: walkTotals.symlinks ?? 0, specials: walkTotals.specials ?? 0,
    bytes: walkTotals.bytes ?? 0, excluded: walkTotals.excluded ?? 0, errors: walkTotals.errors ?? 0,
  } satisfies Partial<CopySummary>);
  progress?.walk(walkTotals.entries ?? 0);
  mark('walk');
  if (rt.rank === 0 && !asRoot && (walkTotals.foreignOwner ?? 0) > 0 && !opts.quiet) {
    process.stderr.write(`fcp: not running as root: ${walkTotals.foreignOwner} entries owned by other users will be owned by uid ${uid}\n`);
  }
  // --delete's guards that the walk decides: an empty SRC refuses the job here, before
  // anything is written; walk errors skip the delete phase only.
  const guard = opts.deleteExtras ? await guardAfterWalk(rt, { roots, filter: opts.filter, walkErrors: errors.count, fromEmpty: opts.deleteFromEmpty }) : null;
  if (guard?.beforeCopy) {
    progress?.done();
    if (rt.rank === 0) process.stderr.write(`fcp: not deleting: ${guard.refused}\n`);
    ckpt.close();
    scratch?.store.close();
    if (scratch) rmSync(scratch.dir, { recursive: true, force: true });
    // Nothing was done: a fresh job's checkpoint goes; a resumed one keeps its earlier work.
    const finalize = () => {
      if (rt.rank !== 0) return;
      if (resume) ckpt.dir.unlock();
      else ckpt.dir.remove();
    };
    await jobReport?.finish(); // what the walk excluded or could not read
    const dropped = await reportDrops(rt, 'fcp', (where, what) => errors.note(where, 'receive', 'EFOREIGN', what));
    return { summary: nothingCopied(walkTotals, rt.size, guard.refused, dropped), exitCode: EXIT.DELETE_REFUSED, finalize, wroteNothing: true };
  }

  // 2. plan: a resume cuts files as the first run did, so its recorded chunks line up
  progress?.phase('plan');
  const chunk = opts.chunkSize ?? ckpt.earlierChunkSize ?? chooseChunkSize(walkTotals.bytes ?? 0, rt.size);
  if (rt.rank === 0) store?.setMeta('chunkSize', String(chunk));
  known.chunkSize = chunk;
  const links = await planHardLinks(rt, lists.hardlinked(), roots.length);
  rt.addAbortHook(() => links.close());
  mark('plan');

  // 3. mkdir (order-free: recursive mkdir creates missing parents; modes are fixed in 7)
  progress?.phase('mkdir');
  const mk = await rt.runPhase(mkdirTask(lists, roots, trees, errors, (op, path, fn) => retrying(() => tracked(op, path, fn)), layout.copy ? layout : null, report, dstDirs, throttle));
  mark('mkdir');

  // 4. copy
  progress?.phase('copy');
  const failed = new Map<string, ChunkFailure>();
  const large: Entry[] = [];
  /** large files --update left alone: not finished (renamed) either */
  const largeUpToDateSet = new Set<Entry>();
  const totalBytes = walkTotals.bytes ?? 0;
  // Files the walk found up to date count with the copy's own.
  const walkUpToDate = walkTotals.upToDate ?? 0;
  const walkUpToDateBytes = walkTotals.upToDateBytes ?? 0;
  rt.onProgress((_p, t) => {
    progress?.copy((t.bytes ?? 0) + (t.skippedBytes ?? 0) + (t.upToDateBytes ?? 0) + walkUpToDateBytes, totalBytes, (t.files ?? 0) + (t.skippedFiles ?? 0) + (t.upToDate ?? 0) + walkUpToDate, walkTotals.files ?? 0, t.bytes ?? 0);
    Object.assign(known, {
      bytesCopied: t.bytes ?? 0, bytesSkipped: t.skippedBytes ?? 0, filesCopied: t.files ?? 0, filesSkipped: t.skippedFiles ?? 0,
      filesUpToDate: (t.upToDate ?? 0) + walkUpToDate, filesRead: t.filesRead ?? 0,
    } satisfies Partial<CopySummary>);
  });
  if (opts.hash) await initHashing();
  const digests = opts.hash ? new CopyDigests((h, hex) => links.primaryContent(h, hex)) : null;
  // Up to date in the walk: not read, so their digests are missing from the signature.
  if (digests) digests.missing += walk.local.upToDate ?? 0;
  // Finished work is recorded for a resume (checkpoint) and for --verify (which reads the
  // records back); with neither, nothing is recorded.
  const doneStore = store ?? (opts.verify ? scratch!.store : null);
  const copyCtx: Omit<CopyContext, 'seedItems'> = { roots, trees, native, chown: asRoot, errors, failed, store: doneStore, sync: dataSync, digests, update: opts.update, inFlight, layout, retries, report, limits: throttle, slowMs: opts.testSlowCopyMs };
  const copy = await rt.runPhase(copyTask({
    ...copyCtx,
    seedItems: (ctx) => copyItems(ctx),
  }));
  {
    const t = copy.total;
    progress?.copy((t.bytes ?? 0) + (t.skippedBytes ?? 0) + (t.upToDateBytes ?? 0) + walkUpToDateBytes, totalBytes, (t.files ?? 0) + (t.skippedFiles ?? 0) + (t.upToDate ?? 0) + walkUpToDate, walkTotals.files ?? 0);
  }
  mark('copy');

  /**
   * This rank's copy work, lazily: others first (cheap), then each large file's chunks
   * (its part file is created first, so a thief never gets a chunk of a file that does
   * not exist), whole files in batches as they come.
   */
  async function* copyItems(ctx: TaskContext<CopyItem>): AsyncGenerator<CopyItem> {
    for (const b of batches(lists.others(), () => 0, 128)) yield { t: 'o', e: b };
    // Large files' chunks go in first: the queue is LIFO, so this rank starts on whole
    // files while thieves take chunks from the bottom, and on a filling disk the many
    // small files are written before the big ones take the space.
    const done = (e: Entry): boolean => {
      const d = resume?.doneFor(e).whole;
      if (!d) return false;
      ctx.count('skippedBytes', e.m.size);
      ctx.count('skippedFiles');
      digests?.file(e, d.digest ? fromHex(d.digest) : null);
      return true;
    };
    // Hard-linked files as the link plan says: secondaries are not copied (see copyAs).
    for (const found of lists.files()) {
      if (found.m.size <= chunk) continue;
      const e = links.copyAs(found);
      if (!e || done(e)) continue;
      large.push(e);
      if (opts.update && (await largeUpToDate(e, ctx))) continue;
      yield* largeFileItems(e, ctx);
    }
    const whole = function* (): Generator<Entry> {
      for (const found of lists.files()) {
        if (found.m.size > chunk) continue;
        const e = links.copyAs(found);
        if (e && !done(e)) yield e;
      }
    };
    for (const b of batches(whole(), (e) => e.m.size, chooseBatchFiles(walkTotals.files ?? 0, rt.size))) yield { t: 'b', f: b };
  }

  /** --update for a large file: same size and mtime (or content) in DST: leave it. */
  async function largeUpToDate(e: Entry, ctx: TaskContext<CopyItem>): Promise<boolean> {
    const dst = dstOf(roots, e);
    const st = await trees.dst.lstat(dst).catch(() => null);
    if (!st || !st.isFile() || st.size !== e.m.size) return false;
    let content: bigint | null = null;
    if (opts.update === 'time') {
      if (!sameByTime(e.m, st)) return false;
    } else {
      const [a, b] = await Promise.all([hashFile(trees.src, srcOf(roots, e), e.m.size), hashFile(trees.dst, dst, e.m.size)]);
      ctx.count('filesRead', 2);
      if (a !== b) return false;
      content = a;
      await applyMeta(dst, e.m, metaOptions(copyCtx, srcOf(roots, e)));
    }
    ctx.count('upToDate');
    ctx.count('upToDateBytes', e.m.size);
    store?.doneWork(e, -1, e.m.size, content === null ? null : toHex(content));
    digests?.file(e, content);
    report?.add(content === null ? ACTION.upToDate : ACTION.metadata, e.r, e.p);
    largeUpToDateSet.add(e);
    return true;
  }

  async function* largeFileItems(e: Entry, ctx: TaskContext<CopyItem>): AsyncGenerator<CopyItem> {
    const part = partName(dstOf(roots, e));
    // Chunks done by an earlier run count only if their part file is still there, whole.
    let doneChunks = resume?.doneFor(e).chunks ?? [];
    if (doneChunks.length > 0) {
      const st = await trees.dst.lstat(part).catch(() => null);
      if (!st || !st.isFile() || st.size !== e.m.size) doneChunks = [];
    }
    // --layout copy: a new part file gets the source's layout before any byte (and before
    // ftruncate, which gives it objects); one with chunks done keeps the layout it has.
    const withLayout = layout.copy && native !== null && doneChunks.length === 0;
    try {
      await retrying(async () => {
        const fd = await trees.dst.open(part, C.O_WRONLY | C.O_CREAT | (doneChunks.length > 0 ? 0 : C.O_TRUNC) | (withLayout ? O_LOV_DELAY_CREATE : 0), 0o600);
        try {
          if (withLayout) {
            await copyLayoutBeneath(native, trees.src, srcOf(roots, e), trees.dst, part, layout.name).catch((err) => {
              const p = errPath(err, part); // the file, not its hidden part file
              errors.report('set layout of', Buffer.isBuffer(p) && p.equals(part) ? dstOf(roots, e) : p, err);
            });
          }
          await new Promise<void>((resolve, reject) => ftruncateCb(fd, e.m.size, (err) => (err ? reject(err) : resolve())));
        } finally {
          await new Promise<void>((resolve) => closeCb(fd, () => resolve()));
        }
      });
    } catch (err) {
      errors.report('create', part, err);
      failed.set(fileKey(e), { code: 'REPORTED', onDst: true });
      return;
    }
    const have = new Map(doneChunks.map((d) => [`${d.off}:${d.len}`, d]));
    for (const [o, l] of chunksOf(e.m.size, chunk)) {
      const d = have.get(`${o}:${l}`);
      if (d) {
        ctx.count('skippedBytes', l);
        digests?.chunk(fileKey(e), o, d.digest);
      } else yield { t: 'c', f: e, o, l };
    }
  }

  // 5. finish large files: owners learn which files lost a chunk anywhere
  progress?.phase('finish');
  type Failure = [string, string, boolean];
  const isFailures = (x: unknown): x is Failure[] => Array.isArray(x) && x.every((f) => Array.isArray(f) && typeof f[0] === 'string' && typeof f[1] === 'string' && typeof f[2] === 'boolean');
  const failedEverywhere = new Map<string, Failure>();
  for (const f of (await rt.collectives.allgather<Failure[]>([...failed].map(([k, v]) => [k, v.code, v.onDst]), isFailures)).flat()) {
    if (!failedEverywhere.has(f[0])) failedEverywhere.set(f[0], f);
  }
  const chunkPartials = digests ? await digests.gatherChunks(rt) : null;
  let finishedFiles = 0;
  await forEachLimit(large.filter((e) => !largeUpToDateSet.has(e)), IN_FLIGHT, async (e) => {
    const src = srcOf(roots, e);
    const dst = dstOf(roots, e);
    const part = partName(dst);
    const why = failedEverywhere.get(fileKey(e));
    if (why) {
      // One line per file, from its owner, however many chunks failed where.
      if (why[1] !== 'REPORTED') errors.report('copy', why[2] ? dst : src, systemErrorFromCode(why[1]));
      // A chunk could not be read from SRC: the chunks that were copied are good and the
      // checkpoint records them, so keep the part file for --resume to copy only the
      // failed ones. Removed without a checkpoint (nothing could use it) and when DST
      // failed (a full disk needs the space back; what was written there is suspect), and
      // when the source changed while it was read (a resume copies it anew: its size or
      // mtime no longer match the chunks recorded).
      if (!store || why[2] || why[1] === 'ESHRUNK' || why[1] === 'ECHANGED') await trees.dst.removeTree(part).catch(() => {});
      return;
    }
    try {
      const st = await retrying(() => tracked('lstat of', src, () => trees.src.lstat(src)));
      if (st.size < e.m.size) throw Object.assign(new Error('shrank while copied'), { code: 'ESHRUNK' });
      if (st.size !== e.m.size || st.mtimeNs !== BigInt(e.m.mtime[0]) * 1_000_000_000n + BigInt(e.m.mtime[1])) {
        throw Object.assign(new Error('changed while copied'), { code: 'ECHANGED' });
      }
      let existed = false;
      await retrying(() => tracked('finish of', dst, async () => {
        await applyMeta(part, e.m, metaOptions(copyCtx, src));
        await datasyncBeforeRename(dataSync, trees.dst, part);
        if (report) existed = await trees.dst.lstat(dst).then(() => true, () => false);
        await trees.dst.rename(part, dst);
      }));
      dataSync.wrote(dst);
      report?.add(existed ? ACTION.updated : ACTION.copied, e.r, e.p);
      const content = chunkPartials ? CopyDigests.combine(chunkPartials.get(fileKey(e)), e.m.size, chunksOf(e.m.size, chunk)) : null;
      doneStore?.doneWork(e, -1, e.m.size, content === null ? null : toHex(content));
      digests?.file(e, content);
      finishedFiles++;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      errors.report('finish', code === 'ECHANGED' || code === 'ESHRUNK' ? src : dst, err);
      await trees.dst.removeTree(part).catch(() => {});
    }
  });
  await rt.barrier();
  mark('finish');

  // The signature's share of the secondaries, from their groups' owners (every primary's digest is known now).
  if (digests) await sumSecondaries(rt, links, digests);

  // 6. hard links: link to the primary's copy; replace only a regular file of that name
  progress?.phase('links');
  await forEachLimit(links.secondaries(), IN_FLIGHT, async (e) => {
    const target = dstOf(roots, e.primary);
    const dst = dstOf(roots, e);
    try {
      await retrying(async () => {
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
  mark('links');

  // 6b. --delete: what DST has and SRC has not (before directory metadata: removing
  // entries changes their directories' mtimes)
  let deleted = 0;
  let deleteRefused = guard?.refused ?? null;
  if (opts.deleteExtras && deleteRefused === null) {
    progress?.phase('delete');
    // Two lists (DST's entries, the extras) beside the walk's: half the budget each.
    const d = await deleteExtras(rt, { roots, trees, filter: opts.filter, errors, native, dryRun: false, verbose: false, maxDelete: opts.maxDelete, listBudget: Math.max(1000, Math.floor(opts.listBudget / 2)), report });
    deleted = d.deleted;
    deleteRefused = d.refused;
    mark('delete');
  }
  if (deleteRefused !== null && rt.rank === 0) process.stderr.write(`fcp: not deleting: ${deleteRefused}\n`);

  // 7. directory metadata, deepest level first, a barrier between levels
  progress?.phase('dir metadata');
  const isNum = (x: unknown): x is number => typeof x === 'number';
  const maxDepth = await rt.collectives.allreduce<number>(lists.maxDirDepth(), Math.max, isNum);
  jobLimits.allRanks(); // every rank sets directories' metadata
  for (let depth = maxDepth; depth >= 0; depth--) {
    await forEachLimit(lists.dirsAtDepth(depth), IN_FLIGHT, async (d) => {
      if (throttle?.active) await throttle.take(0, 1);
      digests?.plain(d);
      const dst = dstOf(roots, d);
      try {
        await retrying(() => tracked('set metadata of', dst, async () => {
          // --update: a directory whose metadata is already right is left alone (one lstat).
          if (opts.update && dirMetaSame(d.m, await trees.dst.lstatRecord(dst), asRoot)) return;
          await applyMeta(dst, d.m, metaOptions(copyCtx, srcOf(roots, d)));
        }));
      } catch (err) {
        errors.report('set metadata of', errPath(err, dst), err); // the source, when it is what changed
      }
    });
    await rt.barrier();
  }
  inFlight?.stop();
  jobLimits.stop();
  mark('dir metadata');

  // 8. verify: each rank re-reads what its ring neighbour wrote (and a share of what
  // earlier runs did) and compares it with the digests of what was read from SRC
  let verifyMismatches: number | undefined;
  if (opts.verify && digests) {
    progress?.phase('verify');
    rt.onProgress((_p, t) => progress?.copy(t.verified ?? 0, totalBytes, 0, 0));
    if (rt.rank === 0 && opts.corruptForTest) await corruptForTest(trees.dst, roots[0]!, opts.corruptForTest);
    // Every rank's done records in its file (synced first: they are the checkpoint's too).
    await (store ?? scratch!.store).commit();
    await rt.barrier();
    const peer = (rt.rank + 1) % rt.size;
    const rows = function* (): Generator<DoneWork> {
      const mine = store ? ckpt.rankFileOf(peer) : scratch!.store.path;
      yield* readVerifiable(mine, chunk);
      if (resume) {
        // Earlier runs' records: every rank reads them and keeps its share (by a hash of the path).
        for (const row of readVerifiable(resume.path, chunk)) {
          if ((pathHash(row.path) + row.off) % rt.size === rt.rank) yield row;
        }
      }
    };
    const v = await rt.runPhase(verifyTask({ roots, dst: trees.dst, errors, rows, writer: peer }));
    verifyMismatches = v.total.mismatches ?? 0;
    mark('verify');
  }
  const sig = digests ? await digests.signature(rt) : null;
  // Every entry has its line by now: each rank sorts its part, rank 0 joins them.
  if (jobReport) {
    progress?.phase('report');
    await jobReport.finish();
    mark('report');
  }
  progress?.done();

  // Everything this rank wrote is made durable before its last records are committed and
  // before success is reported (and the checkpoint removed, after the final barrier).
  if (store && !store.broken) await store.commit(true);
  else await dataSync.sync().catch(syncFailed);
  dataSync.close();
  mark('sync');

  // Summary; the checkpoint goes once everything is copied (kept on errors, to retry with --resume)
  // wall time as the user sees it: from the start of this process (rank 0 started the job)
  const seconds = performance.now() / 1000;
  const secondaryBytes = links.secondaryBytes();
  links.close();
  trees.close();
  const total = await rt.allreduceCounters({
    errors: errors.count, secondaryBytes, deleted, listSpilled: lists.isSpilled ? 1 : 0, retried: retries?.retried ?? 0, retries: retries?.retries ?? 0,
  });
  const finishedPerRank = await rt.collectives.allgather<number>(finishedFiles, isNum);
  const droppedMessages = await reportDrops(rt, 'fcp', (where, what) => errors.note(where, 'receive', 'EFOREIGN', what));
  const ranks = copy.perRank.map((c, r) => ({
    // whole files count when copied, large files once finished by their owner
    files: (c.files ?? 0) + (finishedPerRank[r] ?? 0),
    bytes: c.bytes ?? 0,
    chunks: c.chunks ?? 0,
    steals: (c.steals ?? 0) + (walk.perRank[r]?.steals ?? 0) + (mk.perRank[r]?.steals ?? 0),
  }));
  const errorsTotal = total.errors ?? 0;
  ckpt.close();
  scratch?.store.close();
  if (scratch) rmSync(scratch.dir, { recursive: true, force: true });
  // Removed last of all (after the final barrier, see endJob), so a job killed while it
  // exits still has its records: a resume then finds everything done.
  const finalize = () => {
    if (rt.rank !== 0) return;
    if (errorsTotal === 0 && !opts.keepCheckpoint) ckpt.dir.remove();
    else {
      ckpt.dir.unlock();
      if (errorsTotal > 0 && store) {
        process.stderr.write(`fcp: checkpoint kept in ${showPath(ckpt.dir.dir)}: fix the errors above, then '${opts.resumeCommand}' copies only what is missing\n`);
      }
    }
  };
  const copiedBytes = ranks.reduce((a, r) => a + r.bytes, 0);
  const summary: CopySummary = {
    files: walkTotals.files ?? 0,
    dirs: walkTotals.dirs ?? 0,
    symlinks: walkTotals.symlinks ?? 0,
    specials: walkTotals.specials ?? 0,
    // data bytes: a hard-linked file's data counts once, however many names it has
    bytes: totalBytes - (total.secondaryBytes ?? 0),
    seconds,
    bytesPerSecond: copiedBytes / Math.max(seconds, 1e-9),
    errors: errorsTotal,
    bytesCopied: copiedBytes,
    bytesSkipped: copy.total.skippedBytes ?? 0,
    filesCopied: ranks.reduce((a, r) => a + r.files, 0),
    filesSkipped: copy.total.skippedFiles ?? 0,
    chunkSize: chunk,
    signature: sig && sig.missing === 0 && errorsTotal === 0 ? toHex(sig.signature) : null,
    verifyMismatches,
    filesUpToDate: (copy.total.upToDate ?? 0) + walkUpToDate,
    filesRead: copy.total.filesRead ?? 0,
    deleted: total.deleted ?? 0,
    deleteRefused,
    excluded: walkTotals.excluded ?? 0,
    retried: total.retried ?? 0,
    retries: total.retries ?? 0,
    droppedMessages,
    spilled: {
      listRanks: total.listSpilled ?? 0,
      queueItems: (walk.total.spilledItems ?? 0) + (mk.total.spilledItems ?? 0) + (copy.total.spilledItems ?? 0),
    },
    ranks,
  };
  const exitCode = deleteRefused !== null ? EXIT.DELETE_REFUSED : errorsTotal > 0 || (verifyMismatches ?? 0) > 0 ? EXIT.ENTRIES_FAILED : EXIT.OK;
  return { summary, exitCode, finalize };
}

/** The summary of a job refused right after its walk: what was found, nothing copied. */
function nothingCopied(walk: Counters, size: number, deleteRefused: string | null, droppedMessages: DropCounts): CopySummary {
  return {
    files: walk.files ?? 0, dirs: walk.dirs ?? 0, symlinks: walk.symlinks ?? 0, specials: walk.specials ?? 0, bytes: walk.bytes ?? 0,
    seconds: performance.now() / 1000, bytesPerSecond: 0, errors: 0, bytesCopied: 0, bytesSkipped: 0, filesCopied: 0, filesSkipped: 0,
    chunkSize: 0, signature: null, filesUpToDate: 0, filesRead: 0, deleted: 0, deleteRefused, excluded: walk.excluded ?? 0, retried: 0, retries: 0, droppedMessages,
    spilled: { listRanks: 0, queueItems: 0 },
    ranks: Array.from({ length: size }, () => ({ files: 0, bytes: 0, chunks: 0, steals: 0 })),
  };
}

/** FNV-1a of a path: spreads records over ranks. */
function pathHash(p: Buffer): number {
  let h = 0x811c9dc5;
  for (const b of p) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
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
