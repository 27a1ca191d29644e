/**
 * The hashing phase's task. Items are plain data and may be stolen by any rank:
 *
 *   'b'  a batch of whole files (size <= chunk size): hashed completely by whoever
 *        processes the batch, which also makes their records;
 *   'c'  chunk i of a large file, [o, o + l): hashed as a range (see below); the partial
 *        digest is kept as [w, n, i, digest] (w: owner rank, n: the file's index in the
 *        owner's list) and the owner combines the partials after the phase;
 *   'l'  a batch of symlinks: readlink, target digest, records.
 *
 * With the native addon, hashing runs on the thread pool (native/src/batch.cc), which
 * reads and hashes leaf by leaf; the main thread only makes records. A chunk, or a whole
 * file on a network or parallel file system or larger than a leaf, is one hashRange job
 * (several in flight per rank); the small files (<= 1 MiB) of a batch on a local file
 * system are one hashFiles job. Before, fs.read (a thread-pool round trip per buffer,
 * three per small file) alternated with hashing on the main thread: 3.3x the time of cat
 * on mktree mixed at -np 2.
 *
 * How files are read without the addon, and when small files are read synchronously:
 * read-files.ts.
 */
import { promises as fsp } from 'node:fs';
import type { Task, TaskContext } from '../engine/task.js';
import { systemError, type EntryErrors } from '../errors.js';
import { joinPath } from '../model/paths.js';
import { isEntry, type Entry } from '../model/entry.js';
import { targetDigest } from './entry-digest.js';
import { LEAF, digestFromBytes, fileDigest, isHex128, toHex } from './hasher.js';
import { fileRecord, makeRecord, type SumRecord } from './records.js';
import type { Side } from '../io/beneath.js';
import { COPY_OPS, ERR_SHRANK, NATIVE_CONSTANTS, type NativeAddon } from '../native/loader.js';
import { BUFFER_SIZE, BufferPool, ReadMode, Shrank, YIELD_MS, closeFd, hashRange, hashWholeSync, openRead, pathOf } from './read-files.js';

// the copy's verify (copy/copy-task.ts) imports hashRange from here
export { hashRange };

export type SumItem =
  | { t: 'b'; f: Entry[] }
  | { t: 'c'; f: Entry; o: number; l: number; i: number; w: number; n: number }
  | { t: 'l'; e: Entry[] };

/** [owner rank, owner's file index, chunk index, partial digest hex ('' when the chunk failed)] */
export type ChunkPartial = [number, number, number, string];

export const isChunkPartials = (x: unknown): x is ChunkPartial[] =>
  Array.isArray(x) && x.every((c) => Array.isArray(c) && c.length === 4 && c.slice(0, 3).every((v) => Number.isSafeInteger(v) && v >= 0) && (c[3] === '' || isHex128(c[3])));

/** Files of at most this size are hashed this many at a time within a batch, each in a quarter of the item's buffer. */
const SMALL = LEAF;
const SMALL_IN_FLIGHT = BUFFER_SIZE / SMALL;

export interface SumContext {
  /** root paths (absolute), by root index */
  roots: Buffer[];
  errors: EntryErrors;
  meta: boolean;
  /** root index used in the entry digests */
  digestRoot: (r: number) => number;
  /** receives the record of every entry this rank finishes */
  record: (rec: SumRecord) => void;
  /** partial digests of the chunks this rank hashed */
  partials: ChunkPartial[];
  /** this rank's items, pulled by the engine while its queue is short */
  seedItems: () => Iterable<SumItem>;
  /** items processed at once per rank (default 4) */
  concurrency?: number;
  /** by root index: on a local file system (default: none): small files in one hashFiles job per batch with the addon, else read synchronously while fast */
  syncRoots?: boolean[];
  /** the roots beneath their anchors (io/side.ts); without it, whole paths (O_NOFOLLOW) */
  side?: Side;
  /** with it, ranges are read and hashed in the thread pool (its hashRange); without, fs.read and ChunkHasher */
  native?: NativeAddon | null;
}


/** COPY_OPS index of the native open step (the other steps hashRange reports are reads). */
const OP_OPEN_SRC = NATIVE_CONSTANTS.ops.OPEN_SRC;

