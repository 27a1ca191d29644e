/**
 * The distributed walk: a directory's entries become work items, so ranks share the
 * walk through work stealing. The walk only reads the source; what it finds may go on to
 * a sink that writes (WalkSink: the copy overlapped with the walk, phases/walk-copy.ts).
 *
 * Two item kinds keep a huge directory from landing on one rank as one giant array:
 * - 'd': read a directory as a stream, cutting its names into batches of NAMES_PER_BATCH;
 * - 's': lstat one batch of names and record them; subdirectories become 'd' items.
 * Batches are ordinary items, so idle ranks steal them while the directory is still
 * being read.
 */
import { promises as fsp, close } from 'node:fs';
import type { Task, TaskContext } from '../engine/task.js';
import { dirKey, joinPath } from '../model/paths.js';
import { entryFromStatAt, hasDotDot, isBuf, putStatRecord, STAT_RECORD_FIELDS, type Entry } from '../model/entry.js';
import { NOT_RECORDED, UP_TO_DATE, packNames, unpackNames } from '../checkpoint/listing.js';
import { recordsSameByTime } from '../model/update-rule.js';
import { systemError } from '../errors.js';
import { parentOf } from '../checkpoint/rank-store.js';
import { baseName } from '../model/paths.js';
import { keptRun } from '../model/file-run.js';
import { listedDirProblem, listItems, type ListFlag } from './list-source.js';
import type { WalkContext, WalkItem } from './walk-context.js';
import { Retries } from '../io/retry.js';
import { ACTION } from '../report/report-part.js';

const NAMES_PER_BATCH = 512;

const S_IFDIR = 0o040000;

const S_IFMT = 0o170000;

/** Is the stat record at `o` of `rec` (putStatRecord's layout, its status first) a directory found there? */
const isDirAt = (rec: ArrayLike<number>, o: number): boolean => rec[o] === 0 && (rec[o + 1]! & S_IFMT) === S_IFDIR;
const S_IFREG = 0o100000;

