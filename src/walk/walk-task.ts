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
import { promises as fsp, constants as C } from 'node:fs';
import type { Task, TaskContext } from '../engine/task.js';
import type { EntryErrors } from '../errors.js';
import { joinPath } from '../copy/paths.js';
import { entryFromStatAt, entryFromStats, hasDotDot, isBuf, type Entry, type Root } from './entry.js';
import type { NativeAddon } from '../native/loader.js';
import { systemError } from '../errors.js';
import type { WalkLists } from './walk-lists.js';

export type WalkItem =
  | { t: 'd'; r: number; p: Buffer }
  | { t: 's'; r: number; p: Buffer; n: Buffer[] };

const NAMES_PER_BATCH = 512;

export interface WalkContext {
  roots: Root[];
  lists: WalkLists;
  errors: EntryErrors;
  /** uid of this process; entries owned by others are counted (owner kept only as root) */
  uid: number;
  /** With the addon a batch is stat'ed in one thread-pool job, relative to its directory. */
  native: NativeAddon | null;
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

  const statBatch = async (item: { r: number; p: Buffer; n: Buffer[] }, ctx: TaskContext<WalkItem>) => {
    const root = w.roots[item.r]!;
    const dirAbs = joinPath(root.src, item.p);
    if (w.native) {
      const a = await w.native.statAt(dirAbs, item.n);
      item.n.forEach((name, i) => {
        const err = a[i * 14]!;
        if (err < 0) {
          w.errors.report('stat', joinPath(dirAbs, name), systemError(err, 'lstat'));
          return;
        }
        const e = entryFromStatAt(item.r, joinPath(item.p, name), a, i);
        record(e, ctx);
        if (e.k === 'd') ctx.enqueue({ t: 'd', r: item.r, p: e.p });
      });
      return;
    }
    await Promise.all(item.n.map(async (name) => {
      const rel = joinPath(item.p, name);
      let st;
      try {
        st = await fsp.lstat(joinPath(dirAbs, name), { bigint: true });
      } catch (err) {
        w.errors.report('stat', joinPath(dirAbs, name), err);
        return;
      }
      const e = entryFromStats(item.r, rel, st);
      record(e, ctx);
      if (e.k === 'd') ctx.enqueue({ t: 'd', r: item.r, p: rel });
    }));
  };

  const readDir = async (item: { r: number; p: Buffer }, ctx: TaskContext<WalkItem>) => {
    const abs = joinPath(w.roots[item.r]!.src, item.p);
    let batch: Buffer[] = [];
    const flush = (last: boolean) => {
      if (batch.length === 0) return null;
      const b = batch;
      batch = [];
      if (last) return b;
      ctx.enqueue({ t: 's', r: item.r, p: item.p, n: b });
      return null;
    };
    try {
      if (w.native) {
        // getdents64 batches on a descriptor opened without following a symlink.
        const fh = await fsp.open(abs, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
        try {
          for (;;) {
            const packed = await w.native.readNames(fh.fd, 32768);
            if (!packed) break;
            for (let s = 0; s < packed.length; ) {
              const e = packed.indexOf(0, s);
              batch.push(packed.subarray(s, e));
              s = e + 1;
              if (batch.length === NAMES_PER_BATCH) flush(false);
            }
          }
        } finally {
          await fh.close();
        }
      } else {
        const dir = await fsp.opendir(abs, { encoding: 'buffer' as BufferEncoding, bufferSize: 128 });
        for await (const d of dir) {
          batch.push(d.name as unknown as Buffer);
          if (batch.length === NAMES_PER_BATCH) flush(false);
        }
      }
    } catch (err) {
      w.errors.report('read directory', abs, err);
    }
    // The last (often only) batch is stat'ed right here: no queue round trip for small dirs.
    const last = flush(true);
    if (last) await statBatch({ r: item.r, p: item.p, n: last }, ctx);
  };

  return {
    name: 'walk',
    concurrency: 8,
    async seed(ctx) {
      if (ctx.rank !== 0) return;
      for (let r = 0; r < w.roots.length; r++) {
        const src = w.roots[r]!.src;
        try {
          const e = entryFromStats(r, Buffer.alloc(0), await fsp.lstat(src, { bigint: true }));
          record(e, ctx);
          if (e.k === 'd') ctx.enqueue({ t: 'd', r, p: Buffer.alloc(0) });
        } catch (err) {
          w.errors.report('stat', src, err);
        }
      }
    },
    async process(item, ctx) {
      if (item.t === 'd') await readDir(item, ctx);
      else await statBatch(item, ctx);
    },
    isItem(x): x is WalkItem {
      if (typeof x !== 'object' || x === null) return false;
      const i = x as Record<string, unknown>;
      if (!Number.isInteger(i.r) || (i.r as number) < 0 || (i.r as number) >= w.roots.length) return false;
      if (!isBuf(i.p) || hasDotDot(Buffer.from(i.p))) return false;
      if (i.t === 'd') return true;
      return i.t === 's' && Array.isArray(i.n) && i.n.every((n) => isBuf(n) && n.length > 0 && !n.includes(0x2f) && !Buffer.from(n).equals(Buffer.from('..')));
    },
  };
}
