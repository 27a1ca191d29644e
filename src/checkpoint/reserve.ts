/**
 * Space set aside for the checkpoint where it lives (by default beside DST, so on the
 * same file system): when DST fills up, the last records of the work done must still be
 * written, or a resume would redo everything. Each rank writes a file of real blocks at
 * start and removes it when its store finds the disk full, or when the job stops.
 */
import { closeSync, constants as C, openSync, writeSync } from 'node:fs';
import { loadNative } from '../native/loader.js';
import { removeFile } from '../util/remove.js';

/** Enough for one interval's buffered records and their WAL pages (see rank-store.ts). */
export const RESERVE_BYTES = 4 << 20;

export class SpaceReserve {
  private held: boolean;

  /** Best effort: a disk already full gets no reserve (and the job goes on). */
  constructor(readonly path: string, bytes = RESERVE_BYTES) {
    try {
      const fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, 0o600);
      try {
        allocate(fd, bytes);
      } finally {
        closeSync(fd);
      }
      this.held = true;
    } catch {
      try { removeFile(path); } catch { /* nothing to give back */ }
      this.held = false;
    }
  }

  /** Give the space back; true if there was some to give. */
  release(): boolean {
    if (!this.held) return false;
    this.held = false;
    try {
      removeFile(this.path);
    } catch {
      return false;
    }
    return true;
  }
}

/**
 * Real blocks for [0, bytes) of fd: allocated where the file system can (one request, where
 * writing zeros through a FUSE client is one per page, a thousand for 4 MiB), else written;
 * never ftruncate'd, a sparse file would hold no blocks.
 */
function allocate(fd: number, bytes: number): void {
  const native = loadNative();
  if (native) {
    try {
      native.fallocate(fd, bytes);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    }
  }
  const zeros = Buffer.alloc(bytes);
  for (let off = 0; off < bytes; ) off += writeSync(fd, zeros, off, bytes - off, off);
}
