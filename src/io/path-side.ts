/**
 * A side without the addon: node:fs by whole path. Only the last component is protected
 * (O_NOFOLLOW, lstat, rename and unlink act on the link itself), so a directory swapped
 * for a symlink during the copy can lead outside SRC or DST; as root fcp runs this way only
 * with --unsafe-paths (cli/fcp-validate.ts). What Node cannot do (mkfifo, times of a
 * symlink, the walk's batched directory reads) is ENOTSUP here; callers that have no
 * addon do not ask for it.
 */
import { promises as fsp, constants as C, open as openCb, openSync } from 'node:fs';
import { mkdirp } from '../util/mkdirp.js';
import { putStatRecord, STAT_RECORD_FIELDS } from '../model/entry.js';
import { statOf, type EntryStat } from './entry-stat.js';
import type { Side } from './side.js';

function needsAddon(what: string): Error {
  return Object.assign(new Error(`${what} needs the native addon`), { code: 'ENOTSUP' });
}

/** Made by openSide (side.ts) when the addon is not loaded. */
export class PathSide implements Side {
  readonly safe = false;

  close(): void {}

  /** No anchors: every path is beneath none (as an anchored side says of a path outside its roots). */
  at(p: Buffer): { fd: number; rel: Buffer } {
    throw Object.assign(new Error(`not beneath any root: ${p.toString()}`), { code: 'EXDEV' });
  }

  async open(p: Buffer, flags: number, mode = 0): Promise<number> {
    // A plain fd (a FileHandle would close it when collected).
    return new Promise((resolve, reject) => openCb(p, flags | C.O_NOFOLLOW, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
  }

  openSync(p: Buffer, flags: number): number {
    return openSync(p, flags | C.O_NOFOLLOW);
  }

  async lstat(p: Buffer): Promise<EntryStat> {
    return statOf(await this.lstatRecord(p));
  }

  /** The kernel's cached attributes need statx (the addon): callers ask the file system instead. */
  async cachedOwnerMode(_p: Buffer): Promise<null> {
    return null;
  }

  async lstatRecord(p: Buffer): Promise<Float64Array> {
    const a = new Float64Array(STAT_RECORD_FIELDS);
    putStatRecord(a, 0, await fsp.lstat(p, { bigint: true }));
    return a;
  }

  async readlink(p: Buffer): Promise<Buffer> {
    return fsp.readlink(p, { encoding: 'buffer' });
  }

  async symlink(target: Buffer, p: Buffer): Promise<void> {
    return fsp.symlink(target, p);
  }

  async link(existing: Buffer, p: Buffer): Promise<void> {
    return fsp.link(existing, p);
  }

  async rename(from: Buffer, to: Buffer): Promise<void> {
    return fsp.rename(from, to);
  }

  async unlink(p: Buffer): Promise<void> {
    return fsp.unlink(p);
  }

  async rmdir(p: Buffer): Promise<void> {
    return fsp.rmdir(p);
  }

  async removeTree(p: Buffer): Promise<void> {
    return fsp.rm(p, { recursive: true, force: true });
  }

  async mkdir(p: Buffer, mode: number, parents: boolean): Promise<void> {
    // mkdirp, not fs.mkdir({ recursive }): that one says ENOENT where the system said EROFS
    if (parents) await mkdirp(p, mode);
    else await fsp.mkdir(p, { mode });
  }

  async mkfifo(_p: Buffer, _mode: number): Promise<void> {
    throw needsAddon('mkfifo');
  }

  async chmod(p: Buffer, mode: number): Promise<void> {
    return fsp.chmod(p, mode);
  }

  async lchown(p: Buffer, uid: number, gid: number): Promise<void> {
    return fsp.lchown(p, uid, gid);
  }

  async utimens(_p: Buffer, _atime: [number, number], _mtime: [number, number]): Promise<void> {
    throw needsAddon('utimens');
  }

  async scanDir(_p: Buffer, _maxNames: number): Promise<{ names: Buffer; stats: Float64Array; fd: number }> {
    throw needsAddon('scanDir');
  }

  async statAt(_dir: Buffer, _names: Buffer[] | Buffer): Promise<Float64Array> {
    throw needsAddon('statAt');
  }
}
