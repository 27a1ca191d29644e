/** What callers read of an lstat, from a stat record (model/entry.ts layout), whichever side made it. */

/** What the callers read of an lstat. */
export interface EntryStat {
  mode: number;
  size: number;
  mtimeNs: bigint;
  /** mtime as (s, ns), as the walk records it */
  mtime: [number, number];
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isFIFO(): boolean;
}

export function statOf(rec: Float64Array): EntryStat {
  const mode = rec[1]!;
  const type = mode & 0o170000;
  return {
    mode,
    size: rec[4]!,
    mtimeNs: BigInt(rec[12]!) * 1_000_000_000n + BigInt(rec[13]!),
    mtime: [rec[12]!, rec[13]!],
    isFile: () => type === 0o100000,
    isDirectory: () => type === 0o040000,
    isSymbolicLink: () => type === 0o120000,
    isFIFO: () => type === 0o010000,
  };
}
