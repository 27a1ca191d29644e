/**
 * A side whose operations cannot escape its roots (the addon).
 *
 * Users write to the trees during a copy, and fcp often runs as root: a directory of SRC
 * or DST swapped for a symlink between the walk and the copy must not make fcp read from
 * or write to anywhere else. A whole path opened with O_NOFOLLOW protects only its last
 * component, so every operation here names its entry by an **anchor** (a directory fd
 * opened once per root and rank, at job start) and a path relative to it, which the addon
 * resolves with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) (native/src/beneath.cc):
 * a symlink in any component is ELOOP ("changed during the copy", see errors.ts).
 *
 * The anchor of a root is the directory that holds it (the user-given path up to there is
 * trusted and followed), so a root itself swapped for a symlink is caught too, and a DST
 * root that does not exist yet is created beneath it. A root that already is a symlink
 * when the job starts (a DST given as a link to a directory, or `SRC/` with a trailing
 * slash) was meant to be followed: it is its own anchor.
 *
 * Callers keep their whole paths; the side maps each to its anchor.
 */
import { lstatSync, mkdirSync } from 'node:fs';
import { userMode } from '../util/umask.js';
import type { NativeAddon } from '../native/loader.js';
import { statOf, type EntryStat } from './entry-stat.js';
import type { Side } from './side.js';

const SLASH = 0x2f;

interface Anchor {
  /** the directory opened, as a whole path ('' for the working directory) */
  path: Buffer;
  /** -1 when it could not be opened: every operation beneath it fails with `error` */
  fd: number;
  error?: NodeJS.ErrnoException;
}

/** Strip trailing slashes (not the only one of '/'). */
function trimSlashes(p: Buffer): Buffer {
  let end = p.length;
  while (end > 1 && p[end - 1] === SLASH) end--;
  return p.subarray(0, end);
}

/**
 * The directory to anchor a root at: the one that holds it, or the root itself when it is
 * '/', ends in '.' or '..', or is (when followLink) a symlink now.
 */
function anchorPathOf(root: Buffer, followLink: boolean): Buffer {
  const t = trimSlashes(root);
  const i = t.lastIndexOf(SLASH);
  const base = t.subarray(i + 1);
  if (t.length === 1 && t[0] === SLASH) return t;
  if (base.equals(Buffer.from('.')) || base.equals(Buffer.from('..'))) return t;
  if (followLink) {
    try {
      if (lstatSync(t).isSymbolicLink()) return t;
    } catch {
      // missing: anchored at its parent, created beneath it
    }
  }
  if (i < 0) return Buffer.alloc(0);
  return i === 0 ? t.subarray(0, 1) : t.subarray(0, i);
}

/** Made by openSide (side.ts) when the addon is loaded. */
export class AnchoredSide implements Side {
  readonly safe = true;
  private readonly anchors: Anchor[] = [];

