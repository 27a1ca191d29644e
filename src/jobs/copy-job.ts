/**
 * The phases of a copy, with a collective between each (as mpiFileUtils' dcp):
 *
 *   1. walk          distributed, reads SRC only
 *   2. plan          totals, chunk size, hard-link groups (allgather of multi-link files)
 *   3. mkdir         every directory, owner-only mode for now (so read-only ones can be filled)
 *   4. copy          whole files, chunks of large files, symlinks and FIFOs (work stealing)
 *   5. finish        owners give large files their metadata and rename them into place
 *   6. links         extra names of hard-linked files
 *   7. dir metadata  deepest level first, so a directory's times and mode are set after
 *                    everything inside it is written
 */
import { promises as fsp, constants as C } from 'node:fs';
import type { Runtime } from '../engine/runtime.js';
import type { Counters } from '../transport/messages.js';
import { EntryErrors } from '../errors.js';
import { loadNative, nativeSkips } from '../native/loader.js';
import { walkTask } from '../walk/walk-task.js';
import { WalkLists } from '../walk/walk-lists.js';
import { isBuf, type Entry, type Root } from '../walk/entry.js';
import { batches, chooseChunkSize, chunksOf } from '../copy/plan.js';
import { copyTask, dstOf, fileKey, metaOptions, srcOf, type CopyItem } from '../copy/copy-task.js';
import { applyMeta } from '../copy/metadata.js';
import { depthOf, partName } from '../copy/paths.js';
import type { Task } from '../engine/task.js';
import { ProgressLine } from '../progress/progress-line.js';
import { openCheckpoint, type CheckpointOptions } from '../checkpoint/job-checkpoint.js';
import { EXIT } from '../engine/runtime.js';

export interface CopyJobOptions {
  roots: Root[];
  chunkSize?: number;
  quiet: boolean;
  json: boolean;
  checkpoint: CheckpointOptions;
  keepCheckpoint: boolean;
  /** the command that resumes this job, for messages */
  resumeCommand: string;
}

export interface CopySummary {
  files: number;
  dirs: number;
  symlinks: number;
  specials: number;
  bytes: number;
  seconds: number;
  bytesPerSecond: number;
  errors: number;
  /** bytes and files copied by this run; the rest was done by earlier runs (resume) */
  bytesCopied: number;
  bytesSkipped: number;
  filesCopied: number;
  filesSkipped: number;
  chunkSize: number;
  ranks: { files: number; bytes: number; chunks: number; steals: number }[];
}

const IN_FLIGHT = 16;

/** Run `fn` over items with at most `n` in flight. */
async function forEachLimit<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

