/**
 * Packed forms of plain files, so that the common file costs JavaScript no object of its own.
 *
 * A FileRun is what the walk keeps of one stat'ed batch of one directory: the names and
 * the stat records as the addon returned them, and which slots are plain files (regular,
 * one link, not excluded). Nothing is unpacked until a file needs JavaScript (a large
 * file, a resume's lookup, a phase that walks the lists entry by entry): see runEntry.
 *
 * A PackedFiles is a batch of whole files in copyFiles' own argument layout (relative
 * paths, COPY_NUMS numbers each: see native/loader.ts), built straight from runs.
 */
import { entryFromStatAt, STAT_RECORD_FIELDS, type Entry } from './entry.js';
import { joinPath } from './paths.js';
import { FALLBACK_CONSTANTS } from '../native/constants.js';

export interface FileRun {
  r: number;
  /** the directory, relative to its root */
  dir: Buffer;
  /** the batch's names (all of them, not only the files') */
  names: Buffer[];
  /** the batch's stat records (model/entry.ts STAT_RECORD_FIELDS per name) */
  stats: Float64Array;
  /** the slots that are plain files */
  idx: number[];
}

/**
 * The run to keep of a batch's plain files: the batch itself when they are at least half
 * of it, else a copy of their slots only, so that a batch of many subdirectories and a
 * few files does not keep every slot's record alive (a run costs at most twice its files).
 */
export function keptRun(r: number, dir: Buffer, names: Buffer[], stats: Float64Array, idx: number[]): FileRun {
  if (idx.length * 2 >= names.length) return { r, dir, names, stats, idx };
  const own = new Float64Array(idx.length * STAT_RECORD_FIELDS);
  const ownNames: Buffer[] = new Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k]!;
    own.set(stats.subarray(i * STAT_RECORD_FIELDS, (i + 1) * STAT_RECORD_FIELDS), k * STAT_RECORD_FIELDS);
    ownNames[k] = Buffer.from(names[i]!); // (a view would keep the batch's names alive)
  }
  return { r, dir, names: ownNames, stats: own, idx: idx.map((_, k) => k) };
}

/** Size of file k of a run (k indexes run.idx). */
export const runSize = (run: FileRun, k: number): number => run.stats[run.idx[k]! * STAT_RECORD_FIELDS + 4]!;

/** File k of a run as an entry. */
export const runEntry = (run: FileRun, k: number): Entry => entryFromStatAt(run.r, joinPath(run.dir, run.names[run.idx[k]!]!), run.stats, run.idx[k]!);

/** Every file of a run as entries. */
export function* runEntries(run: FileRun): Generator<Entry> {
  for (let k = 0; k < run.idx.length; k++) yield runEntry(run, k);
}

/**
 * Numbers per file of copyFiles (native/src/constants.h kCopyNums): root index, size,
 * mode, uid, gid, atime s, ns, mtime s, ns, st_blocks (-1: unknown).
 */
export const PACKED_NUMS = FALLBACK_CONSTANTS.copyNums;

/** Put file `i` of a stat-record array as slot `j` of copyFiles' numbers. */
export function putPackedNums(nums: Float64Array, j: number, r: number, a: Float64Array, i: number): void {
  const o = j * PACKED_NUMS;
  const s = i * STAT_RECORD_FIELDS;
  nums[o] = r;
  nums[o + 1] = a[s + 4]!; nums[o + 2] = a[s + 1]!; nums[o + 3] = a[s + 2]!; nums[o + 4] = a[s + 3]!;
  nums[o + 5] = a[s + 10]!; nums[o + 6] = a[s + 11]!; nums[o + 7] = a[s + 12]!; nums[o + 8] = a[s + 13]!;
  nums[o + 9] = a[s + 14]!;
}

/** An entry of a packed batch, for the few files that need one (a failure to name, a fallback copy). */
export function packedEntry(rels: Buffer[], nums: Float64Array, i: number): Entry {
  const o = i * PACKED_NUMS;
  return {
    r: nums[o]!, p: rels[i]!, k: 'f',
    m: {
      size: nums[o + 1]!, mode: nums[o + 2]!, uid: nums[o + 3]!, gid: nums[o + 4]!, nlink: 1, dev: 0, ino: 0,
      atime: [nums[o + 5]!, nums[o + 6]!], mtime: [nums[o + 7]!, nums[o + 8]!], ...(nums[o + 9]! >= 0 ? { blocks: nums[o + 9]! } : {}),
    },
  };
}

/** Doubles carried as bytes (the wire has no typed arrays): a view when aligned, else a copy. */
export function doublesView(b: Uint8Array): Float64Array {
  if (b.byteOffset % 8 === 0) return new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8);
  const a = new Float64Array(b.byteLength / 8);
  new Uint8Array(a.buffer).set(b);
  return a;
}
