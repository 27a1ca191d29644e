/**
 * How fsum reads files without the native addon, and how a rank decides to read small files
 * synchronously (used by the hashing task, sum-task.ts; hashRange also by the copy's verify).
 *
 * Without the addon, reads use fs.read into a 4 MiB buffer reused for the whole item (no
 * allocation per read); a buffer hashes in well under a millisecond, so the event loop
 * (and the runtime's heartbeats) keeps running. Small files (<= 1 MiB) on local file
 * systems (tmpfs, ext4, xfs, btrfs...: see LOCAL_FS) are read synchronously while that
 * is cheap: there open+read+close takes a few microseconds and a round trip through the
 * libuv thread pool costs several times that (measured 4-8x on tmpfs). Each rank watches
 * how long those synchronous reads take (the median of each window of 32 files); once it
 * exceeds SYNC_MAX_US (a cold disk) the rank reads every file through the thread pool for
 * the rest of the job. Network and parallel file systems (Lustre, GPFS, NFS...) always go
 * through the thread pool: many opens in flight matter there, and a synchronous call
 * stuck on a server would stop this rank's heartbeats. The synchronous loop yields to
 * the event loop every YIELD_MS.
 */
import fs, { constants as C } from 'node:fs';
import { joinPath } from '../model/paths.js';
import { ChunkHasher, digestOfBuffer, fileDigest } from './hasher.js';
import type { Side } from '../io/beneath.js';

/** Read buffers: one per item in flight (BufferPool). */
export const BUFFER_SIZE = 4 * 1024 * 1024;
/** statfs f_type of file systems whose small files may be read synchronously. */
export const LOCAL_FS = new Set([
  0x01021994, // tmpfs
  0x858458f6, // ramfs
  0xef53, // ext2/3/4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x794c7630, // overlayfs
  0x2fc12fc1, // zfs
  0xf2f52010, // f2fs
]);

/** Whether `path` is on a local file system (see LOCAL_FS); false when it cannot be told. */
export function isLocalFs(path: Buffer | string): boolean {
  try {
    return LOCAL_FS.has(Number(fs.statfsSync(path).type));
  } catch {
    return false;
  }
}

/** Median synchronous open+read+close time above which a rank switches to the thread pool. */
export const SYNC_MAX_US = 300;
export const YIELD_MS = 5;

/**
 * How this rank reads small files: synchronously while that stays fast (see above). The
 * decision uses the median of each window of 32 files, so a slow first file (JIT warm-up)
 * or a GC pause does not count.
 */
export class ReadMode {
  sync: boolean;
  private window: number[] = [];
  constructor(sync = true) {
    this.sync = sync;
  }
  note(us: number): void {
    this.window.push(us);
    if (this.window.length < 32) return;
    const median = this.window.sort((a, b) => a - b)[16]!;
    this.window = [];
    if (median > SYNC_MAX_US) this.sync = false;
  }
}


export const pathOf = (roots: Buffer[], e: { r: number; p: Buffer }) => joinPath(roots[e.r]!, Buffer.from(e.p));

export class Shrank extends Error {
  constructor() {
    super('file shrank while it was being read');
  }
}

function readAt(fd: number, buf: Buffer, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, 0, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Partial digest of [off, off + len) of an open file, read through `buf`. */
export async function hashRange(fd: number, off: number, len: number, buf: Buffer, onBytes?: (n: number) => void): Promise<bigint> {
  const h = new ChunkHasher(off);
  const end = off + len;
  let pos = off;
  while (pos < end) {
    const n = await readAt(fd, buf, Math.min(buf.length, end - pos), pos);
    if (n === 0) throw new Shrank();
    h.update(buf.subarray(0, n), pos);
    pos += n;
    onBytes?.(n);
  }
  return h.digest();
}

/** Content digest of a whole small file, synchronously (the caller bounds how long it runs). */
export function hashWholeSync(side: Side | undefined, path: Buffer, size: number, buf: Buffer, onBytes: (n: number) => void): bigint {
  const fd = side ? side.openSync(path, C.O_RDONLY) : fs.openSync(path, C.O_RDONLY | C.O_NOFOLLOW);
  try {
    if (size <= buf.length) {
      // the usual case: the whole file in one read, hashed in one go
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, size, 0);
      } catch (err) {
        throw Object.assign(err as Error, { fsumOp: 'read' });
      }
      if (n === size) {
        onBytes(n);
        return digestOfBuffer(buf.subarray(0, n));
      }
    }
    const h = new ChunkHasher(0);
    let pos = 0;
    while (pos < size) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
      } catch (err) {
        throw Object.assign(err as Error, { fsumOp: 'read' });
      }
      if (n === 0) throw Object.assign(new Shrank(), { fsumOp: 'read' });
      h.update(buf.subarray(0, n), pos);
      pos += n;
      onBytes(n);
    }
    return fileDigest([h.digest()], size);
  } finally {
    fs.closeSync(fd);
  }
}

export async function openRead(side: Side | undefined, path: Buffer): Promise<number> {
  if (side) return side.open(path, C.O_RDONLY);
  return new Promise((resolve, reject) => fs.open(path, C.O_RDONLY | C.O_NOFOLLOW, (err, fd) => (err ? reject(err) : resolve(fd))));
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve) => fs.close(fd, () => resolve()));
}

/** 4 MiB buffers, one per item in flight, reused. */
export class BufferPool {
  private free: Buffer[] = [];
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(BUFFER_SIZE);
  }
  give(b: Buffer): void {
    this.free.push(b);
  }
}
