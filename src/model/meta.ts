/**
 * The stat record of an entry as fcp carries it: owner, mode, times to the nanosecond,
 * size, inode. Plain data (it travels in work items and checkpoints); reading and
 * applying it is copy/metadata.ts's business.
 */
import { constants, type BigIntStats } from 'node:fs';

export type NsTime = [sec: number, nsec: number];

export interface EntryMeta {
  /** full st_mode including the file type bits */
  mode: number;
  uid: number;
  gid: number;
  atime: NsTime;
  mtime: NsTime;
  size: number;
  /** note: a Number, exact only up to 2^53 */
  ino: number;
  dev: number;
  nlink: number;
  /** st_blocks (512-byte units) when the walk saw the entry; absent when unknown (a resume's kept entries) */
  blocks?: number;
}

const NS_PER_SEC = 1_000_000_000n;

/** Split a bigint nanosecond timestamp into [sec, nsec] with nsec in [0, 1e9) (floor division). */
export function splitNs(ns: bigint): NsTime {
  let sec = ns / NS_PER_SEC;
  let nsec = ns % NS_PER_SEC;
  if (nsec < 0n) {
    nsec += NS_PER_SEC;
    sec -= 1n;
  }
  return [Number(sec), Number(nsec)];
}

export function metaFromBigStats(st: BigIntStats): EntryMeta {
  return {
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    atime: splitNs(st.atimeNs),
    mtime: splitNs(st.mtimeNs),
    size: Number(st.size),
    ino: Number(st.ino),
    dev: Number(st.dev),
    nlink: Number(st.nlink),
  };
}

export function isSymlinkMode(mode: number): boolean {
  return (mode & constants.S_IFMT) === constants.S_IFLNK;
}
