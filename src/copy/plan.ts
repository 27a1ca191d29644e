/**
 * How the copy is cut into work items. Pure functions, the same on every rank.
 *
 * Chunk size (unless --chunk-size is given):
 *     chunk = clamp(pow2floor(totalBytes / (ranks * 8)), 4 MiB, 1 GiB)
 * i.e. about eight chunks per rank over the whole job, so every rank gets a share of even
 * a single huge file and stealing has pieces to move, without making chunks so small that
 * per-item overhead shows. A file larger than the chunk size is split into chunks written
 * into a hidden `.fcp-part.*` file and renamed into place once every chunk is done; any
 * other file is copied in one go, straight to its name, and small files are batched
 * (up to BATCH_FILES files or BATCH_BYTES bytes per item) so per-item overhead does not
 * dominate trees of many small files.
 */
import { STAT_RECORD_FIELDS } from '../model/entry.js';
import { PACKED_NUMS, putPackedNums, type FileRun } from '../model/file-run.js';
import { joinPath } from '../model/paths.js';

export const MiB = 1024 * 1024;
export const MIN_CHUNK = 4 * MiB;
export const MAX_CHUNK = 1024 * MiB;
export const BATCH_FILES = 64;
export const BATCH_BYTES = 8 * MiB;

/**
 * Files per batch of whole files: BATCH_FILES, fewer when the job has few files for its
 * ranks, so that each rank gets about BATCHES_PER_RANK batches. A rank runs a few items at
 * once (the copy task's concurrency) and only items still waiting in its queue can be
 * stolen: with 2,000 files on 8 ranks, batches of 64 made 32 items that the ranks had all
 * started at once, and a rank whose file system was slower kept its share to the end
 * while the others idled (bench/cluster.mjs: one node copied 31 % of the files, another
 * 18 %). Large trees keep BATCH_FILES, where per-item overhead would show.
 */
export const BATCHES_PER_RANK = 16;
/**
 * Items the copy runs at once on one rank: each is one thread-pool job copying its files
 * in turn, so on a file system with a round trip per request this is what one rank keeps
 * in flight (latfs at 1 ms, 2,000 files, -np 1: the copy phase took 6.0 s at 4, 2.4 s at
 * 12). The pool has 16 threads (bin/preamble.js): the rest serve the checkpoint and
 * the lists. (A rank thus starts 12 of its ~BATCHES_PER_RANK batches at once; the rest
 * wait for thieves.)
 */
export const COPY_BATCHES_IN_FLIGHT = 12;
export const MIN_BATCH_FILES = 8;

export function chooseBatchFiles(files: number, ranks: number): number {
  return Math.min(BATCH_FILES, Math.max(MIN_BATCH_FILES, Math.ceil(files / (Math.max(1, ranks) * BATCHES_PER_RANK))));
}

export function pow2floor(n: number): number {
  if (n < 1) return 1;
  return 2 ** Math.floor(Math.log2(n));
}

export function chooseChunkSize(totalBytes: number, ranks: number, override?: number): number {
  if (override && override > 0) return override;
  return Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, pow2floor(totalBytes / (Math.max(1, ranks) * 8))));
}

/** [offset, length] of each chunk of a file of `size` bytes. */
export function chunksOf(size: number, chunk: number): [number, number][] {
  const out: [number, number][] = [];
  for (let off = 0; off < size; off += chunk) out.push([off, Math.min(chunk, size - off)]);
  return out;
}

/** Group items into batches bounded in count and bytes. */
export function* batches<T>(items: Iterable<T>, sizeOf: (t: T) => number, maxCount = BATCH_FILES, maxBytes = BATCH_BYTES): Generator<T[]> {
  let cur: T[] = [];
  let bytes = 0;
  for (const it of items) {
    cur.push(it);
    bytes += sizeOf(it);
    if (cur.length >= maxCount || bytes >= maxBytes) {
      yield cur;
      cur = [];
      bytes = 0;
    }
  }
  if (cur.length > 0) yield cur;
}

/** A batch of whole files packed as copyFiles takes them: one path and PACKED_NUMS numbers per file. */
export interface PackedBatch {
  rels: Buffer[];
  nums: Float64Array;
}

/** Cuts files of runs (model/file-run.ts) into packed batches bounded like batches(): no entry object per file. */
export class PackedBatcher {
  private rels: Buffer[] = [];
  private nums: Float64Array;
  private bytes = 0;

  constructor(private readonly maxCount = BATCH_FILES, private readonly maxBytes = BATCH_BYTES) {
    this.nums = new Float64Array(maxCount * PACKED_NUMS);
  }

  /** Slot i of a run, unless it is larger than maxSize; a batch when this file filled one. */
  add(run: FileRun, i: number, maxSize: number): PackedBatch | null {
    const size = run.stats[i * STAT_RECORD_FIELDS + 4]!;
    if (size > maxSize) return null;
    putPackedNums(this.nums, this.rels.length, run.r, run.stats, i);
    this.rels.push(joinPath(run.dir, run.names[i]!));
    this.bytes += size;
    return this.rels.length >= this.maxCount || this.bytes >= this.maxBytes ? this.rest() : null;
  }

  /** The files added since the last batch, as one (null: none). */
  rest(): PackedBatch | null {
    if (this.rels.length === 0) return null;
    const b = { rels: this.rels, nums: this.nums.subarray(0, this.rels.length * PACKED_NUMS) };
    this.rels = [];
    this.nums = new Float64Array(this.maxCount * PACKED_NUMS);
    this.bytes = 0;
    return b;
  }
}

/** The files of runs of at most `maxSize` bytes, in packed batches (see PackedBatcher). */
export function* packedBatches(runs: Iterable<FileRun>, maxSize: number, maxCount = BATCH_FILES, maxBytes = BATCH_BYTES): Generator<PackedBatch> {
  const batcher = new PackedBatcher(maxCount, maxBytes);
  for (const run of runs) {
    for (const i of run.idx) {
      const b = batcher.add(run, i, maxSize);
      if (b) yield b;
    }
  }
  const rest = batcher.rest();
  if (rest) yield rest;
}
