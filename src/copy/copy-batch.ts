/**
 * A batch of whole files in one native thread-pool job (native/src/batch.cc), and what
 * JavaScript does with its results: counters, the checkpoint's one row per batch, the
 * report, the digests, and the files that failed (named, or tried again together).
 */
import type { TaskContext } from '../engine/task.js';
import { COPY_FLAGS, COPY_NUMS, COPY_OPS, COPY_OP_ON_SOURCE, COPY_STATUS, OP_UP_TO_DATE } from '../native/loader.js';
import { systemError } from '../errors.js';
import type { Entry } from '../model/entry.js';
import { dstOf, srcOf } from '../model/paths.js';
import { packNames, statBytes } from '../checkpoint/listing.js';
import type { CopyItem } from './copy-item.js';
import { writebackFlag, type CopyContext } from './copy-context.js';

type Ctx = TaskContext<CopyItem>;

const tryOr = <T, U>(f: () => T, fallback: U): T | U => {
  try {
    return f();
  } catch {
    return fallback;
  }
};

/**
 * What a batch copier is given: entries (files that came as entries: a hard link's
 * primary, a resume's), or plain files packed as copyFiles takes them (model/file-run.ts).
 */
export type BatchFiles = { entries: Entry[] } | { rels: Buffer[]; nums: Float64Array };

/**
 * The batch copier of a job, or null when batches cannot go native: no addon, a root
 * whose anchor could not be opened, or --update=checksum (compared file by file in JS).
 */