export function sumTask(s: SumContext): Task<SumItem> {
  const pool = new BufferPool();
  const mode = new ReadMode((s.syncRoots ?? []).some(Boolean));
  type Ctx = TaskContext<SumItem>;

  /** hashPart with the addon: one thread-pool job opens, reads and hashes the range. */
  const hashPartNative = async (native: NativeAddon, path: Buffer, off: number, len: number, ctx: Ctx): Promise<bigint | null> => {
    let res: { status: Float64Array; partial: Buffer };
    try {
      if (s.side) {
        const { fd, rel } = s.side.at(path);
        res = await native.hashRange(fd, rel, off, len);
      } else {
        res = await native.hashRange(path, off, len);
      }
    } catch (err) {
      s.errors.report('open', path, err);
      ctx.count('errors');
      return null;
    }
    const [errno, op] = res.status as unknown as [number, number];
    if (errno !== 0) {
      const what = op === OP_OPEN_SRC ? 'open' : 'read';
      s.errors.report(what, path, errno === ERR_SHRANK ? new Shrank() : systemError(errno, COPY_OPS[op] || what));
      ctx.count('errors');
      return null;
    }
    ctx.count('bytes', len);
    return digestFromBytes(res.partial);
  };

  /** Hash [off, off + len) of the file of `e`; null after reporting an error. */
  const hashPart = async (e: Entry, off: number, len: number, buf: Buffer, ctx: Ctx): Promise<bigint | null> => {
    const path = pathOf(s.roots, e);
    if (s.native) return hashPartNative(s.native, path, off, len, ctx);
    let fd: number;
    try {
      fd = await openRead(s.side, path);
    } catch (err) {
      s.errors.report('open', path, err);
      ctx.count('errors');
      return null;
    }
    try {
      return await hashRange(fd, off, len, buf, (n) => ctx.count('bytes', n));
    } catch (err) {
      s.errors.report('read', path, err);
      ctx.count('errors');
      return null;
    } finally {
      await closeFd(fd);
    }
  };

  const wholeFile = async (e: Entry, buf: Buffer, ctx: Ctx) => {
    const d = await hashPart(e, 0, e.m.size, buf, ctx);
    const rec = d === null
      ? makeRecord(e, { digestRoot: s.digestRoot(e.r), meta: s.meta, err: true })
      : makeRecord(e, { digestRoot: s.digestRoot(e.r), meta: s.meta, content: fileDigest([d], e.m.size) });
    s.record(rec);
    if (d !== null) ctx.count('files');
  };

  /** Small files synchronously while that stays fast; returns how many were done. */
  const smallSync = async (small: Entry[], buf: Buffer, ctx: Ctx): Promise<number> => {
    let i = 0;
    let slice = process.hrtime.bigint();
    while (i < small.length && mode.sync) {
      const e = small[i++]!;
      const path = pathOf(s.roots, e);
      const t0 = process.hrtime.bigint();
      try {
        const content = hashWholeSync(s.side, path, e.m.size, buf.subarray(0, SMALL), (n) => ctx.count('bytes', n));
        s.record(makeRecord(e, { digestRoot: s.digestRoot(e.r), meta: s.meta, content }));
        ctx.count('files');
      } catch (err) {
        s.errors.report((err as { fsumOp?: string }).fsumOp ?? 'open', path, err);
        ctx.count('errors');
        s.record(makeRecord(e, { digestRoot: s.digestRoot(e.r), meta: s.meta, err: true }));
      }
      const t1 = process.hrtime.bigint();
      mode.note(Number(t1 - t0) / 1000);
      if (t1 - slice > BigInt(YIELD_MS * 1e6)) {
        await new Promise((r) => setImmediate(r));
        slice = process.hrtime.bigint();
      }
    }
    return i;
  };

  /**
   * Each root's anchor fd and path relative to it (side.at of the root, once), or why it
   * failed; without a Side the root's whole path (anchor -1). A file's path for the addon is
   * then this path + '/' + its own, with no search of the anchors per file.
   */
  const anchored: ({ fd: number; rel: Buffer } | Error)[] = [];
  const rootAt = (r: number) => {
    if (anchored[r] === undefined) {
      try {
        anchored[r] = s.side ? s.side.at(s.roots[r]!) : { fd: -1, rel: s.roots[r]! };
      } catch (err) {
        anchored[r] = err as Error;
      }
    }
    return anchored[r];
  };

  /** Small files on local file systems, in one native job; returns the others (wholeFile: one hashRange job each). */
  const localBatch = async (native: NativeAddon, files: Entry[], ctx: Ctx): Promise<Entry[]> => {
    const failed = (e: Entry, what: string, path: Buffer, err: unknown) => {
      s.errors.report(what, path, err);
      ctx.count('errors');
      s.record(makeRecord(e, { digestRoot: s.digestRoot(e.r), meta: s.meta, err: true }));
    };
    const local: Entry[] = [];
    const anchors: number[] = [];
    const rels: Buffer[] = [];
    for (const e of files) {
      if (!s.syncRoots?.[e.r] || e.m.size > SMALL) continue;
      const root = rootAt(e.r);
      if (root instanceof Error) {
        failed(e, 'open', pathOf(s.roots, e), root); // its root's anchor could not be opened
        continue;
      }
      local.push(e);
      anchors.push(root.fd);
      rels.push(joinPath(root.rel, e.p));
    }
    if (local.length > 0) {
      const sizes = Float64Array.from(local, (e) => e.m.size);
      // Without --meta the job makes the entry digests too (off the main thread).
      const { status, digests, entries } = s.meta
        ? { ...await native.hashFiles(Int32Array.from(anchors), rels, sizes), entries: null }
        : await native.hashFiles(Int32Array.from(anchors), rels, sizes, Int32Array.from(local, (e) => s.digestRoot(e.r)), local.map((e) => e.p));
      let bytes = 0;
      let done = 0;
      for (let i = 0; i < local.length; i++) {
        const e = local[i]!;
        const errno = status[2 * i]!;
        if (errno !== 0) {
          const op = status[2 * i + 1]!;
          const what = op === OP_OPEN_SRC ? 'open' : 'read';
          failed(e, what, pathOf(s.roots, e), errno === ERR_SHRANK ? new Shrank() : systemError(errno, COPY_OPS[op] || what));
          continue;
        }
        s.record(entries
          ? fileRecord(e, digests.toString('hex', 16 * i, 16 * i + 16), entries.toString('hex', 16 * i, 16 * i + 16))
          : makeRecord(e, { digestRoot: s.digestRoot(e.r), meta: s.meta, content: digestFromBytes(digests, 16 * i) }));
        bytes += e.m.size;
        done++;
      }
      ctx.count('bytes', bytes);
      ctx.count('files', done);
    }
    return files.filter((e) => !s.syncRoots?.[e.r] || e.m.size > SMALL);
  };

  const batch = async (all: Entry[], ctx: Ctx) => {
    const files = s.native ? await localBatch(s.native, all, ctx) : all;
    if (files.length === 0) return;
    const buf = pool.take();
    try {
      let small = files.filter((e) => e.m.size <= SMALL);
      const big = files.filter((e) => e.m.size > SMALL);
      if (mode.sync) {
        const local = small.filter((e) => s.syncRoots?.[e.r]);
        small = small.filter((e) => !s.syncRoots?.[e.r]);
        const done = await smallSync(local, buf, ctx);
        small.push(...local.slice(done));
      }
      let next = 0;
      await Promise.all(Array.from({ length: Math.min(SMALL_IN_FLIGHT, small.length) }, async (_, k) => {
        const slot = buf.subarray(k * SMALL, (k + 1) * SMALL);
        while (next < small.length) await wholeFile(small[next++]!, slot, ctx);
      }));
      // with the addon each is its own thread-pool job and needs no buffer: all at once
      if (s.native) await Promise.all(big.map((e) => wholeFile(e, buf, ctx)));
      else for (const e of big) await wholeFile(e, buf, ctx);
    } finally {
      pool.give(buf);
    }
  };

  const chunk = async (item: Extract<SumItem, { t: 'c' }>, ctx: Ctx) => {
    const buf = pool.take();
    try {
      const d = await hashPart(item.f, item.o, item.l, buf, ctx);
      s.partials.push([item.w, item.n, item.i, d === null ? '' : toHex(d)]);
      ctx.count('chunks');
    } finally {
      pool.give(buf);
    }
  };

  const links = async (list: Entry[], ctx: Ctx) => {
    await Promise.all(list.map(async (e) => {
      const path = pathOf(s.roots, e);
      try {
        const t = s.side ? await s.side.readlink(path) : (await fsp.readlink(path, { encoding: 'buffer' })) as Buffer;
        s.record(makeRecord(e, { digestRoot: s.digestRoot(e.r), meta: s.meta, target: targetDigest(t), targetLength: t.length }));
      } catch (err) {
        s.errors.report('read link', path, err);
        ctx.count('errors');
        s.record(makeRecord(e, { digestRoot: s.digestRoot(e.r), meta: s.meta, err: true }));
      }
    }));
  };

  const roots = s.roots.length;
  const isFile = (x: unknown): x is Entry => isEntry(x, roots) && (x as Entry).k === 'f';
  const nat = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

  return {
    name: 'sum',
    concurrency: s.concurrency ?? 4,
    seed() {},
    // lazily: a rank's share (its part of a million files) never sits in the queue at once
    source: () => s.seedItems(),
    async process(item, ctx) {
      if (item.t === 'b') await batch(item.f, ctx);
      else if (item.t === 'c') await chunk(item, ctx);
      else await links(item.e, ctx);
    },
    isItem(x): x is SumItem {
      if (typeof x !== 'object' || x === null) return false;
      const i = x as Record<string, unknown>;
      if (i.t === 'b') return Array.isArray(i.f) && i.f.every(isFile);
      if (i.t === 'l') return Array.isArray(i.e) && i.e.every((e) => isEntry(e, roots) && (e as Entry).k === 'l');
      if (i.t !== 'c' || !isFile(i.f) || ![i.o, i.l, i.i, i.w, i.n].every(nat)) return false;
      const f = i.f as Entry;
      return (i.o as number) % LEAF === 0 && (i.l as number) > 0 && (i.o as number) + (i.l as number) <= f.m.size;
    },
  };
}
