/**
 * Writeback of small files started early, on a local disk, so that the syncs the
 * checkpoint waits for find little left to write (see EarlyWriteback, and data-sync.ts
 * for the syncs that cover the checkpoint's records).
 */
import { constants as C, openSync, closeSync, statfsSync } from 'node:fs';
import type { NativeAddon } from '../native/loader.js';

/**
 * When EarlyWriteback starts a sync: this much copied since the last one started, and not
 * sooner than `gapMs` after it; less, once nothing more was copied for `quietMs` (the copy
 * ended: its last files are written back while the later phases run).
 */
export interface EarlyPolicy { files: number; bytes: number; gapMs: number; quietMs: number }

/**
 * A few hundred small files, or a few MiB, a few times a second at most: on ext4 a sync
 * of that much takes tens of ms, and each is one journal commit.
 */
export const EARLY_WRITEBACK: EarlyPolicy = { files: 256, bytes: 8 << 20, gapMs: 250, quietMs: 50 };

/** statfs f_type of the file systems on a local disk, where early writeback pays (see EarlyWriteback). */
const DISK_FS = new Set([
  0xef53, // ext2/3/4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0xf2f52010, // f2fs
]);

/** Is the open fd on a local disk file system (DISK_FS)? False when that cannot be told (no /proc). */
export function onLocalDisk(fd: number): boolean {
  try {
    return DISK_FS.has(Number(statfsSync(`/proc/self/fd/${fd}`).type));
  } catch {
    return false;
  }
}

/**
 * Writeback started early, while the copy goes on, so that the syncs that cover the
 * checkpoint's records (above all the one at the end of the job, on the critical path)
 * find little left to write: on a local disk the kernel leaves a short copy's small files
 * dirty for up to 30 s, and the last sync would write all their data and inodes while
 * every rank waits (20,000 small files on ext4, 9 alternated rounds: +22 % over --no-sync
 * without these syncs, +17 % with them; the rest is the kernel's own CPU to write the
 * files back, see README "Durability"). Once enough small files were
 * copied (EarlyPolicy), a syncfs in the thread pool of each local disk file system
 * written to, one at a time. These syncs never cover a record (the commit's own sync,
 * started after its records were taken, does), so they need not succeed: they run on
 * their own fds, because a syncfs reports a writeback error once per open file, and the
 * covering sync on the job's fds must still see it. Not on tmpfs (nothing to write back)
 * nor network file systems (each sync is a commit on the servers: there the checkpoint
 * interval alone says how often). The addon also hands what it writes to writeback as it
 * goes (sync_file_range, which does not wait): large files and chunks every 8 MiB; these syncs then mostly wait for
 * that I/O and commit the journal.
 */
export class EarlyWriteback {
  private files = 0;
  private bytes = 0;
  private lastStart = 0;
  private lastCopied = 0;
  /** the syncs under way (one per fd), settled when all returned */
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  private constructor(private readonly native: NativeAddon, private readonly fds: number[], private readonly policy: EarlyPolicy) {}

  /** On the file systems of `fds` that are on a local disk (own fds); null when there is none. */
  static open(native: NativeAddon, fds: number[], policy: EarlyPolicy): EarlyWriteback | null {
    const own: number[] = [];
    for (const fd of fds) {
      try {
        if (onLocalDisk(fd)) own.push(openSync(`/proc/self/fd/${fd}`, C.O_RDONLY | C.O_DIRECTORY));
      } catch {
        // (no /proc: no early writeback; the covering syncs are the same)
      }
    }
    return own.length > 0 ? new EarlyWriteback(native, own, policy) : null;
  }

  copied(files: number, bytes: number): void {
    this.files += files;
    this.bytes += bytes;
    this.lastCopied = performance.now();
    this.maybeStart();
  }

  private maybeStart(): void {
    if (this.stopped || this.running || this.timer || (this.files === 0 && this.bytes === 0)) return;
    const due = this.files >= this.policy.files || this.bytes >= this.policy.bytes;
    // Less than that: written back once the copy went quiet (its last files, while the
    // phases after it run), unless a covering sync came first.
    const at = Math.max(this.lastStart + this.policy.gapMs, due ? 0 : this.lastCopied + this.policy.quietMs);
    const wait = at - performance.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.maybeStart();
      }, wait);
      this.timer.unref();
      return;
    }
    this.files = 0;
    this.bytes = 0;
    this.lastStart = performance.now();
    // Errors are the covering syncs' to report.
    this.running = Promise.all(this.fds.map((fd) => this.native.syncfs(fd).catch(() => {}))).then(() => {
      this.running = null;
      this.maybeStart(); // what was copied meanwhile
    });
  }

  /** A covering sync starts: it writes back what was counted so far. */
  covered(): void {
    this.files = 0;
    this.bytes = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** No more syncs; the fds are closed once a sync under way returned. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const close = () => { for (const fd of this.fds.splice(0)) closeSync(fd); };
    if (this.running) void this.running.then(close);
    else close();
  }
}
