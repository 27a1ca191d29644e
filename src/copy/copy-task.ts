/**
 * The copy phase's task: whole files in batches, chunks of large files, and the other
 * non-directory entries (symlinks, FIFOs). Directories exist already (mkdir phase);
 * large files' `.part` files were created by their owners when seeding.
 *
 * A whole file gets its metadata right after its content. A chunk only writes bytes: its
 * file is finished (metadata, rename into place) by the owner in the finish step, after
 * every chunk is known to be done.
 */
import { constants as C, close as closeCb } from 'node:fs';
import type { Task, TaskContext } from '../engine/task.js';
import type { EntryErrors } from '../errors.js';
import { COPY_FLAGS, COPY_NUMS, COPY_OPS, COPY_OP_ON_SOURCE, COPY_STATUS, type NativeAddon } from '../native/loader.js';
import { systemError } from '../errors.js';
import type { RankStore } from '../checkpoint/rank-store.js';
import { ChunkHasher, fileDigest, toHex } from '../checksum/hasher.js';
import type { CopyDigests } from './copy-digests.js';
import { hashRange } from '../checksum/sum-task.js';
import { OP_UP_TO_DATE } from '../native/loader.js';
import { isEntry, type Entry, type Root } from '../walk/entry.js';
import { copyRange, copyWholeSmallFile } from './data-copy.js';
import { applyMeta, type MetaOptions } from './metadata.js';
import { joinPath, partName } from './paths.js';
import { packNames } from '../checkpoint/listing.js';
import { sameByTime } from './update-rule.js';
import type { InFlight } from './in-flight.js';
import { copyLayoutBeneath, type Side, type Trees } from './beneath.js';
import { O_LOV_DELAY_CREATE, type Layout } from './layout.js';
import type { DataSync } from './data-sync.js';
import { Retries } from './retry.js';
import { ACTION, type ReportPart } from '../report/report-part.js';
import type { Throttle } from '../limits/throttle.js';

/** `a`: the try this item is (absent: the first; n: its n-th retry, see retry.ts). */
export type CopyItem =
  | { t: 'b'; f: Entry[]; a?: number }
  | { t: 'c'; f: Entry; o: number; l: number; a?: number }
  | { t: 'o'; e: Entry[]; a?: number };

export interface CopyContext {
  roots: Root[];
  /** Every operation on SRC and DST goes through these (beneath the roots, see beneath.ts). */
  trees: Trees;
  native: NativeAddon | null;
  /** chown to the source owner (only root may) */
  chown: boolean;
  errors: EntryErrors;
  /**
   * Large files one of whose chunks failed on this rank: fileKey -> why (error code, and
   * whether it was about the destination). Not printed here: the file's owner names the
   * file once in the finish step, whatever the number of chunks and ranks that failed.
   */
  failed: Map<string, ChunkFailure>;
  /** Checkpoint: finished files and chunks are recorded here. */
  store?: RankStore | null;
  /** Told what was written, so the sync before the checkpoint's commit covers it (data-sync.ts). */
  sync?: DataSync;
  /** Hash what is read (fsum's digests, see copy-digests.ts); null: no hashing. */
  digests: CopyDigests | null;
  /**
   * --update: 'time' leaves a destination file of the same size and ns mtime alone without
   * reading it (dsync's rule); 'checksum' reads both sides and copies only when the content
   * differs (then only the metadata is set). false: every file is copied.
   */
  update: false | 'time' | 'checksum';
  /**
   * Requests in flight, watched for stalls (see in-flight.ts); a native batch stuck on one
   * file hands the files it has not started on as a new item.
   */
  inFlight?: InFlight | null;
  /** --layout (copy/layout.ts): whether files get their source's layout at create, and its attribute's name */
  layout?: Layout;
  /** --retries: entries that fail transiently are enqueued again after a backoff; null: never. */
  retries?: Retries | null;
  /** --report: what happened to each entry (failures come through errors). */
  report?: ReportPart | null;
  /**
   * --bwlimit/--max-ops: this rank's share of the job's rates; an item waits for its turn
   * before it starts (its bytes, and one operation per entry or chunk). null: no limits.
   */
  limits?: Throttle | null;
  /** For tests (fcp's hidden --test-slow-copy-ms): every item waits this long before it starts. */
  slowMs?: number;
  /** This rank's work, cut into items lazily (see copy-job.ts); may count skipped work. */
  seedItems: (ctx: TaskContext<CopyItem>) => AsyncIterable<CopyItem> | Iterable<CopyItem>;
}