  /** See openSide for followLinkedRoots and createMissing. */
  constructor(private readonly native: NativeAddon, rootPaths: Buffer[], followLinkedRoots: (root: Buffer) => boolean, createMissing: boolean) {
    for (const root of rootPaths) {
      const path = anchorPathOf(root, followLinkedRoots(root));
      if (this.anchors.some((a) => a.path.equals(path))) continue;
      const dir = path.length ? path : Buffer.from('.');
      let fd = -1;
      let error: NodeJS.ErrnoException | undefined;
      try {
        try {
          fd = native.openAnchor(dir);
        } catch (e) {
          // Missing (a DST not created yet): a copy creates it; a dry run finds nothing there.
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !createMissing) throw e;
          mkdirSync(dir, { recursive: true, mode: userMode(0o777) });
          fd = native.openAnchor(dir);
        }
      } catch (e) {
        // Not fatal here: each entry below it fails with this error, as it would have.
        error = e as NodeJS.ErrnoException;
      }
      this.anchors.push({ path, fd, error });
    }
    // Longest first: the most specific anchor of a path wins.
    this.anchors.sort((a, b) => b.path.length - a.path.length);
  }

  close(): void {
    for (const a of this.anchors) if (a.fd >= 0) this.native.closeFd(a.fd);
    this.anchors.length = 0;
  }

  at(p: Buffer): { fd: number; rel: Buffer } {
    const { anchor: a, rel } = this.find(p);
    if (a.fd < 0) {
      const e = a.error;
      throw Object.assign(new Error(e?.message ?? 'ENOENT: no such file or directory'), { code: e?.code ?? 'ENOENT', errno: e?.errno ?? -2, syscall: e?.syscall ?? 'open', path: p });
    }
    let end = rel.length;
    while (end > 0 && rel[end - 1] === SLASH) end--;
    return { fd: a.fd, rel: end === rel.length ? rel : rel.subarray(0, end) };
  }

  private find(p: Buffer): { anchor: Anchor; rel: Buffer } {
    for (const a of this.anchors) {
      const n = a.path.length;
      if (n === 0) {
        if (p[0] !== SLASH) return { anchor: a, rel: p };
        continue;
      }
      if (p.length < n || p.compare(a.path, 0, n, 0, n) !== 0) continue;
      if (p.length === n) return { anchor: a, rel: Buffer.alloc(0) };
      if (a.path[n - 1] === SLASH) return { anchor: a, rel: p.subarray(n) };
      if (p[n] === SLASH) return { anchor: a, rel: p.subarray(n + 1) };
    }
    throw notBeneathAnyRoot(p);
  }

  async open(p: Buffer, flags: number, mode = 0): Promise<number> {
    const { fd, rel } = this.at(p);
    return this.native.openAt(fd, rel, flags, mode).catch((e) => { throw withPath(e, p); });
  }

  openSync(p: Buffer, flags: number): number {
    const { fd, rel } = this.at(p);
    try {
      return this.native.openAtSync(fd, rel, flags, 0);
    } catch (e) {
      throw withPath(e, p);
    }
  }

  async lstat(p: Buffer): Promise<EntryStat> {
    return statOf(await this.lstatRecord(p));
  }

  async cachedOwnerMode(p: Buffer): Promise<{ mode: number; uid: number; gid: number } | null> {
    const { fd, rel } = this.at(p);
    const r = await this.native.lstatAt(fd, rel, true).catch((e) => { throw withPath(e, p); });
    return { mode: r[1]!, uid: r[2]!, gid: r[3]! };
  }

  async lstatRecord(p: Buffer): Promise<Float64Array> {
    const { fd, rel } = this.at(p);
    return this.native.lstatAt(fd, rel).catch((e) => { throw withPath(e, p); });
  }

  async readlink(p: Buffer): Promise<Buffer> {
    const { fd, rel } = this.at(p);
    return this.native.readlinkAt(fd, rel).catch((e) => { throw withPath(e, p); });
  }

  async symlink(target: Buffer, p: Buffer): Promise<void> {
    const { fd, rel } = this.at(p);
    return this.native.symlinkAt(target, fd, rel).catch((e) => { throw withPath(e, p); });
  }

  async link(existing: Buffer, p: Buffer): Promise<void> {
    const a = this.at(existing);
    const b = this.at(p);
    return this.native.linkAt(a.fd, a.rel, b.fd, b.rel).catch((e) => { throw withPath(e, p); });
  }

  async rename(from: Buffer, to: Buffer): Promise<void> {
    const a = this.at(from);
    const b = this.at(to);
    return this.native.renameAt(a.fd, a.rel, b.fd, b.rel).catch((e) => { throw withPath(e, to); });
  }

  async unlink(p: Buffer): Promise<void> {
    const { fd, rel } = this.at(p);
    return this.native.unlinkAt(fd, rel, false).catch((e) => { throw withPath(e, p); });
  }

  async rmdir(p: Buffer): Promise<void> {
    const { fd, rel } = this.at(p);
    return this.native.unlinkAt(fd, rel, true).catch((e) => { throw withPath(e, p); });
  }

  async removeTree(p: Buffer): Promise<void> {
    const { fd, rel } = this.at(p);
    return this.native.removeTreeAt(fd, rel).catch((e) => { throw withPath(e, p); });
  }

  async mkdir(p: Buffer, mode: number, parents: boolean): Promise<void> {
    const { fd, rel } = this.at(p);
    return this.native.mkdirAt(fd, rel, mode, parents).catch((e) => { throw withPath(e, p); });
  }

  async mkfifo(p: Buffer, mode: number): Promise<void> {
    const { fd, rel } = this.at(p);
    return this.native.mkfifoAt(fd, rel, mode).catch((e) => { throw withPath(e, p); });
  }

  async chmod(p: Buffer, mode: number): Promise<void> {
    const { fd, rel } = this.at(p);
    return this.native.chmodAt(fd, rel, mode).catch((e) => { throw withPath(e, p); });
  }

  async lchown(p: Buffer, uid: number, gid: number): Promise<void> {
    const { fd, rel } = this.at(p);
    return this.native.chownAt(fd, rel, uid, gid).catch((e) => { throw withPath(e, p); });
  }

  async utimens(p: Buffer, atime: [number, number], mtime: [number, number]): Promise<void> {
    const { fd, rel } = this.at(p);
    return this.native.utimensAt(fd, rel, atime[0], atime[1], mtime[0], mtime[1]).catch((e) => { throw withPath(e, p); });
  }

  scanDir(p: Buffer, maxNames: number): Promise<{ names: Buffer; stats: Float64Array; fd: number }> {
    const { fd, rel } = this.at(p);
    return this.native.scanDir(fd, rel, maxNames);
  }

  statAt(dir: Buffer, names: Buffer[] | Buffer): Promise<Float64Array> {
    const { fd, rel } = this.at(dir);
    return this.native.statAt(fd, rel, names);
  }
}

/** EXDEV: a path that no anchor holds. */
function notBeneathAnyRoot(p: Buffer): Error {
  return Object.assign(new Error(`not beneath any root: ${p.toString()}`), { code: 'EXDEV' });
}

/** The whole path on an error (the addon's carry only the syscall). */
export function withPath(e: unknown, p: Buffer): unknown {
  if (e && typeof e === 'object' && (e as NodeJS.ErrnoException).path === undefined) (e as { path?: unknown }).path = p;
  return e;
}