export async function runCopyJob(rt: Runtime, opts: CopyJobOptions): Promise<{ summary: CopySummary; exitCode: number }> {
  const t0 = process.hrtime.bigint();
  const trace = process.env.FCP_TRACE_PHASES === '1' && rt.rank === 0;
  let tPhase = t0;
  if (trace) process.stderr.write(`[phase] startup (process start to job) ${performance.now().toFixed(1)} ms\n`);
  const mark = (name: string) => {
    if (!trace) return;
    const now = process.hrtime.bigint();
    process.stderr.write(`[phase] ${name} ${(Number(now - tPhase) / 1e6).toFixed(1)} ms\n`);
    tPhase = now;
  };
  const native = loadNative();
  const errors = new EntryErrors('fcp');
  const lists = new WalkLists();
  const uid = process.getuid?.() ?? 0;
  const asRoot = uid === 0;
  const roots = opts.roots;
  const progress = rt.rank === 0 && !opts.quiet && process.stdout.isTTY ? new ProgressLine(process.stdout) : null;

  if (rt.rank === 0 && !native && !opts.quiet) {
    process.stderr.write(`fcp: native addon not loaded: ${nativeSkips().join('; ')}\n`);
  }

  // 0. checkpoint: lock, merge earlier runs (resume), open this rank's store
  const ckpt = await openCheckpoint(rt, opts.checkpoint);
  const { store, resume } = ckpt;
  if (rt.rank === 0) {
    rt.addAbortHook((_reason, code) => {
      if (code === EXIT.INTERRUPTED || code === EXIT.ABORTED) process.stderr.write(`fcp: progress is saved in ${ckpt.dir.dir}; resume with: ${opts.resumeCommand}\n`);
    });
  }

  // 1. walk
  let walkTotals: Counters = {};
  rt.onProgress((_p, total) => progress?.walk(total.entries ?? 0));
  const walk = await rt.runPhase(walkTask({ roots, lists, errors, uid, native, store, resume }));
  walkTotals = walk.total;
  mark('walk');
  if (rt.rank === 0 && !asRoot && (walkTotals.foreignOwner ?? 0) > 0 && !opts.quiet) {
    process.stderr.write(`fcp: not running as root: ${walkTotals.foreignOwner} entries owned by other users will be owned by uid ${uid}\n`);
  }

  // 2. plan: chunk size and hard links
  // A resume cuts files as the first run did, so its recorded chunks line up.
  const chunk = opts.chunkSize ?? ckpt.earlierChunkSize ?? chooseChunkSize(walkTotals.bytes ?? 0, rt.size);
  if (rt.rank === 0) store?.setMeta('chunkSize', String(chunk));
  type LinkRec = [string, number, Buffer];
  const isLinkRecs = (x: unknown): x is LinkRec[] =>
    Array.isArray(x) && x.every((l) => Array.isArray(l) && l.length === 3 && typeof l[0] === 'string' && Number.isInteger(l[1]) && isBuf(l[2]));
  const mine: LinkRec[] = lists.files.filter((e) => e.h).map((e) => [e.h!, e.r, e.p]);
  const allLinks = (await rt.collectives.allgather<LinkRec[]>(mine, isLinkRecs)).flat();
  const primary = new Map<string, LinkRec>();
  for (const l of allLinks) {
    const p = primary.get(l[0]);
    if (!p || l[1] < p[1] || (l[1] === p[1] && Buffer.compare(l[2], p[2]) < 0)) primary.set(l[0], l);
  }
  const secondaries: { e: Entry; primary: LinkRec }[] = [];
  const toCopy: Entry[] = [];
  for (const e of lists.files) {
    const p = e.h ? primary.get(e.h) : undefined;
    if (p && !(p[1] === e.r && p[2].equals(e.p))) secondaries.push({ e, primary: p });
    else toCopy.push(e);
  }

  mark('plan');

  // 3. mkdir (order-free: recursive mkdir creates missing parents; modes are fixed in 7)
  const mkdirTask: Task<Entry[]> = {
    name: 'mkdir',
    concurrency: 4,
    seed(ctx) {
      for (const b of batches(lists.dirs, () => 0, 128)) ctx.enqueue(b);
    },
    async process(list, ctx) {
      await forEachLimit(list, 8, async (d) => {
        const dst = dstOf(roots, d);
        try {
          await fsp.mkdir(dst, { recursive: true, mode: 0o700 });
          const st = await fsp.lstat(dst);
          if (!st.isDirectory()) throw Object.assign(new Error('exists and is not a directory'), { code: 'EEXIST' });
          ctx.count('dirs');
        } catch (err) {
          errors.report('create directory', dst, err);
          ctx.count('errors');
        }
      });
    },
    isItem: (x): x is Entry[] => Array.isArray(x) && x.every((e) => typeof e === 'object' && e !== null && (e as Entry).k === 'd' && isBuf((e as Entry).p)),
  };
  const mk = await rt.runPhase(mkdirTask);
  mark('mkdir');

  // 4. copy: what an earlier run finished (same source size and mtime) is skipped
  const failed = new Set<string>();
  let skippedBytes = 0;
  let skippedFiles = 0;
  const large: Entry[] = [];
  const largeDone = new Set<string>();
  const whole: Entry[] = [];
  for (const e of toCopy) {
    const done = resume?.doneFor(e);
    if (done?.whole) {
      skippedBytes += e.m.size;
      skippedFiles++;
      if (e.m.size > chunk) largeDone.add(fileKey(e));
      continue;
    }
    (e.m.size > chunk ? large : whole).push(e);
  }
  const totalBytes = walkTotals.bytes ?? 0;
  const skipped = await rt.allreduceCounters({ bytes: skippedBytes, files: skippedFiles });
  rt.onProgress((_p, total) => progress?.copy((total.bytes ?? 0) + (skipped.bytes ?? 0), totalBytes, (total.files ?? 0) + (skipped.files ?? 0), walkTotals.files ?? 0));
  const copyCtx = { roots, native, chown: asRoot, errors, failed, store };
  const copy = await rt.runPhase(copyTask({
    ...copyCtx,
    async *seedItems(): AsyncGenerator<CopyItem> {
      // Others first (cheap), then large files' chunks (the owner creates the part file
      // first, so a thief never gets a chunk of a file that does not exist yet), then
      // whole files last: LIFO makes this rank start on whole files while thieves take
      // chunks from the bottom of the queue.
      for (const b of batches(lists.others, () => 0, 128)) yield { t: 'o', e: b };
      for (const e of large) {
        const part = partName(dstOf(roots, e));
        // Chunks done by an earlier run count only if their part file is still there, whole.
        let doneChunks = resume?.doneFor(e).chunks ?? [];
        if (doneChunks.length > 0) {
          const st = await fsp.lstat(part).catch(() => null);
          if (!st || !st.isFile() || st.size !== e.m.size) doneChunks = [];
        }
        try {
          const flags = C.O_WRONLY | C.O_CREAT | C.O_NOFOLLOW | (doneChunks.length > 0 ? 0 : C.O_TRUNC);
          const fh = await fsp.open(part, flags, 0o600);
          await fh.truncate(e.m.size);
          await fh.close();
        } catch (err) {
          errors.report('create', part, err);
          failed.add(fileKey(e));
          continue;
        }
        const have = new Set(doneChunks.map((d) => `${d.off}:${d.len}`));
        for (const [o, l] of chunksOf(e.m.size, chunk)) {
          if (have.has(`${o}:${l}`)) {
            skippedBytes += l;
            continue;
          }
          yield { t: 'c', f: e, o, l };
        }
      }
      for (const b of batches(whole, (e) => e.m.size)) yield { t: 'b', f: b };
    },
  }));

  mark('copy');

  // 5. finish large files: owners learn which files lost a chunk anywhere
  const isKeys = (x: unknown): x is string[] => Array.isArray(x) && x.every((k) => typeof k === 'string');
  const failedEverywhere = new Set((await rt.collectives.allgather<string[]>([...failed], isKeys)).flat());
  let finishedFiles = 0;
  await forEachLimit(large, IN_FLIGHT, async (e) => {
    const src = srcOf(roots, e);
    const dst = dstOf(roots, e);
    const part = partName(dst);
    if (failedEverywhere.has(fileKey(e))) {
      await fsp.rm(part, { force: true }).catch(() => {});
      return;
    }
    try {
      const st = await fsp.lstat(src, { bigint: true });
      if (Number(st.size) !== e.m.size || st.mtimeNs !== BigInt(e.m.mtime[0]) * 1_000_000_000n + BigInt(e.m.mtime[1])) {
        throw Object.assign(new Error('changed while copied'), { code: 'ECHANGED' });
      }
      await applyMeta(part, e.m, metaOptions({ ...copyCtx, seedItems: () => [] }, src));
      await fsp.rename(part, dst);
      store?.doneWork(e, -1, e.m.size);
      finishedFiles++;
    } catch (err) {
      errors.report('finish', (err as NodeJS.ErrnoException).code === 'ECHANGED' ? src : dst, err);
      await fsp.rm(part, { force: true }).catch(() => {});
    }
  });
  await rt.barrier();

  mark('finish');

  // 6. hard links
  await forEachLimit(secondaries, IN_FLIGHT, async ({ e, primary: p }) => {
    const target = dstOf(roots, { ...e, r: p[1], p: p[2] });
    const dst = dstOf(roots, e);
    try {
      try {
        await fsp.link(target, dst);
      } catch (err) {
        // Overwrite a regular file of the same name (as cp does), nothing else.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !(await fsp.lstat(dst)).isFile()) throw err;
        await fsp.unlink(dst);
        await fsp.link(target, dst);
      }
    } catch (err) {
      errors.report('link', dst, err);
    }
  });
  await rt.barrier();

  mark('links');

  // 7. directory metadata, deepest level first
  const isDepth = (x: unknown): x is number => typeof x === 'number';
  const maxDepth = await rt.collectives.allreduce<number>(lists.maxDirDepth(), Math.max, isDepth);
  const byDepth = new Map<number, Entry[]>();
  for (const d of lists.dirs) {
    const k = depthOf(d.p);
    if (!byDepth.has(k)) byDepth.set(k, []);
    byDepth.get(k)!.push(d);
  }
  for (let depth = maxDepth; depth >= 0; depth--) {
    await forEachLimit(byDepth.get(depth) ?? [], IN_FLIGHT, async (d) => {
      const dst = dstOf(roots, d);
      try {
        await applyMeta(dst, d.m, metaOptions({ ...copyCtx, seedItems: () => [] }, srcOf(roots, d)));
      } catch (err) {
        errors.report('set metadata of', dst, err);
      }
    });
    await rt.barrier();
  }
  progress?.done();
  mark('dir metadata');

  // Summary; the checkpoint goes once everything is copied (kept on errors, to retry with --resume)
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const total = await rt.allreduceCounters({ errors: errors.count, finished: finishedFiles, skippedBytes, skippedFiles });
  const isNum = (x: unknown): x is number => typeof x === 'number';
  const finishedPerRank = await rt.collectives.allgather<number>(finishedFiles, isNum);
  const ranks = copy.perRank.map((c, r) => ({
    // whole files count when copied, large files once finished by their owner
    files: (c.files ?? 0) + (finishedPerRank[r] ?? 0),
    bytes: c.bytes ?? 0,
    chunks: c.chunks ?? 0,
    steals: (c.steals ?? 0) + (walk.perRank[r]?.steals ?? 0) + (mk.perRank[r]?.steals ?? 0),
  }));
  const errorsTotal = total.errors ?? 0;
  ckpt.close();
  await rt.barrier();
  if (rt.rank === 0) {
    if (errorsTotal === 0 && !opts.keepCheckpoint) ckpt.dir.remove();
    else {
      ckpt.dir.unlock();
      if (errorsTotal > 0 && opts.checkpoint.enabled) {
        process.stderr.write(`fcp: checkpoint kept in ${ckpt.dir.dir}: fix the errors above, then ${opts.resumeCommand} copies only what is missing\n`);
      }
    }
  }
  const copiedBytes = ranks.reduce((a, r) => a + r.bytes, 0);
  const summary: CopySummary = {
    files: walkTotals.files ?? 0,
    dirs: walkTotals.dirs ?? 0,
    symlinks: walkTotals.symlinks ?? 0,
    specials: walkTotals.specials ?? 0,
    bytes: totalBytes,
    seconds,
    bytesPerSecond: copiedBytes / Math.max(seconds, 1e-9),
    errors: errorsTotal,
    bytesCopied: copiedBytes,
    bytesSkipped: total.skippedBytes ?? 0,
    filesCopied: ranks.reduce((a, r) => a + r.files, 0),
    filesSkipped: total.skippedFiles ?? 0,
    chunkSize: chunk,
    ranks,
  };
  return { summary, exitCode: errorsTotal > 0 ? 1 : 0 };
}