export function walkTask(w: WalkContext): Task<WalkItem> {
  /** --update: directory `e` is in DST already (every one there: the mkdir phase is skipped). */
  const dstHasDir = (e: Entry, ctx: TaskContext<WalkItem>) => {
    if (!w.dstDirs) return;
    w.dstDirs.add(dirKey(e.r, e.p));
    ctx.count('dstDirs');
  };
  const record = (e: Entry, ctx: TaskContext<WalkItem>) => {
    w.lists.add(e);
    ctx.count('entries');
    if (e.k === 'f') {
      ctx.count('files');
      ctx.count('bytes', e.m.size);
      // (the phases after the walk skip the hard-link plan when no rank counted one)
      if (e.h !== undefined) ctx.count('linked');
    } else if (e.k === 'd') {
      ctx.count('dirs');
      // `dirLevels`: the deepest level this rank listed, plus one (a maximum kept in a sum:
      // every rank's own counters reach every rank, and the dir-meta phase needs the
      // deepest level of all without asking again).
      const levels = w.lists.maxDirDepth() + 1;
      const had = ctx.counters.dirLevels ?? 0;
      if (levels > had) ctx.count('dirLevels', levels - had);
    } else if (e.k === 'l') ctx.count('symlinks');
    else ctx.count('specials');
    if (e.m.uid !== w.uid) ctx.count('foreignOwner');
  };

  /**
   * Take one batch of a directory's lstat results (stat records, see entry.ts): failures
   * are reported, exclusions counted, the rest recorded; subdirectories become 'd' items.
   * The checkpoint gets the batch as one listing row (checkpoint/listing.ts), with the
   * slots it must not record marked. `packed`: the names NUL-terminated, when at hand.
   * Names whose lstat failed transiently go again as a batch of their own after a backoff:
   * returns true then (the directory is not complete before they are recorded).
   * With a sink, subdirectories get their destinations before they are enqueued, and the
   * plain files up to its size go to it instead of the lists (enqueued last: LIFO, so this
   * rank copies them next, while their names are fresh in the client's cache).
   */
  const take = async (r: number, dirRel: Buffer, names: Buffer[], a: Float64Array, packed: Buffer | null, ctx: TaskContext<WalkItem>, x?: ListFlag, attempt = 0, dst?: Float64Array | null): Promise<boolean> => {
    let dirAbs: Buffer | null = null;
    let recorded = 0;
    let again: Buffer[] | null = null;
    let wait = 0;
    // Plain files (regular, one link) stay packed in a run: no entry each (model/file-run.ts),
    // counted once for the batch.
    const plain: number[] = [];
    let plainBytes = 0, plainForeign = 0;
    /** plain files handed to the sink; subdirectories to read */
    const handed: number[] = [];
    const subdirs: Entry[] = [];
    // Files DST has up to date (--update): counted once for the batch too.
    let upToDate = 0, upToDateBytes = 0, upToDateForeign = 0;
    for (let i = 0; i < names.length; i++) {
      const o = i * STAT_RECORD_FIELDS;
      const err = a[o]!;
      if (err < 0) {
        const retryIn = w.retries?.nextErrno(err, attempt) ?? null;
        if (retryIn !== null) {
          (again ??= []).push(names[i]!);
          wait = Math.max(wait, retryIn);
          continue;
        }
        // An implied parent of a listed path: the listed path's own failure names it.
        if (x === 'p') continue;
        dirAbs ??= joinPath(w.roots[r]!.src, dirRel);
        w.errors.report('stat', joinPath(dirAbs, names[i]!), systemError(err, 'lstat'));
        continue;
      }
      // Up to date in DST: counted and marked, no entry (a hard-linked file goes the
      // usual way: its link group needs every name).
      if (dst && (a[o + 1]! & S_IFMT) === S_IFREG && a[o + 5] === 1 && recordsSameByTime(a, dst, i)
        && !w.filter?.excludes(joinPath(dirRel, names[i]!), false)) {
        upToDate++;
        upToDateBytes += a[o + 4]!;
        if (a[o + 2] !== w.uid) upToDateForeign++;
        w.report?.add(ACTION.upToDate, r, joinPath(dirRel, names[i]!));
        a[o] = UP_TO_DATE;
        recorded++;
        continue;
      }
      if ((a[o + 1]! & S_IFMT) === S_IFREG && a[o + 5] === 1) {
        if (w.filter?.excludes(joinPath(dirRel, names[i]!), false)) {
          ctx.count('excluded');
          w.report?.add(ACTION.excluded, r, joinPath(dirRel, names[i]!));
          a[o] = NOT_RECORDED;
          continue;
        }
        if (w.sink && a[o + 4]! <= w.sink.maxSize) handed.push(i);
        else plain.push(i);
        plainBytes += a[o + 4]!;
        if (a[o + 2] !== w.uid) plainForeign++;
        recorded++;
        continue;
      }
      const e = entryFromStatAt(r, joinPath(dirRel, names[i]!), a, i);
      if (w.filter?.excludes(e.p, e.k === 'd')) {
        ctx.count('excluded');
        w.report?.add(ACTION.excluded, r, e.p);
        a[o] = NOT_RECORDED;
        continue;
      }
      record(e, ctx);
      recorded++;
      if (e.k === 'd' && dst && isDirAt(dst, o)) dstHasDir(e, ctx);
      // A directory an earlier run read completely keeps its children (resume): not read again.
      if (e.k === 'd' && !x && !w.resume?.isComplete(e.r, e.p)) subdirs.push(e);
    }
    if (w.sink && subdirs.length > 0) await w.sink.dirs(subdirs);
    for (const e of subdirs) ctx.enqueue({ t: 'd', r: e.r, p: e.p });
    if (upToDate > 0) {
      ctx.count('entries', upToDate);
      ctx.count('files', upToDate);
      ctx.count('bytes', upToDateBytes);
      ctx.count('upToDate', upToDate);
      ctx.count('upToDateBytes', upToDateBytes);
      if (upToDateForeign > 0) ctx.count('foreignOwner', upToDateForeign);
    }
    const plainFiles = plain.length + handed.length;
    if (plainFiles > 0) {
      if (plain.length > 0) w.lists.addRun(keptRun(r, dirRel, names, a, plain));
      ctx.count('entries', plainFiles);
      ctx.count('files', plainFiles);
      ctx.count('bytes', plainBytes);
      if (plainForeign > 0) ctx.count('foreignOwner', plainForeign);
    }
    // Recorded before its files are handed on: the listing row precedes their done rows.
    if (w.store && recorded > 0) w.store.listing(r, dirRel, packed ?? packNames(names), a, recorded);
    if (handed.length > 0) {
      // (the copy phase is skipped when every file was handed on, or up to date)
      ctx.count('handed', handed.length);
      w.sink!.files({ r, dir: dirRel, names, stats: a, idx: handed });
    }
    if (!again) return false;
    ctx.enqueueLater({ t: 's', r, p: dirRel, n: again, ...(x ? { x } : {}), a: attempt + 1 }, wait);
    return true;
  };

  /** fn as one request in flight, watched for stalls (each call, not a whole directory: a huge one takes long). */
  const tracked = <T>(op: string, path: Buffer, fn: () => Promise<T>): Promise<T> => (w.inFlight ? w.inFlight.track(op, path, fn) : fn());

  /**
   * lstat names of one directory, relative to it: stat records (null when that failed as a
   * whole: reported, or `retry` called when it failed transiently).
   */
  const statNames = async (r: number, dirRel: Buffer, names: Buffer[], retry: (err: unknown) => boolean): Promise<Float64Array | null> => {
    const dirAbs = joinPath(w.roots[r]!.src, dirRel);
    if (w.native) {
      try {
        return await tracked('lstat in directory', dirAbs, () => w.side.statAt(dirAbs, names));
      } catch (err) {
        if (!retry(err)) w.errors.report('stat entries of', dirAbs, err);
        return null;
      }
    }
    const a = new Float64Array(names.length * STAT_RECORD_FIELDS);
    await Promise.all(names.map(async (name, i) => {
      try {
        const path = joinPath(dirAbs, name);
        putStatRecord(a, i, await tracked('lstat of', path, () => fsp.lstat(path, { bigint: true })));
      } catch (err) {
        a[i * STAT_RECORD_FIELDS] = (err as NodeJS.ErrnoException).errno ?? -5;
      }
    }));
    return a;
  };

  /** --update: lstat records of the same names in DST's directory (null: not asked, or it could not be read: all need work). */
  const dstStats = async (r: number, dirRel: Buffer, packed: Buffer): Promise<Float64Array | null> => {
    if (!w.updateDst) return null;
    const dirAbs = joinPath(w.roots[r]!.dst, dirRel);
    return tracked('lstat in directory', dirAbs, () => w.updateDst!.statAt(dirAbs, packed)).catch(() => null);
  };

  /** The batch was enqueued again for a retry (true), or was done, its failures named. */
  const statBatch = async (item: { r: number; p: Buffer; n: Buffer[]; x?: ListFlag; a?: number }, ctx: TaskContext<WalkItem>): Promise<boolean> => {
    const attempt = item.a ?? 0;
    // A list's names come with their directory, not from reading it. Beneath an anchor
    // (the addon) a symlink on the way fails the lstat itself (ELOOP); without it, each
    // component is checked first.
    if (w.list && item.p.length > 0 && !w.side.safe) {
      const dirAbs = joinPath(w.roots[item.r]!.src, item.p);
      const bad = await tracked('lstat of the directories leading to', dirAbs, () => listedDirProblem(w.roots[item.r]!.src, item.p));
      if (bad) {
        if (item.x !== 'p') for (const n of item.n) w.errors.report('stat', joinPath(dirAbs, n), bad);
        return false;
      }
    }
    let again = false;
    const a = await statNames(item.r, item.p, item.n, (err) => {
      const wait = w.retries?.next(err, attempt) ?? null;
      if (wait !== null) ctx.enqueueLater({ t: 's', r: item.r, p: item.p, n: item.n, ...(item.x ? { x: item.x } : {}), a: attempt + 1 }, wait);
      return (again = wait !== null);
    });
    if (!a) return again;
    const packed = packNames(item.n);
    return take(item.r, item.p, item.n, a, packed, ctx, item.x, attempt, await dstStats(item.r, item.p, packed));
  };

  const readDir = async (item: { r: number; p: Buffer; a?: number }, ctx: TaskContext<WalkItem>) => {
    const abs = joinPath(w.roots[item.r]!.src, item.p);
    let batch: Buffer[] = [];
    let handedOut = false;
    const flush = (last: boolean) => {
      if (batch.length === 0) return null;
      const b = batch;
      batch = [];
      if (last) return b;
      ctx.enqueue({ t: 's', r: item.r, p: item.p, n: b });
      handedOut = true;
      return null;
    };
    let failed = false;
    let tookFirst = false;
    try {
      if (w.native) {
        // One job opens the directory (without following a symlink), reads its first
        // names and lstats them: all of a small directory. A big one goes on streaming
        // from the same descriptor, in batches that other ranks may steal.
        const first = await tracked('read of directory', abs, () => w.side.scanDir(abs, NAMES_PER_BATCH)).catch((err: { errno?: number; syscall?: string }) => {
          throw typeof err.errno === 'number' ? systemError(err.errno, err.syscall ?? 'open') : err;
        });
        const names = unpackNames(first.names);
        tookFirst = true;
        // lstat'ed with the read, so paid right after it (within this item: no debt outlives it)
        if (w.limits?.active) await w.limits.take(0, names.length);
        if (first.fd < 0) {
          if (!(await take(item.r, item.p, names, first.stats, first.names, ctx, undefined, 0, await dstStats(item.r, item.p, first.names)))) w.store?.dirComplete(item.r, item.p);
          return;
        }
        const fh = first.fd;
        try {
          if (await take(item.r, item.p, names, first.stats, first.names, ctx, undefined, 0, await dstStats(item.r, item.p, first.names))) handedOut = true;
          for (;;) {
            const packed = await tracked('read of directory', abs, () => w.native!.readNames(fh, 32768));
            if (!packed) break;
            for (let s = 0; s < packed.length; ) {
              const e = packed.indexOf(0, s);
              batch.push(packed.subarray(s, e));
              s = e + 1;
              if (batch.length === NAMES_PER_BATCH) flush(false);
            }
          }
        } finally {
          await new Promise<void>((resolve) => close(fh, () => resolve()));
        }
      } else {
        // (Without the addon only the opening is watched: a rare path.)
        const end = w.inFlight?.begin('read of directory', abs);
        const dir = await fsp.opendir(abs, { encoding: 'buffer' as BufferEncoding, bufferSize: 128 }).finally(() => end?.());
        for await (const d of dir) {
          batch.push(d.name as unknown as Buffer);
          if (batch.length === NAMES_PER_BATCH) flush(false);
        }
      }
    } catch (err) {
      failed = true;
      // Failed before any name was taken (the open, the first read): the directory is read
      // again after a backoff. Later, names already taken would be taken twice: named.
      const attempt = item.a ?? 0;
      const wait = !handedOut && batch.length === 0 && !tookFirst ? w.retries?.next(err, attempt) ?? null : null;
      if (wait !== null) {
        ctx.enqueueLater({ t: 'd', r: item.r, p: item.p, a: attempt + 1 }, wait);
        return;
      }
      w.errors.report('read directory', abs, err);
    }
    // The last (often only) batch is stat'ed right here: no queue round trip for small dirs.
    const last = flush(true);
    if (last && w.limits?.active) await w.limits.take(0, last.length);
    if (last && await statBatch({ r: item.r, p: item.p, n: last }, ctx)) handedOut = true;
    // Complete when every child was recorded by this rank, after them (see rank-store.ts);
    // a directory whose batches went to other ranks is simply read again by a resume.
    if (!failed && !handedOut) w.store?.dirComplete(item.r, item.p);
  };

  return {
    name: 'walk',
    concurrency: 8,
    async seed(ctx) {
      if (w.resume) {
        // Kept entries are stat'ed again (a resume copies what changed since), in batches
        // per directory, as ordinary stealable items.
        let cur: { r: number; p: Buffer; n: Buffer[] } | null = null;
        for (const e of w.resume.keptEntries()) {
          const parent = parentOf(e.p);
          if (!cur || cur.r !== e.r || !cur.p.equals(parent) || cur.n.length >= NAMES_PER_BATCH) {
            if (cur) ctx.enqueue({ t: 's', ...cur });
            cur = { r: e.r, p: Buffer.from(parent), n: [] };
          }
          cur.n.push(Buffer.from(baseName(e.p)));
        }
        if (cur) ctx.enqueue({ t: 's', ...cur });
      }
      if (ctx.rank !== 0) return;
      for (let r = 0; r < w.roots.length; r++) {
        const src = w.roots[r]!.src;
        try {
          const a = await (w.retries ? w.retries.run(() => w.side.lstatRecord(src)) : w.side.lstatRecord(src));
          const e = entryFromStatAt(r, Buffer.alloc(0), a, 0);
          record(e, ctx);
          // The root as a listing of its own: the name '' in the directory ''.
          w.store?.listing(r, e.p, Buffer.alloc(1), a, 1);
          if (e.k === 'd' && !w.list && w.sink) await w.sink.dirs([e]);
          // --update: the root's destination too (one lstat, where its mkdir took two).
          if (e.k === 'd' && w.updateDst) {
            const d = await w.updateDst.lstatRecord(w.roots[r]!.dst).catch(() => null);
            if (d && isDirAt(d, 0)) dstHasDir(e, ctx);
          }
          if (e.k === 'd' && !w.list && !w.resume?.isComplete(r, e.p)) ctx.enqueue({ t: 'd', r, p: Buffer.alloc(0) });
        } catch (err) {
          if (!(w.optionalRoots && (err as NodeJS.ErrnoException).code === 'ENOENT')) w.errors.report('stat', src, err);
        }
      }
    },
    // --files-from: rank 0 reads the list and hands it out in stealable batches.
    ...(w.list ? { source: (ctx: TaskContext<WalkItem>) => (ctx.rank === 0 ? listItems(w.list!, w.errors, w.resume) : []) } : {}),
    ready: w.limits ? () => (w.limits!.active ? w.limits!.idle() : null) : undefined,
    async process(item, ctx) {
      if (w.limits?.active) await w.limits.take(0, item.t === 's' ? item.n.length : 1);
      if (item.t === 'd') await readDir(item, ctx);
      else await statBatch(item, ctx);
    },
    isItem(x): x is WalkItem {
      if (typeof x !== 'object' || x === null) return false;
      const i = x as Record<string, unknown>;
      if (!Retries.validAttempt(i.a)) return false;
      if (!Number.isInteger(i.r) || (i.r as number) < 0 || (i.r as number) >= w.roots.length) return false;
      if (!isBuf(i.p) || hasDotDot(Buffer.from(i.p))) return false;
      if (i.t === 'd') return true;
      if (i.x !== undefined && i.x !== 'l' && i.x !== 'p') return false;
      return i.t === 's' && Array.isArray(i.n) && i.n.every((n) => isBuf(n) && n.length > 0 && !n.includes(0x2f) && !Buffer.from(n).equals(Buffer.from('..')));
    },
  };
}
