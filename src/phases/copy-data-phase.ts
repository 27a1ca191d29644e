/**
 * 4. copy data: whole files in batches, chunks of large files, symlinks and FIFOs, with
 * work stealing (copy/copy-task.ts); what an earlier run finished is skipped. Collective.
 *
 * The engine pulls this rank's work from a lazy seed (`copyItems`), read from the walk
 * lists as it goes, never a whole list in memory. The seed is also where each large
 * file's `.part` file is created (sized, and given its layout) before its chunks are
 * handed out, so that a thief never gets a chunk of a file that does not exist; the
 * large files it sees are collected for the finish phase, which renames them into place.
 */
import { constants as C, close as closeCb, ftruncate as ftruncateCb } from 'node:fs';
import { noPhase, type PhaseResult, type TaskContext } from '../engine/task.js';
import type { Counters } from '../transport/messages.js';
import type { Entry } from '../model/entry.js';
import { BATCH_BYTES, batches, chooseBatchFiles, chunksOf, PackedBatcher } from '../copy/plan.js';
import { runEntry, runSize, type FileRun } from '../model/file-run.js';
import { statBytes } from '../checkpoint/listing.js';
import { copyTask } from '../copy/copy-task.js';
import { metaOptions, type ChunkFailure, type CopyContext } from '../copy/copy-context.js';
import type { CopyItem } from '../copy/copy-item.js';
import { hashFile } from '../copy/hash-file.js';
import { applyMeta } from '../copy/metadata.js';
import { dstOf, errPath, fileKey, partName, srcOf } from '../model/paths.js';
import { CopyDigests } from '../copy/copy-digests.js';
import { copyLayoutBeneath } from '../io/beneath.js';
import { O_LOV_DELAY_CREATE } from '../copy/layout.js';
import { sameByTime } from '../model/update-rule.js';
import type { RankStore } from '../checkpoint/rank-store.js';
import { initHashing, fromHex, toHex } from '../checksum/hasher.js';
import { ACTION } from '../report/report-part.js';
import type { CopySummary } from '../jobs/copy-summary.js';
import type { CopyRun } from './run.js';
import type { Walked } from './walk-phase.js';
import type { Plan } from './plan-phase.js';

export interface Copied {
  result: PhaseResult;
  /** false: the walk left nothing to copy on any rank (Walked.left), so the phase did not run, and no rank has large files to finish */
  ran: boolean;
  /** large files one of whose chunks failed on this rank: fileKey -> why (the finish phase names them) */
  failed: Map<string, ChunkFailure>;
  /** the large files this rank owns, with their part files created: the finish phase's work */
  large: Entry[];
  /** large files --update left alone: not finished (renamed) either */
  largeUpToDate: Set<Entry>;
  /** digests of what was read (--hash): the signature and --verify; null without hashing */
  digests: CopyDigests | null;
  /** where finished work is recorded: the checkpoint, or for --verify a scratch store; null: nowhere */
  doneStore: RankStore | null;
  /** bytes in the tree (the walk's count) */
  totalBytes: number;
}

/**
 * What the copy task works with (`digests`: what it reads is hashed into them; `failed`:
 * large files one of whose chunks failed). Finished work is recorded for a resume (the
 * checkpoint) and for --verify (which reads the records back); with neither, nowhere.
 */
export function copyContext(run: CopyRun, digests: CopyDigests | null, failed: Map<string, ChunkFailure>): Omit<CopyContext, 'seedItems'> {
  const { opts } = run;
  return {
    roots: run.roots, trees: run.trees, native: run.native, chown: run.chown, errors: run.errors, failed, store: run.store ?? (opts.verify ? run.scratch!.store : null),
    sync: run.dataSync, digests, update: opts.update, inFlight: run.inFlight, layout: run.layout, retries: run.retries, report: run.report, limits: run.throttle,
    slowMs: opts.testSlowCopyMs,
  };
}

/** r with more's counters added (the files the walk copied, or null: r as it is). */
function addCounters(r: PhaseResult, more: PhaseResult | null): PhaseResult {
  if (!more) return r;
  return { local: sumCounters(r.local, more.local), total: sumCounters(r.total, more.total), perRank: r.perRank.map((c, i) => sumCounters(c, more.perRank[i])) };
}