export function nativeBatchCopier(c: Omit<CopyContext, 'seedItems'>): ((files: BatchFiles, ctx: Ctx, attempt?: number) => Promise<void>) | null {
  const native = c.native;
  const writeback = writebackFlag(c);
  /**
   * copyFiles' roots: the anchors of [src, dst] of each root and the roots' paths beneath
   * them, flattened (the same for every batch): each file is opened beneath its anchor.
   */
  const rootPairs = c.native && c.trees.src.safe ? tryOr(() => c.trees.copyFilesRoots(c.roots), null) : null; // (null: a root's anchor could not be opened: file by file, each failing with why)

  if (native === null || rootPairs === null || c.update === 'checksum') return null;

  const flags = (c.chown ? COPY_FLAGS.CHOWN : 0) | COPY_FLAGS.XATTRS | COPY_FLAGS.SPARSE | (c.digests ? COPY_FLAGS.HASH : 0)
    | (c.update === 'time' ? COPY_FLAGS.UPDATE : 0) | writeback | (c.layout?.copy ? COPY_FLAGS.LAYOUT : 0) | (c.report ? COPY_FLAGS.REPORT : 0);

  /** Entries in copyFiles' layout: relative paths, COPY_NUMS numbers each. */
  const packEntries = (list: Entry[]): { rels: Buffer[]; nums: Float64Array } => {
    const rels: Buffer[] = new Array(list.length);
    const nums = new Float64Array(list.length * COPY_NUMS);
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      const m = e.m;
      rels[i] = e.p;
      const o = i * COPY_NUMS;
      nums[o] = e.r;
      nums[o + 1] = m.size; nums[o + 2] = m.mode; nums[o + 3] = m.uid; nums[o + 4] = m.gid;
      nums[o + 5] = m.atime[0]; nums[o + 6] = m.atime[1]; nums[o + 7] = m.mtime[0]; nums[o + 8] = m.mtime[1];
      nums[o + 9] = m.blocks ?? -1;
    }
    return { rels, nums };
  };

  /** Files from..to (or the listed ones) of a batch as an item of their own (a hand-off, a retry). */
  const itemOf = (files: BatchFiles, pick: number[] | { from: number }, attempt: number): CopyItem => {
    const at = (p: number[] | { from: number }, n: number) => (Array.isArray(p) ? p : Array.from({ length: n - p.from }, (_, k) => p.from + k));
    const a = attempt > 0 ? { a: attempt } : {};
    if ('entries' in files) return { t: 'b', f: at(pick, files.entries.length).map((i) => files.entries[i]!), ...a };
    const idx = at(pick, files.rels.length);
    const nums = new Float64Array(idx.length * COPY_NUMS);
    idx.forEach((i, j) => nums.set(files.nums.subarray(i * COPY_NUMS, (i + 1) * COPY_NUMS), j * COPY_NUMS));
    return { t: 'p', p: idx.map((i) => files.rels[i]!), n: statBytes(nums), ...a };
  };

  /**
   * A whole batch in one native thread-pool job: open, copy, chown, xattrs, chmod, times,
   * close, and with hashing the files' content and entry digests. Per file, JS only fills
   * the arguments (nothing at all for a packed batch) and reads back the results: no path
   * Buffers (the addon joins root and relative path; full paths are built here only for
   * files that failed), no BigInt and no crypto (entry digests come back summed, one
   * BigInt addition per batch).
   */
  const copyBatchNative = async (files: BatchFiles, ctx: Ctx, attempt = 0) => {
    const list = 'entries' in files ? files.entries : null;
    const { rels, nums } = list ? packEntries(list) : (files as { rels: Buffer[]; nums: Float64Array });
    /** file i as root index and relative path (what paths and the report need) */
    const at = (i: number) => ({ r: nums[i * COPY_NUMS]!, p: rels[i]! });
    // The files after one that hangs are handed on as a new item (see in-flight.ts), and a
    // stopping job takes those not started away: this batch answers for the files before.
    let n = rels.length;
    const cursor = c.inFlight ? new Int32Array(1) : undefined;
    const end = c.inFlight?.beginBatch('copy of', rels.length, cursor!, (i) => srcOf(c.roots, at(i)), (from, stopping) => {
      n = from;
      if (!stopping) ctx.enqueue(itemOf(files, { from }, attempt));
    });
    let res;
    try {
      res = await native.copyFiles(rootPairs!.anchors, rootPairs!.rels, rels, nums, flags, cursor, c.layout?.name);
    } finally {
      end?.();
    }
    const { entrySum } = res;
    let { status, digests } = res;
    c.digests?.addEntrySum(entrySum);
    if (n < rels.length) {
      status = status.subarray(0, n * COPY_STATUS);
      digests = digests.subarray(0, n * 16);
    }
    // The checkpoint takes the batch as it is, one row (see checkpoint/done-batch.ts).
    c.report?.batch(rels, nums, status, n);
    c.store?.doneBatch(packNames(n < rels.length ? rels.slice(0, n) : rels), n < rels.length ? nums.subarray(0, n * COPY_NUMS) : nums, status, c.digests ? digests : null, n);
    // Counted once per batch; keys appear when they did before (holeBytes with the files).
    let files_ = 0, bytes = 0, holeBytes = 0, upToDate = 0, upToDateBytes = 0, errors = 0;
    // Files that failed transiently: tried again together, after one backoff (retry.ts).
    let again: number[] | null = null;
    let wait = 0;
    for (let i = 0; i < n; i++) {
      const err = status[i * COPY_STATUS]!;
      const op = status[i * COPY_STATUS + 1]!;
      const size = nums[i * COPY_NUMS + 1]!;
      if (err === 0 && op === OP_UP_TO_DATE) {
        upToDate++;
        upToDateBytes += size;
        if (c.digests) c.digests.missing++; // not read: its digest is missing from the signature
        continue;
      }
      if (err === 0) {
        // Copied, with DST's default layout when it refused the source's: named, counted.
        const layoutErr = res.layoutErrors[i]!;
        if (layoutErr !== 0) {
          c.errors.report('set layout of', dstOf(c.roots, at(i)), systemError(layoutErr, 'setxattr'));
          errors++;
        }
        // A hard-linked primary's content, for its other names.
        const h = list?.[i]!.h;
        if (h && c.digests) c.digests.linkPrimary(h, digests.toString('hex', 16 * i, 16 * i + 16));
        files_++;
        bytes += size;
        holeBytes += status[i * COPY_STATUS + 2]!;
        continue;
      }
      const w = c.retries?.nextErrno(err, attempt) ?? null;
      if (w !== null) {
        (again ??= []).push(i);
        wait = Math.max(wait, w);
        continue;
      }
      c.errors.report(COPY_OPS[op] || 'copy', COPY_OP_ON_SOURCE.has(op) ? srcOf(c.roots, at(i)) : dstOf(c.roots, at(i)), systemError(err, COPY_OPS[op] || 'copy'));
      errors++;
    }
    if (upToDate > 0) {
      ctx.count('upToDate', upToDate);
      ctx.count('upToDateBytes', upToDateBytes);
    }
    // (a file to be tried again counts when that try reads it)
    const read = n - upToDate - (again?.length ?? 0);
    if (read > 0) ctx.count('filesRead', read);
    if (files_ > 0) {
      c.sync?.copied(files_, bytes);
      ctx.count('files', files_);
      ctx.count('bytes', bytes);
      ctx.count('chunks', files_);
      ctx.count('holeBytes', holeBytes);
    }
    if (errors > 0) ctx.count('errors', errors);
    // --update: the bytes it copied, paid after the batch (within this item: no debt outlives it)
    if (c.update === 'time' && c.limits?.active) await c.limits.take(bytes, 0);
    if (again) ctx.enqueueLater(itemOf(files, again, attempt + 1), wait);
  };

  return copyBatchNative;
}
