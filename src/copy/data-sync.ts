/**
 * Making copied data durable before the checkpoint says it is done.
 *
 * A rank's checkpoint commits its "done" records only after a sync that started after
 * those records were buffered has returned (checkpoint/rank-store.ts), so after a node
 * crash or a client eviction a resume never skips a file whose data did not reach stable
 * storage. Three ways:
 *
 *  - syncfs (the addon): one syncfs(2) per destination file system per rank and interval,
 *    in the thread pool. It covers everything dirty there, data, inodes (mode, owner,
 *    times) and directory entries (creates, renames), in one call: on a local disk one
 *    journal commit instead of one per file. It also flushes what other processes of this
 *    node wrote to that file system (see README, "Durability"). On a local disk, small
 *    files are also written back early, by syncs that cover no record (early-writeback.ts).
 *  - fsync (no addon; Node has no syncfs): fsync of every file written since the last
 *    sync (data and the metadata set after it), then of their directories (their entries).
 *  - none (--no-sync): nothing is synced; a crash may leave files that --resume believes
 *    finished.
 */
import { promises as fsp, constants as C, fstatSync, openSync, closeSync, fdatasync, close } from 'node:fs';
import type { Side } from '../io/beneath.js';
import type { NativeAddon } from '../native/loader.js';
import type { Root } from '../model/entry.js';
import { forEachLimit } from '../util/for-each-limit.js';
import { EARLY_WRITEBACK, EarlyWriteback, type EarlyPolicy } from './early-writeback.js';
import { dirName } from '../model/paths.js';

export interface DataSync {
  readonly kind: 'syncfs' | 'fsync' | 'none';
  /** A file was written, or renamed into place, at this path (the fsync way syncs it and its directory). */
  wrote(path: Buffer): void;
  /** Small files just copied, and their bytes: the syncfs way starts writing them back early (EarlyWriteback). */
  copied(files: number, bytes: number): void;
  /**
   * Resolves once everything written before the call is on stable storage; rejects with
   * an error whose `path` names what could not be synced.
   */
  sync(): Promise<void>;
  close(): void;
}

/**
 * The DataSync for a job: none with --no-sync, else syncfs with the addon, fsync without.
 * `early`: when the syncfs way starts writing back early (null: never).
 */
export function makeDataSync(enabled: boolean, native: NativeAddon | null, roots: Root[], early: EarlyPolicy | null = EARLY_WRITEBACK): DataSync {
  if (!enabled) return NO_SYNC;
  return native ? new SyncfsDataSync(native, roots, early) : new FsyncDataSync();
}

export const NO_SYNC: DataSync = { kind: 'none', wrote() {}, copied() {}, sync: async () => {}, close() {} };

/** Files synced at once by the fsync way (each is a thread-pool job). */
const FSYNC_IN_FLIGHT = 8;

/**
 * One fd per destination file system (deduplicated by st_dev), opened when the job
 * starts, before anything is written: syncfs reports writeback errors seen since its fd
 * was opened. A root's own directory when it exists (it may be a mount point), else its
 * parent (where the copy will be created).
 */
class SyncfsDataSync implements DataSync {
  readonly kind = 'syncfs';
  private readonly fds: { fd: number; path: Buffer }[] = [];
  private openError: NodeJS.ErrnoException | null = null;
  private readonly early: EarlyWriteback | null;