export interface ChunkFailure { code: string; onDst: boolean }

export const fileKey = (e: Entry) => `${e.r}:${e.p.toString('hex')}`;
export const srcOf = (roots: Root[], e: Pick<Entry, 'r' | 'p'>) => joinPath(roots[e.r]!.src, e.p);
export const dstOf = (roots: Root[], e: Pick<Entry, 'r' | 'p'>) => joinPath(roots[e.r]!.dst, e.p);


/** Files copied at once within one batch item (overlaps per-file syscall latency). */
const FILES_IN_FLIGHT = 8;

export function metaOptions(c: Pick<CopyContext, 'native' | 'chown' | 'trees' | 'layout'>, src: Buffer): MetaOptions {
  return { native: c.native, chown: c.chown, xattrs: c.native !== null, xattrSrc: src, sides: c.trees, layout: c.layout?.name };
}

const tryOr = <T, U>(f: () => T, fallback: U): T | U => {
  try {
    return f();
  } catch {
    return fallback;
  }
};

const closeFd = (fd: number) => new Promise<void>((resolve) => closeCb(fd, () => resolve()));

/** The path an error is about: the one the failing syscall named, else the given one. */
export function errPath(err: unknown, fallback: Buffer): Buffer | string {
  const p = (err as NodeJS.ErrnoException)?.path as unknown;
  return typeof p === 'string' || Buffer.isBuffer(p) ? (p as string | Buffer) : fallback;
}

