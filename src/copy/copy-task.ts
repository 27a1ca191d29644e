/**
 * The copy phase's task: whole files in batches, chunks of large files, and the other
 * non-directory entries (symlinks, FIFOs). Directories exist already (mkdir phase);
 * large files' `.part` files were created by their owners when seeding.
 *
 * A whole file gets its metadata right after its content. A chunk only writes bytes: its
 * file is finished (metadata, rename into place) by the owner in the finish step, after
 * every chunk is known to be done.
 */
import type { Task, TaskContext } from '../engine/task.js';
import type { Entry } from '../model/entry.js';
import { isCopyItem, itemBytes, itemOps, type CopyItem } from './copy-item.js';
import type { CopyContext } from './copy-context.js';
import { entryCopiers } from './copy-entries.js';
import { nativeBatchCopier } from './copy-batch.js';
import { COPY_BATCHES_IN_FLIGHT } from './plan.js';
import { doublesView, packedEntry } from '../model/file-run.js';

/**
 * Files copied at once within one batch item when it goes file by file in JS (overlaps
 * per-file syscall latency): about 32 over the rank's items in flight, as when a rank ran
 * 4 items of 8, since each file past 64 KiB holds a 4 MiB buffer.
 */
const FILES_IN_FLIGHT = Math.max(1, Math.round(32 / COPY_BATCHES_IN_FLIGHT));

type Ctx = TaskContext<CopyItem>;

/** A batch item: whole files, as entries ('b') or packed as the walk read them ('p'). */
type FilesItem = Extract<CopyItem, { t: 'b' | 'p' }>;

export function copyTask(c: CopyContext): Task<CopyItem> {
  const { copyWhole, copyChunk, createOther } = entryCopiers(c);

  /** Entries FILES_IN_FLIGHT at a time, each by `one`. */
  const eachEntry = async (list: Entry[], one: (e: Entry, ctx: Ctx, attempt: number) => Promise<unknown>, ctx: Ctx, attempt: number) => {
    for (let i = 0; i < list.length; i += FILES_IN_FLIGHT) {
      await Promise.all(list.slice(i, i + FILES_IN_FLIGHT).map((e) => one(e, ctx, attempt)));
    }
  };

  /**
   * How whole files are copied, chosen once for the job: in native batches, or file by
   * file in JS when batches cannot go native (no addon, an anchor missing,
   * --update=checksum: see nativeBatchCopier); a packed batch then becomes entries (one
   * stolen by such a rank too).
   */
  const nativeBatch = nativeBatchCopier(c);
  const copyFiles: (item: FilesItem, ctx: Ctx, attempt: number) => Promise<void> = nativeBatch
    ? (item, ctx, attempt) => nativeBatch(item.t === 'b' ? { entries: item.f } : { rels: item.p, nums: doublesView(item.n) }, ctx, attempt)
    : (item, ctx, attempt) => eachEntry(item.t === 'b' ? item.f : item.p.map((_, i) => packedEntry(item.p, doublesView(item.n), i)), copyWhole, ctx, attempt);

  return {
    name: 'copy',
    concurrency: COPY_BATCHES_IN_FLIGHT,
    seed() {},
    source: (ctx) => c.seedItems(ctx),
    // Rate limits: an item waiting for its turn holds the rest in the queue, stealable.
    ready: c.limits ? () => (c.limits!.active ? c.limits!.idle() : null) : undefined,
    async process(item, ctx) {
      // The job is stopping (a signal, a full disk): start nothing new; a resume does it.
      if (c.inFlight?.draining) return;
      // Test hook: slow every item down, so a test can stop a copy while it surely runs.
      if (c.slowMs) await new Promise((r) => setTimeout(r, c.slowMs));
      if (c.limits?.active) {
        // --update in a native batch: only the files it copies move bytes, known after it (paid there).
        await c.limits.take((item.t === 'b' || item.t === 'p') && nativeBatch && c.update === 'time' ? 0 : itemBytes(item), itemOps(item));
        if (c.inFlight?.draining) return;
      }
      const attempt = item.a ?? 0;
      if (item.t === 'c') return copyChunk(item.f, item.o, item.l, ctx, attempt);
      if (item.t === 'o') return eachEntry(item.e, createOther, ctx, attempt);
      return copyFiles(item, ctx, attempt);
    },
    isItem: (x): x is CopyItem => isCopyItem(x, c.roots.length),
  };
}