  constructor(private readonly native: NativeAddon, roots: Root[], early: EarlyPolicy | null) {
    const devs = new Set<number>();
    for (const r of roots) {
      let fd = -1;
      let path = r.dst;
      for (const p of [r.dst, dirName(r.dst)]) {
        try {
          fd = openSync(p, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
          path = p;
          break;
        } catch (err) {
          // Not there yet, or not a directory: its parent is where it will be. Anything
          // else is remembered and fails the first sync (one line, then exit 1).
          const code = (err as NodeJS.ErrnoException).code;
          if (p !== r.dst || !['ENOENT', 'ENOTDIR', 'ELOOP'].includes(String(code))) {
            this.openError ??= Object.assign(err as NodeJS.ErrnoException, { path: p });
            break;
          }
        }
      }
      if (fd < 0) continue;
      const dev = fstatSync(fd).dev;
      if (devs.has(dev)) {
        closeSync(fd);
        continue;
      }
      devs.add(dev);
      this.fds.push({ fd, path });
    }
    this.early = early && !this.openError ? EarlyWriteback.open(native, this.fds.map((f) => f.fd), early) : null;
  }

  wrote(): void {}

  copied(files: number, bytes: number): void {
    this.early?.copied(files, bytes);
  }

  async sync(): Promise<void> {
    if (this.openError) throw this.openError;
    this.early?.covered();
    await Promise.all(this.fds.map(({ fd, path }) => this.native.syncfs(fd).catch((err: NodeJS.ErrnoException) => {
      throw Object.assign(err, { path });
    })));
  }

  close(): void {
    this.early?.stop();
    for (const { fd } of this.fds.splice(0)) closeSync(fd);
  }
}

/** Paths the fsync way keeps before it syncs them on its own (memory stays bounded without a checkpoint). */
const FSYNC_PENDING_MAX = 8192;

/** Without the addon: fsync what was written since the last sync, files first, then their directories. */
class FsyncDataSync implements DataSync {
  readonly kind = 'fsync';
  /** path as latin1 (a key that keeps every byte) -> path */
  private files = new Map<string, Buffer>();
  /** syncs started because too many paths were waiting; the next sync() awaits them and reports their error */
  private early: Promise<void> = Promise.resolve();
  private earlyError: Error | null = null;

  copied(): void {}

  wrote(path: Buffer): void {
    this.files.set(path.toString('latin1'), path);
    if (this.files.size >= FSYNC_PENDING_MAX) {
      const files = this.take();
      this.early = this.early.then(() => fsyncAll(files)).catch((err: Error) => {
        this.earlyError ??= err;
      });
    }
  }

  async sync(): Promise<void> {
    const files = this.take();
    await this.early;
    const err = this.earlyError;
    this.earlyError = null;
    if (err) throw err;
    await fsyncAll(files);
  }

  private take(): Buffer[] {
    const files = [...this.files.values()];
    this.files = new Map();
    return files;
  }

  close(): void {
    this.files.clear();
  }
}

async function fsyncAll(files: Buffer[]): Promise<void> {
  const dirs = new Map<string, Buffer>();
  for (const f of files) {
    const d = dirName(f);
    dirs.set(d.toString('latin1'), d);
  }
  await forEachLimit(files, FSYNC_IN_FLIGHT, (p) => fsyncPath(p, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK));
  await forEachLimit(dirs.values(), FSYNC_IN_FLIGHT, (p) => fsyncPath(p, C.O_RDONLY | C.O_DIRECTORY));
}

/**
 * fsync one path. Gone since (a part file renamed into place: its new name was recorded
 * too; or removed by someone else): nothing of ours left to sync there.
 */
async function fsyncPath(p: Buffer, flags: number): Promise<void> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(p, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    await fh.sync();
  } catch (err) {
    throw Object.assign(err as NodeJS.ErrnoException, { path: p });
  } finally {
    await fh.close().catch(() => {});
  }
}

/**
 * A large file's part file, before it is renamed into place: its data on stable storage
 * first, so the final name never shows a file whose content may still be lost (a later
 * --update trusts a file of the right size and mtime). The rename itself is covered by
 * the next sync, before the checkpoint records the file as done.
 */
export async function datasyncBeforeRename(sync: DataSync, dst: Side, part: Buffer): Promise<void> {
  if (sync.kind === 'none') return;
  const fd = await dst.open(part, C.O_RDONLY);
  try {
    await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(Object.assign(err, { path: part })) : resolve())));
  } finally {
    await new Promise<void>((resolve) => close(fd, () => resolve()));
  }
}
