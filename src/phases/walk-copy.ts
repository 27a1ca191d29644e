/**
 * The walk overlapped with the copy of small files (issue 15: on a tree whose walk takes
 * long, data moves while the walk runs). On a file system with a round trip per request
 * the copy then also opens names the walk has just looked up, still in the client's name
 * cache (on latfs at 1 ms they had expired when the copy phase came to them).
 *
 * One engine phase, two kinds of items under one termination, both stealable: the walk's
 * ('d', 's') and the copy's packed batches of plain files ('p', and what a batch hands on:
 * its retries, the files after one that hangs). When the walk finds a directory it makes
 * its destination with the mkdir phase's rules (makeDirectory), before the directory is
 * enqueued, so whoever reads it can copy its files at once; each stat'ed batch's plain
 * files of at most MIN_CHUNK bytes (whole files whatever chunk size the plan picks) go
 * to the same native batch copy as in the copy phase, enqueued after the batch's
 * subdirectories: the queue is LIFO, so the rank copies a directory's files right after
 * listing them, while thieves take the older items, mostly directories still to read.
 * The checkpoint records listings and done batches as it does when the phases are apart.
 *
 * What needs the whole walk stays after it: hard-linked files (their groups), larger
 * files (the plan's chunk size), symlinks and other entries, directory metadata,
 * --delete, verify. See `overlapUnfit` for the jobs that keep the phases apart.
 */
import type { PhaseResult, Task, TaskContext } from '../engine/task.js';
import type { Counters } from '../transport/messages.js';
import type { WalkItem, WalkSink } from '../walk/walk-context.js';
import { dirKey } from '../model/paths.js';
import { BATCH_FILES, chooseBatchFiles, COPY_BATCHES_IN_FLIGHT, MIN_CHUNK, PackedBatcher, type PackedBatch } from '../copy/plan.js';
import { statBytes } from '../checkpoint/listing.js';
import { copyTask } from '../copy/copy-task.js';
import type { CopyItem } from '../copy/copy-item.js';
import { CopyDigests } from '../copy/copy-digests.js';
import { initHashing } from '../checksum/hasher.js';
import { forEachLimit } from '../util/for-each-limit.js';
import { dirMaker, makeDirectory } from './mkdir-phase.js';
import { copyContext } from './copy-data-phase.js';
import type { CopyRun } from './run.js';

/**
 * Walk items (directories being read) in flight on one rank of `size` (see the task's
 * kinds): about 32 over the job's ranks, between 2 and all 12 of a rank's items. Few ranks
 * each read many directories at once (on latfs at 1 ms, -np 2 took 2.01 s with 4, 1.74 s
 * with 8, 1.67 s with 12); many ranks leave most of what they listed to thieves (simulated
 * cluster, 8 ranks: 4 each, see the README).
 */
export function walkItemsInFlight(size: number): number {
  return Math.min(COPY_BATCHES_IN_FLIGHT, Math.max(2, Math.round(32 / size)));
}

/** The copy's counters in the overlapped phase carry this prefix (the walk counts files and bytes found). */
const COPY_COUNTER = 'copy.';

export interface Overlap {
  /** what the walk hands on */
  sink: WalkSink;
  /** the walk with the copy, as one task */
  task: (walk: Task<WalkItem>) => Task<WalkItem | CopyItem>;
  /** dirKey of every directory whose destination this rank made (or failed to make, named) in the walk */
  made: Set<string>;
  /** what the walk's copy read (--hash); the copy phase adds it to its own */
  digests: CopyDigests | null;
  /** this rank's counters of the phase so far (the copy's with COPY_COUNTER before their names; see splitCounters) */
  local: () => Readonly<Counters>;
}

/**
 * Why the copy cannot start during this job's walk (null: it can). Each keeps today's
 * order, walk then copy.
 */
export function overlapUnfit(run: CopyRun): string | null {
  const { opts } = run;
  // packed batches go native; without the addon files go one by one in the copy phase
  if (!run.native) return 'no native addon';
  // every file is looked up in the earlier runs' done records (copy-data-phase.ts done())
  if (run.resume) return '--resume';
  // listed names come with implied parents, recorded apart (walk/list-source.ts)
  if (opts.filesFrom) return '--files-from';
  // time: the walk compares with DST itself and lists only what differs; checksum: file by file in JS
  if (opts.update) return '--update';
  // its guards may refuse the job after the walk, before anything is written
  if (opts.deleteExtras) return '--delete';
  return null;
}

