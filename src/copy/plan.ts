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

/**
 * The files of runs (model/file-run.ts) of at most `maxSize` bytes, in batches bounded like
 * batches(), packed as copyFiles takes them: one path and PACKED_NUMS numbers per file,
 * no entry object.
 */
export function* packedBatches(runs: Iterable<FileRun>, maxSize: number, maxCount = BATCH_FILES, maxBytes = BATCH_BYTES): Generator<{ rels: Buffer[]; nums: Float64Array }> {
  let rels: Buffer[] = [];
  let nums = new Float64Array(maxCount * PACKED_NUMS);
  let bytes = 0;
  for (const run of runs) {
    for (const i of run.idx) {
      const size = run.stats[i * STAT_RECORD_FIELDS + 4]!;
      if (size > maxSize) continue;
      putPackedNums(nums, rels.length, run.r, run.stats, i);
      rels.push(joinPath(run.dir, run.names[i]!));
      bytes += size;
      if (rels.length >= maxCount || bytes >= maxBytes) {
        yield { rels, nums: nums.subarray(0, rels.length * PACKED_NUMS) };
        rels = [];
        nums = new Float64Array(maxCount * PACKED_NUMS);
        bytes = 0;
      }
    }
  }
  if (rels.length > 0) yield { rels, nums: nums.subarray(0, rels.length * PACKED_NUMS) };
}
