/**
 * The distributed walk: a directory's entries become work items, so ranks share the
 * walk through work stealing. The walk only reads the source; it never writes to DST.
 *
 * Two item kinds keep a huge directory from landing on one rank as one giant array:
 * - 'd': read a directory as a stream, cutting its names into batches of NAMES_PER_BATCH;
 * - 's': lstat one batch of names and record them; subdirectories become 'd' items.
 * Batches are ordinary items, so idle ranks steal them while the directory is still
 * being read.
 */
import { promises as fsp, close } from 'node:fs';
import type { Task, TaskContext } from '../engine/task.js';
import type { InFlight } from '../copy/in-flight.js';
import type { EntryErrors } from '../errors.js';
import { joinPath } from '../copy/paths.js';
import { entryFromStatAt, hasDotDot, isBuf, putStatRecord, STAT_RECORD_FIELDS, type Entry, type Root } from './entry.js';
import type { NativeAddon } from '../native/loader.js';
import { NOT_RECORDED, packNames, unpackNames } from '../checkpoint/listing.js';
import { systemError } from '../errors.js';
import type { RankStore } from '../checkpoint/rank-store.js';
import type { ResumeState } from '../checkpoint/resume-state.js';
import { parentOf } from '../checkpoint/rank-store.js';
import { baseName } from '../copy/paths.js';
import type { PathFilter } from './filter.js';
import type { WalkLists } from './walk-lists.js';
import type { Side } from '../copy/beneath.js';
import { listedDirProblem, listItems, type FileList, type ListFlag } from './list-source.js';
import type { Throttle } from '../limits/throttle.js';

export type WalkItem =
  | { t: 'd'; r: number; p: Buffer }
  | { t: 's'; r: number; p: Buffer; n: Buffer[]; x?: ListFlag };

const NAMES_PER_BATCH = 512;

export interface WalkContext {
  roots: Root[];
  lists: WalkLists;
  errors: EntryErrors;
  /** uid of this process; entries owned by others are counted (owner kept only as root) */
  uid: number;
  /** With the addon a batch is stat'ed in one thread-pool job, relative to its directory. */
  native: NativeAddon | null;
  /**
   * The walked roots' side (copy/beneath.ts): with the addon, directories are opened
   * beneath the roots' anchors, never through a symlink in any component.
   */
  side: Side;
  /** Checkpoint: every entry found and every directory completely read is recorded. */
  store?: RankStore | null;
  /** Resume: what earlier runs found (see checkpoint/resume-state.ts). */
  resume?: ResumeState | null;
  /** --exclude/--include: excluded entries are not recorded, excluded directories not read. */
  filter?: PathFilter | null;
  /** A missing root is no error (walking DST for --delete before anything was copied). */
  optionalRoots?: boolean;
  /** Requests in flight, watched for stalls: a directory's item is one (see copy/in-flight.ts). */
  inFlight?: InFlight | null;
  /** --files-from: the list seeds the walk instead of the root (see list-source.ts) */
  list?: FileList | null;
  /** --max-ops: one operation per directory read and per entry lstat'ed (limits/throttle.ts) */
  limits?: Throttle | null;
}