/** The overlap of this job's walk with the copy (call when overlapUnfit says null). */
export async function overlap(run: CopyRun): Promise<Overlap> {
  const { opts } = run;
  if (opts.hash) await initHashing();
  // Plain files only: no hard-linked content to hand to its other names.
  const digests = opts.hash ? new CopyDigests() : null;
  const copy = copyTask({ ...copyContext(run, digests, new Map()), seedItems: () => [] });
  const maker = dirMaker(run);
  const made = new Set<string>();
  // Never a file the copy phase would cut into chunks (the chunk size is at least MIN_CHUNK).
  const maxSize = Math.min(opts.chunkSize ?? MIN_CHUNK, MIN_CHUNK);
  run.lists.handsOnFilesUpTo(maxSize);
  let all: TaskContext<WalkItem | CopyItem> | null = null;
  let asCopy: TaskContext<CopyItem> | null = null;
  let handed = 0;
  // Files wait here for a batch only while a walk item of this rank runs (it flushes
  // them when it is the last to end), so none is left out when the rank goes idle.
  const batcher = new PackedBatcher(BATCH_FILES);
  let pending = 0;
  let walking = 0;
  const sink: WalkSink = {
    maxSize,
    async dirs(found) {
      if (run.throttle?.active) await run.throttle.take(0, found.length); // one operation per directory (--max-ops)
      await forEachLimit(found, 8, async (d) => {
        made.add(dirKey(d.r, d.p));
        await makeDirectory(maker, d);
      });
    },
    files(files) {
      // Batches as the copy phase cuts them for a job of (so far) this many files a rank:
      // small while the walk has found little, so that the first ones spread over the ranks.
      // A batch may span directories (a tree of small directories would otherwise make a
      // batch of each, and pay a native job and a checkpoint row for a few files).
      handed += files.idx.length;
      const perBatch = chooseBatchFiles(handed * run.rt.size, run.rt.size);
      for (const i of files.idx) {
        const full = batcher.add(files, i, maxSize);
        if (full) {
          enqueue(full);
          pending = 0;
        } else if (++pending >= perBatch) flush();
      }
    },
  };
  const enqueue = (b: PackedBatch) => all!.enqueue({ t: 'p', p: b.rels, n: statBytes(b.nums) });
  /** The files not in a batch yet, as one (called whenever this rank's last walk item in flight ends). */
  const flush = () => {
    const rest = batcher.rest();
    if (rest) enqueue(rest);
    pending = 0;
  };
  const task = (walk: Task<WalkItem>): Task<WalkItem | CopyItem> => ({
    name: walk.name,
    concurrency: COPY_BATCHES_IN_FLIGHT,
    // Directories a rank has listed and not started reading stay in its queue for thieves:
    // with all 12 slots open to them, the rank that read the root started reading 12 of its
    // subdirectories at once (and then held all their files) while the others had nothing.
    kinds: { of: (item) => (item.t === 'd' || item.t === 's' ? 0 : 1), max: [walkItemsInFlight(run.rt.size), COPY_BATCHES_IN_FLIGHT] },
    async seed(ctx) {
      all = ctx;
      asCopy = {
        rank: ctx.rank, size: ctx.size,
        enqueue: (item) => ctx.enqueue(item),
        enqueueLater: (item, ms) => ctx.enqueueLater(item, ms),
        count: (name, n) => ctx.count(COPY_COUNTER + name, n),
        get counters() { return ctx.counters; },
      };
      await walk.seed(ctx);
    },
    ready: walk.ready?.bind(walk),
    async process(item, ctx) {
      if (item.t !== 'd' && item.t !== 's') {
        asCopy!.count('started'); // (the progress line says "copying" from the first)
        return copy.process(item, asCopy!);
      }
      walking++;
      try {
        await walk.process(item, ctx);
      } finally {
        if (--walking === 0) flush();
      }
    },
    isItem: (x): x is WalkItem | CopyItem => walk.isItem(x) || copy.isItem(x),
  });
  return { sink, task, made, digests, local: () => all?.counters ?? {} };
}

/** The overlapped phase's result split in two: the walk's counters, and the copy's (as if a phase of its own). */
export function splitCounters(r: PhaseResult): { walk: PhaseResult; copy: PhaseResult } {
  const split = (c: Counters): [Counters, Counters] => {
    const walk: Counters = {};
    const copy: Counters = {};
    for (const [k, v] of Object.entries(c)) {
      if (k.startsWith(COPY_COUNTER)) copy[k.slice(COPY_COUNTER.length)] = v;
      else walk[k] = v;
    }
    return [walk, copy];
  };
  const [wl, cl] = split(r.local);
  const [wt, ct] = split(r.total);
  const per = r.perRank.map(split);
  return { walk: { local: wl, total: wt, perRank: per.map((p) => p[0]) }, copy: { local: cl, total: ct, perRank: per.map((p) => p[1]) } };
}