export function copyTask(c: CopyContext): Task<CopyItem> {
  /** --update: is DST's copy of e already there? Records it as done when it is. */
  const upToDate = async (e: Entry, src: Buffer, dst: Buffer, ctx: Parameters<Task<CopyItem>['process']>[1]): Promise<boolean> => {
    if (!c.update) return false;
    const st = await c.trees.dst.lstat(dst).catch(() => null);
    if (!st || !st.isFile() || st.size !== e.m.size) return false;
    let content: bigint | null = null;
    if (c.update === 'time') {
      if (!sameByTime(e.m, st)) return false;
    } else {
      const [a, b] = await Promise.all([hashFile(c.trees.src, src, e.m.size), hashFile(c.trees.dst, dst, e.m.size)]);
      ctx.count('filesRead', 2);
      if (a !== b) return false;
      content = a;
      await applyMeta(dst, e.m, metaOptions(c, src));
      c.sync?.wrote(dst);
    }
    c.report?.add(content === null ? ACTION.upToDate : ACTION.metadata, e.r, e.p);
    ctx.count('upToDate');
    ctx.count('upToDateBytes', e.m.size);
    c.store?.doneWork(e, -1, e.m.size, content === null ? null : toHex(content));
    c.digests?.file(e, content);
    return true;
  };

  type Ctx = Parameters<Task<CopyItem>['process']>[1];
  /** Failed transiently with a retry left: enqueued again after the backoff (not named, not counted as an error). */
  const retryLater = (err: unknown, attempt: number, ctx: Ctx, again: (a: number) => CopyItem): boolean => {
    const wait = c.retries?.next(err, attempt) ?? null;
    if (wait === null) return false;
    ctx.enqueueLater(again(attempt + 1), wait);
    return true;
  };

  const copyWhole = async (e: Entry, ctx: Ctx, attempt = 0) => {
    const src = srcOf(c.roots, e);
    const dst = dstOf(c.roots, e);
    const end = c.inFlight?.begin('copy of', src);
    try {
      if (await upToDate(e, src, dst, ctx)) return;
      // --report: new or replaced (one lstat more, only with --report on this path)
      const existed = c.report ? await c.trees.dst.lstat(dst).then(() => true, () => false) : false;
      if (attempt === 0) ctx.count('filesRead'); // once per file, however many tries
      const h = c.digests ? new ChunkHasher(0) : null;
      const res = await copyWholeSmallFile(src, dst, e.m.size, {
        native: c.native, copyFileRange: !h, sparse: true, mode: e.m.mode, onData: h ? (b, o) => h.update(b, o) : undefined,
        open: async (side, p, flags, mode) => {
          if (side === 'src' || !(flags & C.O_CREAT) || !c.layout?.copy || !c.native) return c.trees[side].open(p, flags, mode);
          // --layout copy: created without objects, given its layout before the first write.
          const fd = await c.trees.dst.open(p, flags | O_LOV_DELAY_CREATE, mode);
          await copyLayoutBeneath(c.native, c.trees.src, src, c.trees.dst, p, c.layout.name).catch((err) => {
            c.errors.report('set layout of', errPath(err, p), err);
            ctx.count('errors');
          });
          return fd;
        },
      });
      await applyMeta(dst, e.m, metaOptions(c, src));
      c.sync?.wrote(dst);
      c.sync?.copied(1, e.m.size);
      const content = h ? fileDigest([h.digest()], e.m.size) : null;
      c.store?.doneWork(e, -1, e.m.size, content === null ? null : toHex(content));
      c.digests?.file(e, content);
      c.report?.add(existed ? ACTION.updated : ACTION.copied, e.r, e.p);
      ctx.count('files');
      ctx.count('bytes', e.m.size);
      ctx.count('chunks');
      ctx.count('holeBytes', res.holeBytes);
    } catch (err) {
      if (retryLater(err, attempt, ctx, (a) => ({ t: 'b', f: [e], a }))) return;
      c.errors.report('copy', errPath(err, src), err);
      ctx.count('errors');
    } finally {
      end?.();
    }
  };

  /** With syncfs before each commit, the addon starts writing data back as it goes (see batch.cc). */
  const writeback = c.sync?.kind === 'syncfs' ? COPY_FLAGS.WRITEBACK : 0;

  /**
   * copyFiles' roots: the anchors of [src, dst] of each root and the roots' paths beneath
   * them, flattened (the same for every batch): each file is opened beneath its anchor.
   */
  const rootPairs = c.native && c.trees.src.safe ? tryOr(() => c.trees.copyFilesRoots(c.roots), null) : null; // (null: a root's anchor could not be opened: file by file, each failing with why)

  /**
   * A whole batch in one native thread-pool job: open, copy, chown, xattrs, chmod, times,
   * close, and with hashing the files' content and entry digests. Per file, JS only fills
   * the arguments and reads back the results: no path Buffers (the addon joins root and
   * relative path; full paths are built here only for files that failed), no BigInt and
   * no crypto (entry digests come back summed, one BigInt addition per batch).
   */
  const copyBatchNative = async (list: Entry[], native: NativeAddon, ctx: Ctx, attempt = 0) => {
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
    const flags = (c.chown ? COPY_FLAGS.CHOWN : 0) | COPY_FLAGS.XATTRS | COPY_FLAGS.SPARSE | (c.digests ? COPY_FLAGS.HASH : 0)
      | (c.update === 'time' ? COPY_FLAGS.UPDATE : 0) | writeback | (c.layout?.copy ? COPY_FLAGS.LAYOUT : 0) | (c.report ? COPY_FLAGS.REPORT : 0);
    // The files after one that hangs are handed on as a new item (see in-flight.ts): this
    // batch then answers for the files before the hand-off only.
    let n = list.length;
    const cursor = c.inFlight ? new Int32Array(1) : undefined;
    const end = c.inFlight?.beginBatch('copy of', list.length, cursor!, (i) => srcOf(c.roots, list[i]!), (from) => {
      n = from;
      ctx.enqueue({ t: 'b', f: list.slice(from), ...(attempt > 0 ? { a: attempt } : {}) });
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
    if (n < list.length) {
      status = status.subarray(0, n * COPY_STATUS);
      digests = digests.subarray(0, n * 16);
    }
    // The checkpoint takes the batch as it is, one row (see checkpoint/done-batch.ts).
    c.report?.batch(list, status, n);
    c.store?.doneBatch(packNames(n < list.length ? rels.slice(0, n) : rels), n < list.length ? nums.subarray(0, n * COPY_NUMS) : nums, status, c.digests ? digests : null, n);
    // Counted once per batch; keys appear when they did before (holeBytes with the files).
    let files = 0, bytes = 0, holeBytes = 0, upToDate = 0, upToDateBytes = 0, errors = 0;
    // Files that failed transiently: tried again together, after one backoff (retry.ts).
    let again: Entry[] | null = null;
    let wait = 0;
    for (let i = 0; i < n; i++) {
      const e = list[i]!;
      const err = status[i * COPY_STATUS]!;
      const op = status[i * COPY_STATUS + 1]!;
      if (err === 0 && op === OP_UP_TO_DATE) {
        upToDate++;
        upToDateBytes += e.m.size;
        c.digests?.file(e, null); // not read: its digest is missing from the signature
        continue;
      }
      if (err === 0) {
        // Copied, with DST's default layout when it refused the source's: named, counted.
        const layoutErr = res.layoutErrors[i]!;
        if (layoutErr !== 0) {
          c.errors.report('set layout of', dstOf(c.roots, e), systemError(layoutErr, 'setxattr'));
          errors++;
        }
        // A hard-linked primary's content, for its other names.
        if (e.h && c.digests) c.digests.linkPrimary(e.h, digests.toString('hex', 16 * i, 16 * i + 16));
        files++;
        bytes += e.m.size;
        holeBytes += status[i * COPY_STATUS + 2]!;
        continue;
      }
      const w = c.retries?.nextErrno(err, attempt) ?? null;
      if (w !== null) {
        (again ??= []).push(e);
        wait = Math.max(wait, w);
        continue;
      }
      c.errors.report(COPY_OPS[op] || 'copy', COPY_OP_ON_SOURCE.has(op) ? srcOf(c.roots, e) : dstOf(c.roots, e), systemError(err, COPY_OPS[op] || 'copy'));
      errors++;
    }
    if (upToDate > 0) {
      ctx.count('upToDate', upToDate);
      ctx.count('upToDateBytes', upToDateBytes);
    }
    // (a file to be tried again counts when that try reads it)
    const read = n - upToDate - (again?.length ?? 0);
    if (read > 0) ctx.count('filesRead', read);
    if (files > 0) {
      c.sync?.copied(files, bytes);
      ctx.count('files', files);
      ctx.count('bytes', bytes);
      ctx.count('chunks', files);
      ctx.count('holeBytes', holeBytes);
    }
    if (errors > 0) ctx.count('errors', errors);
    // --update: the bytes it copied, paid after the batch (within this item: no debt outlives it)
    if (c.update === 'time' && c.limits?.active) await c.limits.take(bytes, 0);
    if (again) ctx.enqueueLater({ t: 'b', f: again, a: attempt + 1 }, wait);
  };

  const copyChunk = async (e: Entry, off: number, len: number, ctx: Ctx, attempt = 0) => {
    const again = (a: number): CopyItem => ({ t: 'c', f: e, o: off, l: len, a });
    const src = srcOf(c.roots, e);
    const part = partName(dstOf(c.roots, e));
    const failed = (code: string, onDst: boolean) => {
      if (onDst) c.errors.full(dstOf(c.roots, e), code); // the file, not its hidden part file
      if (!c.failed.has(fileKey(e))) c.failed.set(fileKey(e), { code, onDst });
      ctx.count('chunkErrors');
    };
    // Hashing with the addon: read, hash and write in the thread pool, leaf by leaf
    // (chunks start on leaf boundaries: see fcp.ts).
    if (c.native && c.digests) {
      const s = c.trees.src.at(src);
      const d = c.trees.dst.at(part);
      const end = c.inFlight?.begin('copy of', src);
      const res = await c.native.copyChunk(s.fd, s.rel, d.fd, d.rel, off, len, COPY_FLAGS.SPARSE | COPY_FLAGS.HASH | writeback).finally(() => end?.());
      const status = res.status;
      if (status[0] !== 0) {
        const op = status[1]!;
        const wait = c.retries?.nextErrno(status[0]!, attempt) ?? null;
        if (wait !== null) {
          ctx.enqueueLater(again(attempt + 1), wait);
          return;
        }
        failed(systemError(status[0]!, COPY_OPS[op] || 'copy').code!, !COPY_OP_ON_SOURCE.has(op));
        return;
      }
      const partial = res.partial.toString('hex'); // the sum of this chunk's leaf terms, as toHex writes it
      c.sync?.wrote(part);
      c.store?.doneWork(e, off, len, partial);
      c.digests.chunk(fileKey(e), off, partial);
      ctx.count('bytes', len);
      ctx.count('chunks');
      ctx.count('holeBytes', status[2]!);
      return;
    }
    let sfd = -1;
    let dfd = -1;
    const end = c.inFlight?.begin('copy of', src);
    try {
      sfd = await c.trees.src.open(src, C.O_RDONLY);
      dfd = await c.trees.dst.open(part, C.O_WRONLY);
      const h = c.digests ? new ChunkHasher(off) : null;
      const res = await copyRange(sfd, dfd, off, len, {
        native: c.native, copyFileRange: !h, sparse: true, onData: h ? (b, o) => h.update(b, o) : undefined,
      });
      const partial = h ? toHex(h.digest()) : null;
      c.sync?.wrote(part);
      c.store?.doneWork(e, off, len, partial);
      if (c.digests) c.digests.chunk(fileKey(e), off, partial);
      ctx.count('bytes', len);
      ctx.count('chunks');
      ctx.count('holeBytes', res.holeBytes);
    } catch (err) {
      if (retryLater(err, attempt, ctx, again)) return;
      const p = errPath(err, src);
      const ex = err as NodeJS.ErrnoException;
      // About the destination: its path, or a write (fd calls carry no path).
      failed(String(ex.code ?? 'EIO'), Buffer.from(p).equals(part) || ex.syscall === 'write' || ['ENOSPC', 'EDQUOT', 'EFBIG', 'EROFS'].includes(String(ex.code)));
    } finally {
      end?.();
      if (sfd >= 0) await closeFd(sfd);
      if (dfd >= 0) await closeFd(dfd);
    }
  };

  const createOther = async (e: Entry, ctx: Ctx, attempt = 0) => {
    const src = srcOf(c.roots, e);
    const dst = dstOf(c.roots, e);
    const end = c.inFlight?.begin('create of', dst);
    let action: typeof ACTION.copied | typeof ACTION.upToDate = ACTION.copied;
    try {
      if (e.k === 'l') {
        const target = await c.trees.src.readlink(src);
        c.digests?.symlink(e, target);
        try {
          await c.trees.dst.symlink(target, dst);
        } catch (err) {
          // Re-copy onto an earlier copy: the same link is fine; anything else is not ours to replace.
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          const st = await c.trees.dst.lstat(dst);
          if (!st.isSymbolicLink() || !(await c.trees.dst.readlink(dst)).equals(target)) throw err;
          action = ACTION.upToDate;
        }
        ctx.count('symlinks');
      } else if (e.k === 'p') {
        c.digests?.plain(e);
        if (!c.native) {
          ctx.count('skipped');
          return;
        }
        try {
          await c.trees.dst.mkfifo(dst, e.m.mode & 0o7777);
        } catch (err) {
          const st = (err as NodeJS.ErrnoException).code === 'EEXIST' ? await c.trees.dst.lstat(dst) : null;
          if (!st?.isFIFO()) throw err;
          action = ACTION.upToDate;
        }
        ctx.count('specials');
      } else {
        c.digests?.plain(e);
        throw Object.assign(new Error('sockets and device files are not copied'), { code: 'ENOTSUP' });
      }
      await applyMeta(dst, e.m, metaOptions(c, src));
      c.report?.add(action, e.r, e.p);
    } catch (err) {
      if (retryLater(err, attempt, ctx, (a) => ({ t: 'o', e: [e], a }))) return;
      c.errors.report('create', errPath(err, dst), err);
      ctx.count('errors');
    } finally {
      end?.();
    }
  };

  const nativeBatch = c.native !== null && rootPairs !== null && c.update !== 'checksum';

  const isItem = (x: unknown): x is CopyItem => {
    if (typeof x !== 'object' || x === null) return false;
    const i = x as Record<string, unknown>;
    const n = c.roots.length;
    if (!Retries.validAttempt(i.a)) return false;
    if (i.t === 'b') return Array.isArray(i.f) && i.f.every((e) => isEntry(e, n) && (e as Entry).k === 'f');
    if (i.t === 'o') return Array.isArray(i.e) && i.e.every((e) => isEntry(e, n) && (e as Entry).k !== 'f' && (e as Entry).k !== 'd');
    if (i.t === 'c') {
      return isEntry(i.f, n) && Number.isSafeInteger(i.o) && Number.isSafeInteger(i.l) && (i.o as number) >= 0 && (i.l as number) > 0
        && (i.o as number) + (i.l as number) <= (i.f as Entry).m.size;
    }
    return false;
  };

  return {
    name: 'copy',
    concurrency: 4,
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
        await c.limits.take(item.t === 'b' && nativeBatch && c.update === 'time' ? 0 : itemBytes(item), itemOps(item));
        if (c.inFlight?.draining) return;
      }
      const attempt = item.a ?? 0;
      if (item.t === 'c') return copyChunk(item.f, item.o, item.l, ctx, attempt);
      // --update=checksum compares file by file in JS; everything else goes native in batches.
      if (item.t === 'b' && nativeBatch) return copyBatchNative(item.f, c.native!, ctx, attempt);
      const list = item.t === 'b' ? item.f : item.e;
      const one = item.t === 'b' ? copyWhole : createOther;
      for (let i = 0; i < list.length; i += FILES_IN_FLIGHT) {
        await Promise.all(list.slice(i, i + FILES_IN_FLIGHT).map((e) => one(e, ctx, attempt)));
      }
    },
    isItem,
  };
}

/** The data bytes an item moves (what --bwlimit counts). */
export function itemBytes(item: CopyItem): number {
  if (item.t === 'c') return item.l;
  if (item.t === 'o') return 0;
  let n = 0;
  for (const e of item.f) n += e.m.size;
  return n;
}

/** The operations an item makes (what --max-ops counts): one per entry, one per chunk. */
export const itemOps = (item: CopyItem): number => (item.t === 'c' ? 1 : item.t === 'b' ? item.f.length : item.e.length);

/** Content digest of a whole file on one side (for --update=checksum). */
export async function hashFile(side: Side, path: Buffer, size: number): Promise<bigint> {
  const fd = await side.open(path, C.O_RDONLY);
  try {
    return fileDigest([await hashRange(fd, 0, size, Buffer.allocUnsafe(Math.min(4 << 20, Math.max(size, 1))))], size);
  } finally {
    await closeFd(fd);
  }
}