function sumCounters(a: Counters, b: Counters | undefined): Counters {
  if (!b) return a;
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

export async function copyDataPhase(run: CopyRun, walked: Walked, plan: Plan): Promise<Copied> {
  const { rt, opts, progress, known, roots, trees, errors, resume, store, native, layout } = run;
  const { chunk, links } = plan;
  const walkTotals = walked.result.total;
  progress?.phase('copy');
  const failed = new Map<string, ChunkFailure>();
  const large: Entry[] = [];
  const largeUpToDateSet = new Set<Entry>();
  const totalBytes = walkTotals.bytes ?? 0;
  // Files the walk found up to date count with the copy's own.
  const walkUpToDate = walkTotals.upToDate ?? 0;
  const walkUpToDateBytes = walkTotals.upToDateBytes ?? 0;
  const copiedInWalk = walked.overlap?.copied.total;
  rt.onProgress((_p, now) => {
    const t = sumCounters(now, copiedInWalk);
    progress?.copy((t.bytes ?? 0) + (t.skippedBytes ?? 0) + (t.upToDateBytes ?? 0) + walkUpToDateBytes, totalBytes, (t.files ?? 0) + (t.skippedFiles ?? 0) + (t.upToDate ?? 0) + walkUpToDate, walkTotals.files ?? 0, now.bytes ?? 0);
    Object.assign(known, {
      bytesCopied: t.bytes ?? 0, bytesSkipped: t.skippedBytes ?? 0, filesCopied: t.files ?? 0, filesSkipped: t.skippedFiles ?? 0,
      filesUpToDate: (t.upToDate ?? 0) + walkUpToDate, filesRead: t.filesRead ?? 0,
    } satisfies Partial<CopySummary>);
  });
  if (opts.hash) await initHashing();
  const digests = opts.hash ? new CopyDigests((h, hex) => links.primaryContent(h, hex)) : null;
  // Up to date in the walk: not read, so their digests are missing from the signature.
  if (digests) digests.missing += walked.result.local.upToDate ?? 0;
  // What the walk copied (walk-copy.ts) counts with this phase's own work.
  const overlap = walked.overlap;
  if (digests && overlap?.digests) digests.absorb(overlap.digests);
  const copyCtx = copyContext(run, digests, failed);
  const doneStore = copyCtx.store ?? null;
  // The walk copied or found up to date every file, and there is nothing else: no rank
  // has work, so no phase (and none of its collectives).
  const ran = walked.left.copy;
  const result = addCounters(ran ? await rt.runPhase(copyTask({
    ...copyCtx,
    seedItems: (ctx) => copyItems(ctx),
  })) : noPhase(rt.size), overlap?.copied ?? null);
  {
    const t = result.total;
    progress?.copy((t.bytes ?? 0) + (t.skippedBytes ?? 0) + (t.upToDateBytes ?? 0) + walkUpToDateBytes, totalBytes, (t.files ?? 0) + (t.skippedFiles ?? 0) + (t.upToDate ?? 0) + walkUpToDate, walkTotals.files ?? 0);
  }
  run.mark('copy');
  return { result, ran, failed, large, largeUpToDate: largeUpToDateSet, digests, doneStore, totalBytes };

  /**
   * This rank's copy work, lazily: others first (cheap), then each large file's chunks
   * (its part file is created first, so a thief never gets a chunk of a file that does
   * not exist), whole files in batches as they come.
   */
  async function* copyItems(ctx: TaskContext<CopyItem>): AsyncGenerator<CopyItem> {
    for (const b of batches(run.lists.others(), () => 0, 128)) yield { t: 'o', e: b };
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
    // Plain files the walk kept packed (model/file-run.ts) go to the copy packed, unless a
    // resume must look each one up; only a large one becomes an entry. Two passes over the
    // lists, as many as reading them one by one took.
    const found = (): Iterable<Entry | FileRun> => (resume ? run.lists.files() : run.lists.filesPacked());
    // Hard-linked files as the link plan says: secondaries are not copied (see copyAs).
    const largeItems = async function* (f: Entry): AsyncGenerator<CopyItem> {
      const e = links.copyAs(f);
      if (!e || done(e)) return;
      large.push(e);
      if (opts.update && (await largeUpToDate(e, ctx))) return;
      yield* largeFileItems(e, ctx);
    };
    for (const x of found()) {
      if (!('idx' in x)) {
        if (x.m.size > chunk) yield* largeItems(x);
      } else {
        for (let k = 0; k < x.idx.length; k++) if (runSize(x, k) > chunk) yield* largeItems(runEntry(x, k));
      }
    }
    const perBatch = chooseBatchFiles(walkTotals.files ?? 0, run.rt.size);
    const packedFiles = new PackedBatcher(perBatch);
    let list: Entry[] = [];
    let listBytes = 0;
    for (const x of found()) {
      if ('idx' in x) {
        for (const i of x.idx) {
          const b = packedFiles.add(x, i, chunk);
          if (b) yield { t: 'p', p: b.rels, n: statBytes(b.nums) };
        }
        continue;
      }
      if (x.m.size > chunk) continue;
      const e = links.copyAs(x);
      if (!e || done(e)) continue;
      list.push(e);
      listBytes += e.m.size;
      if (list.length >= perBatch || listBytes >= BATCH_BYTES) {
        yield { t: 'b', f: list };
        list = [];
        listBytes = 0;
      }
    }
    if (list.length > 0) yield { t: 'b', f: list };
    const rest = packedFiles.rest();
    if (rest) yield { t: 'p', p: rest.rels, n: statBytes(rest.nums) };
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
    run.report?.add(content === null ? ACTION.upToDate : ACTION.metadata, e.r, e.p);
    largeUpToDateSet.add(e);
    return true;
  }

  /** Creates e's part file (sized; --layout copy: its layout first), then yields the chunks not done yet. */
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
    // The chunk size is on record before the part file exists (see RankStore.ensureFacts).
    run.store?.ensureFacts();
    try {
      await run.retrying(async () => {
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
}
