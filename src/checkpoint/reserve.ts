/**
 * Space set aside for the checkpoint where it lives (by default beside DST, so on the
 * same file system): when DST fills up, the last records of the work done must still be
 * written, or a resume would redo everything. Each rank writes a file of real blocks at
 * start and removes it when its store finds the disk full, or when the job stops.
 */
import { rmSync, writeFileSync } from 'node:fs';

/** Enough for one interval's buffered records and their WAL pages (see rank-store.ts). */
export const RESERVE_BYTES = 4 << 20;

export class SpaceReserve {
  private held: boolean;

  /** Best effort: a disk already full gets no reserve (and the job goes on). */
  constructor(readonly path: string, bytes = RESERVE_BYTES) {
    try {
      // Written, not ftruncate'd: a sparse file would hold no blocks.
      writeFileSync(path, Buffer.alloc(bytes), { mode: 0o600 });
      this.held = true;
    } catch {
      try { rmSync(path, { force: true }); } catch { /* nothing to give back */ }
      this.held = false;
    }
  }

  /** Give the space back; true if there was some to give. */
  release(): boolean {
    if (!this.held) return false;
    this.held = false;
    try {
      rmSync(this.path, { force: true });
    } catch {
      return false;
    }
    return true;
  }
}