export function walkTask(w: WalkContext): Task<WalkItem> {
  const record = (e: Entry, ctx: TaskContext<WalkItem>) => {
    w.lists.add(e);
    ctx.count('entries');
    if (e.k === 'f') {
      ctx.count('files');
      ctx.count('bytes', e.m.size);
    } else if (e.k === 'd') ctx.count('dirs');
    else if (e.k === 'l') ctx.count('symlinks');
    else ctx.count('specials');
    if (e.m.uid !== w.uid) ctx.count('foreignOwner');
  };

  /**
   * Take one batch of a directory's lstat results (stat records, see entry.ts): failures
   * are reported, exclusions counted, the rest recorded; subdirectories become 'd' items.
   * The checkpoint gets the batch as one listing row (checkpoint/listing.ts), with the
   * slots it must not record marked. `packed`: the names NUL-terminated, when at hand.
   */
  const take = (r: number, dirRel: Buffer, names: Buffer[], a: Float64Array, packed: Buffer | null, ctx: TaskContext<WalkItem>, x?: ListFlag) => {
    let dirAbs: Buffer | null = null;
    let recorded = 0;
    for (let i = 0; i < names.length; i++) {
      const o = i * STAT_RECORD_FIELDS;
      const err = a[o]!;
      if (err < 0) {
        // An implied parent of a listed path: the listed path's own failure names it.
        if (x === 'p') continue;
        dirAbs ??= joinPath(w.roots[r]!.src, dirRel);
        w.errors.report('stat', joinPath(dirAbs, names[i]!), systemError(err, 'lstat'));
        continue;
      }
      const e = entryFromStatAt(r, joinPath(dirRel, names[i]!), a, i);
      if (w.filter?.excludes(e.p, e.k === 'd')) {
        ctx.count('excluded');
        a[o] = NOT_RECORDED;
        continue;
      }
      record(e, ctx);
      recorded++;
      // A directory an earlier run read completely keeps its children (resume): not read again.
      if (e.k === 'd' && !x && !w.resume?.isComplete(e.r, e.p)) ctx.enqueue({ t: 'd', r: e.r, p: e.p });
    }
    if (w.store && recorded > 0) w.store.listing(r, dirRel, packed ?? packNames(names), a, recorded);
  };

  /** fn as one request in flight, watched for stalls (each call, not a whole directory: a huge one takes long). */
  const tracked = <T>(op: string, path: Buffer, fn: () => Promise<T>): Promise<T> => (w.inFlight ? w.inFlight.track(op, path, fn) : fn());

  /** lstat names of one directory, relative to it: stat records (null when that failed as a whole, reported). */
  const statNames = async (r: number, dirRel: Buffer, names: Buffer[]): Promise<Float64Array | null> => {
    const dirAbs = joinPath(w.roots[r]!.src, dirRel);
    if (w.native) {
      try {
        return await tracked('lstat in directory', dirAbs, () => w.side.statAt(dirAbs, names));
      } catch (err) {
        w.errors.report('stat entries of', dirAbs, err);
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

  const statBatch = async (item: { r: number; p: Buffer; n: Buffer[]; x?: ListFlag }, ctx: TaskContext<WalkItem>) => {
    // A list's names come with their directory, not from reading it. Beneath an anchor
    // (the addon) a symlink on the way fails the lstat itself (ELOOP); without it, each
    // component is checked first.
    if (w.list && item.p.length > 0 && !w.side.safe) {
      const dirAbs = joinPath(w.roots[item.r]!.src, item.p);
      const bad = await tracked('lstat of the directories leading to', dirAbs, () => listedDirProblem(w.roots[item.r]!.src, item.p));
      if (bad) {
        if (item.x !== 'p') for (const n of item.n) w.errors.report('stat', joinPath(dirAbs, n), bad);
        return;
      }
    }
    const a = await statNames(item.r, item.p, item.n);
    if (a) take(item.r, item.p, item.n, a, null, ctx, item.x);
  };

  const readDir = async (item: { r: number; p: Buffer }, ctx: TaskContext<WalkItem>) => {
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
    try {
      if (w.native) {
        // One job opens the directory (without following a symlink), reads its first
        // names and lstats them: all of a small directory. A big one goes on streaming
        // from the same descriptor, in batches that other ranks may steal.
        const first = await tracked('read of directory', abs, () => w.side.scanDir(abs, NAMES_PER_BATCH)).catch((err: { errno?: number; syscall?: string }) => {
          throw typeof err.errno === 'number' ? systemError(err.errno, err.syscall ?? 'open') : err;
        });
        const names = unpackNames(first.names);
        // lstat'ed with the read, so paid right after it (within this item: no debt outlives it)
        if (w.limits?.active) await w.limits.take(0, names.length);
        if (first.fd < 0) {
          take(item.r, item.p, names, first.stats, first.names, ctx);
          w.store?.dirComplete(item.r, item.p);
          return;
        }
        const fh = first.fd;
        try {
          take(item.r, item.p, names, first.stats, first.names, ctx);
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
      w.errors.report('read directory', abs, err);
    }
    // The last (often only) batch is stat'ed right here: no queue round trip for small dirs.
    const last = flush(true);
    if (last && w.limits?.active) await w.limits.take(0, last.length);
    if (last) await statBatch({ r: item.r, p: item.p, n: last }, ctx);
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
          const a = await w.side.lstatRecord(src);
          const e = entryFromStatAt(r, Buffer.alloc(0), a, 0);
          record(e, ctx);
          // The root as a listing of its own: the name '' in the directory ''.
          w.store?.listing(r, e.p, Buffer.alloc(1), a, 1);
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
      if (!Number.isInteger(i.r) || (i.r as number) < 0 || (i.r as number) >= w.roots.length) return false;
      if (!isBuf(i.p) || hasDotDot(Buffer.from(i.p))) return false;
      if (i.t === 'd') return true;
      if (i.x !== undefined && i.x !== 'l' && i.x !== 'p') return false;
      return i.t === 's' && Array.isArray(i.n) && i.n.every((n) => isBuf(n) && n.length > 0 && !n.includes(0x2f) && !Buffer.from(n).equals(Buffer.from('..')));
    },
  };
}
