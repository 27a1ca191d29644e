/**
 * One side (all SRC roots, or all DST roots) of a job: the file operations the walk, copy,
 * delete and verify make there, by whole path (root + '/' + rel, as copy-task's srcOf/dstOf
 * build them, for messages).
 *
 * How a side resolves those paths is chosen once, when it is opened: beneath anchors with
 * the addon (anchored-side.ts: a symlink in any component is ELOOP), or by whole path with
 * node:fs without it (path-side.ts: only the last component is protected; see fcp.ts
 * --unsafe-paths).
 */
import type { NativeAddon } from '../native/loader.js';
import { AnchoredSide } from './anchored-side.js';
import type { EntryStat } from './entry-stat.js';
import { PathSide } from './path-side.js';

export type { EntryStat } from './entry-stat.js';

export interface Side {
  /** True when operations resolve beneath anchors (the addon is there). */
  readonly safe: boolean;

  close(): void;

  /**
   * The anchor of a whole path and the path relative to it (without trailing slashes), for
   * the addon's calls that take them. Throws EXDEV when `p` is beneath no root (always, on a
   * path side: it has no anchors), or the error its anchor could not be opened with.
   */
  at(p: Buffer): { fd: number; rel: Buffer };

  /** An fd for reading or writing (flags as open(2); O_NOFOLLOW is always added). Close it with fs.close. */
  open(p: Buffer, flags: number, mode?: number): Promise<number>;

  /** open on the calling thread. */
  openSync(p: Buffer, flags: number): number;

  lstat(p: Buffer): Promise<EntryStat>;

  /**
   * The owner and mode the kernel already holds for `p`, without asking the file system
   * (statx AT_STATX_DONT_SYNC): on a parallel file system a getattr is a round trip, and
   * FUSE marks a directory's attributes stale after each create in it although its owner
   * and mode did not change. Resolving the path may still look its names up (those
   * lookups the next operation on `p` needs anyway). null without the addon.
   */
  cachedOwnerMode(p: Buffer): Promise<{ mode: number; uid: number; gid: number } | null>;

  /** lstat as a walk stat record (model/entry.ts layout). */
  lstatRecord(p: Buffer): Promise<Float64Array>;

  readlink(p: Buffer): Promise<Buffer>;

  symlink(target: Buffer, p: Buffer): Promise<void>;

  /** A hard link `p` to the entry `existing` (both on this side). */
  link(existing: Buffer, p: Buffer): Promise<void>;

  rename(from: Buffer, to: Buffer): Promise<void>;

  unlink(p: Buffer): Promise<void>;

  /** rmdir: an empty directory only (what --delete counted; ENOTEMPTY when it holds more). */
  rmdir(p: Buffer): Promise<void>;

  /** rm -rf of one entry; a missing one is fine. */
  removeTree(p: Buffer): Promise<void>;

  /** mkdir; parents: create missing parents, and an existing directory is fine. */
  mkdir(p: Buffer, mode: number, parents: boolean): Promise<void>;

  /** Needs the addon (Node has no mkfifo): ENOTSUP on a path side. */
  mkfifo(p: Buffer, mode: number): Promise<void>;

  /** chmod, never through a symlink. */
  chmod(p: Buffer, mode: number): Promise<void>;

  lchown(p: Buffer, uid: number, gid: number): Promise<void>;

  /** Times in ns, never through a symlink (a symlink gets its own). Addon only. */
  utimens(p: Buffer, atime: [number, number], mtime: [number, number]): Promise<void>;

  /** Directory reads for the walk (addon only): see NativeAddon.scanDir and statAt. */
  scanDir(p: Buffer, maxNames: number): Promise<{ names: Buffer; stats: Float64Array; fd: number }>;

  statAt(dir: Buffer, names: Buffer[] | Buffer): Promise<Float64Array>;
}

/**
 * The side of these roots: anchored with the addon, by whole path without it.
 * followLinkedRoots: a root that is a symlink now is followed (its own anchor).
 * createMissing: an anchor directory that does not exist is created first (with its
 * parents, as `mkdir -p` of the path the user gave: the DST roots' parents of a copy).
 */
export function openSide(native: NativeAddon | null, rootPaths: Buffer[], followLinkedRoots: (root: Buffer) => boolean, createMissing = false): Side {
  return native ? new AnchoredSide(native, rootPaths, followLinkedRoots, createMissing) : new PathSide();
}
