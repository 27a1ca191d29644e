/**
 * The copy phase's work entry by entry, in JavaScript: a whole file (the path without the
 * native batch, and --update=checksum), one chunk of a large file (with the addon: read,
 * hashed and written in the thread pool), a symlink or FIFO. Each records what it did
 * (checkpoint, digests, report, counters) or names what failed, or enqueues itself again
 * after a backoff when it failed transiently (--retries).
 */
import { constants as C, close as closeCb } from 'node:fs';
import type { TaskContext } from '../engine/task.js';
import { COPY_FLAGS, COPY_OPS, COPY_OP_ON_SOURCE } from '../native/loader.js';
import { systemError } from '../errors.js';
import { ChunkHasher, fileDigest, toHex } from '../checksum/hasher.js';
import type { Entry } from '../model/entry.js';
import { dstOf, errPath, fileKey, partName, srcOf } from '../model/paths.js';
import { sameByTime } from '../model/update-rule.js';
import { copyLayoutBeneath } from '../io/beneath.js';
import { ACTION } from '../report/report-part.js';
import { copyRange, copyWholeSmallFile } from './data-copy.js';
import { applyMeta } from './metadata.js';
import { O_LOV_DELAY_CREATE } from './layout.js';
import { hashFile } from './hash-file.js';
import type { CopyItem } from './copy-item.js';
import { metaOptions, writebackFlag, type CopyContext } from './copy-context.js';

type Ctx = TaskContext<CopyItem>;

const closeFd = (fd: number) => new Promise<void>((resolve) => closeCb(fd, () => resolve()));

export interface EntryCopiers {
  /** one whole file, read and written here (or by data-copy.ts's native calls) */
  copyWhole: (e: Entry, ctx: Ctx, attempt?: number) => Promise<void>;
  /** bytes [off, off + len) of a large file into its part file */
  copyChunk: (e: Entry, off: number, len: number, ctx: Ctx, attempt?: number) => Promise<void>;
  /** a symlink or FIFO (sockets and devices are named, not copied) */
  createOther: (e: Entry, ctx: Ctx, attempt?: number) => Promise<void>;
}

export function entryCopiers(c: Omit<CopyContext, 'seedItems'>): EntryCopiers {
  const writeback = writebackFlag(c);
  /** --update: is DST's copy of e already there? Records it as done when it is. */
  const upToDate = async (e: Entry, src: Buffer, dst: Buffer, ctx: Ctx): Promise<boolean> => {
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
      c.sync?.copied(0, len); // large files' bytes count toward the early writeback too
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

  return { copyWhole, copyChunk, createOther };
}
