/**
 * File operations on SRC and DST that cannot escape them.
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
 * Callers keep their whole paths (root + '/' + rel, as copy-task's srcOf/dstOf build
 * them, for messages); a Side maps each to its anchor. Without the addon the same calls
 * go to node:fs by whole path: only the last component is protected (see fcp.ts
 * --unsafe-paths).
 */
import { mkdirp } from '../util/mkdirp.js';
import { userMode } from '../util/umask.js';
import { promises as fsp, constants as C, lstatSync, mkdirSync, open as openCb, openSync, type BigIntStats } from 'node:fs';
import type { NativeAddon } from '../native/loader.js';
import { putStatRecord, STAT_RECORD_FIELDS, type Root } from '../model/entry.js';

const SLASH = 0x2f;

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

function statOf(rec: Float64Array): EntryStat {
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

function statOfNode(st: BigIntStats): EntryStat {
  const a = new Float64Array(STAT_RECORD_FIELDS);
  putStatRecord(a, 0, st);
  return statOf(a);
}

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

/** One side (all SRC roots, or all DST roots) of a job. */
export class Side {
  private readonly anchors: Anchor[] = [];

  /**
   * createMissing: an anchor directory that does not exist is created first (with its
   * parents, as `mkdir -p` of the path the user gave: the DST roots' parents of a copy).
   */
  constructor(private readonly native: NativeAddon | null, rootPaths: Buffer[], followLinkedRoots: (root: Buffer) => boolean, createMissing = false) {
    if (!native) return;
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

  /** True when operations resolve beneath anchors (the addon is there). */
  get safe(): boolean {
    return this.native !== null;
  }

  close(): void {
    for (const a of this.anchors) if (a.fd >= 0) this.native?.closeFd(a.fd);
    this.anchors.length = 0;
  }

  /** The anchor of a whole path and the path relative to it (without trailing slashes). */
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
    throw Object.assign(new Error(`not beneath any root: ${p.toString()}`), { code: 'EXDEV' });
  }

  /** An fd for reading or writing (flags as open(2); O_NOFOLLOW is always added). Close it with fs.close. */
  async open(p: Buffer, flags: number, mode = 0): Promise<number> {
    if (!this.native) {
      // A plain fd (a FileHandle would close it when collected).
      return new Promise((resolve, reject) => openCb(p, flags | C.O_NOFOLLOW, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
    }
    const { fd, rel } = this.at(p);
    return this.native.openAt(fd, rel, flags, mode).catch((e) => { throw withPath(e, p); });
  }

  /** open on the calling thread. */
  openSync(p: Buffer, flags: number): number {
    if (!this.native) return openSync(p, flags | C.O_NOFOLLOW);
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

  /**
   * The owner and mode the kernel already holds for `p`, without asking the file system
   * (statx AT_STATX_DONT_SYNC): on a parallel file system a getattr is a round trip, and
   * FUSE marks a directory's attributes stale after each create in it although its owner
   * and mode did not change. Resolving the path may still look its names up (those
   * lookups the next operation on `p` needs anyway). null without the addon.
   */
  async cachedOwnerMode(p: Buffer): Promise<{ mode: number; uid: number; gid: number } | null> {
    if (!this.native) return null;
    const { fd, rel } = this.at(p);
    const r = await this.native.lstatAt(fd, rel, true).catch((e) => { throw withPath(e, p); });
    return { mode: r[1]!, uid: r[2]!, gid: r[3]! };
  }

  /** lstat as a walk stat record (model/entry.ts layout). */
  async lstatRecord(p: Buffer): Promise<Float64Array> {
    if (!this.native) {
      const a = new Float64Array(STAT_RECORD_FIELDS);
      putStatRecord(a, 0, await fsp.lstat(p, { bigint: true }));
      return a;
    }
    const { fd, rel } = this.at(p);
    return this.native.lstatAt(fd, rel).catch((e) => { throw withPath(e, p); });
  }

  async readlink(p: Buffer): Promise<Buffer> {
    if (!this.native) return fsp.readlink(p, { encoding: 'buffer' });
    const { fd, rel } = this.at(p);
    return this.native.readlinkAt(fd, rel).catch((e) => { throw withPath(e, p); });
  }

  async symlink(target: Buffer, p: Buffer): Promise<void> {
    if (!this.native) return fsp.symlink(target, p);
    const { fd, rel } = this.at(p);
    return this.native.symlinkAt(target, fd, rel).catch((e) => { throw withPath(e, p); });
  }

  /** A hard link `p` to the entry `existing` (both on this side). */
  async link(existing: Buffer, p: Buffer): Promise<void> {
    if (!this.native) return fsp.link(existing, p);
    const a = this.at(existing);
    const b = this.at(p);
    return this.native.linkAt(a.fd, a.rel, b.fd, b.rel).catch((e) => { throw withPath(e, p); });
  }

  async rename(from: Buffer, to: Buffer): Promise<void> {
    if (!this.native) return fsp.rename(from, to);
    const a = this.at(from);
    const b = this.at(to);
    return this.native.renameAt(a.fd, a.rel, b.fd, b.rel).catch((e) => { throw withPath(e, to); });
  }

  async unlink(p: Buffer): Promise<void> {
    if (!this.native) return fsp.unlink(p);
    const { fd, rel } = this.at(p);
    return this.native.unlinkAt(fd, rel, false).catch((e) => { throw withPath(e, p); });
  }

  /** rmdir: an empty directory only (what --delete counted; ENOTEMPTY when it holds more). */
  async rmdir(p: Buffer): Promise<void> {
    if (!this.native) return fsp.rmdir(p);
    const { fd, rel } = this.at(p);
    return this.native.unlinkAt(fd, rel, true).catch((e) => { throw withPath(e, p); });
  }

  /** rm -rf of one entry; a missing one is fine. */
  async removeTree(p: Buffer): Promise<void> {
    if (!this.native) return fsp.rm(p, { recursive: true, force: true });
    const { fd, rel } = this.at(p);
    return this.native.removeTreeAt(fd, rel).catch((e) => { throw withPath(e, p); });
  }

  /** mkdir; parents: create missing parents, and an existing directory is fine. */
  async mkdir(p: Buffer, mode: number, parents: boolean): Promise<void> {
    if (!this.native) {
      // mkdirp, not fs.mkdir({ recursive }): that one says ENOENT where the system said EROFS
      if (parents) await mkdirp(p, mode);
      else await fsp.mkdir(p, { mode });
      return;
    }
    const { fd, rel } = this.at(p);
    return this.native.mkdirAt(fd, rel, mode, parents).catch((e) => { throw withPath(e, p); });
  }

  /** Needs the addon (Node has no mkfifo). */
  async mkfifo(p: Buffer, mode: number): Promise<void> {
    if (!this.native) throw Object.assign(new Error('mkfifo needs the native addon'), { code: 'ENOTSUP' });
    const { fd, rel } = this.at(p);
    return this.native.mkfifoAt(fd, rel, mode).catch((e) => { throw withPath(e, p); });
  }

  /** chmod, never through a symlink. */
  async chmod(p: Buffer, mode: number): Promise<void> {
    if (!this.native) return fsp.chmod(p, mode);
    const { fd, rel } = this.at(p);
    return this.native.chmodAt(fd, rel, mode).catch((e) => { throw withPath(e, p); });
  }

  async lchown(p: Buffer, uid: number, gid: number): Promise<void> {
    if (!this.native) return fsp.lchown(p, uid, gid);
    const { fd, rel } = this.at(p);
    return this.native.chownAt(fd, rel, uid, gid).catch((e) => { throw withPath(e, p); });
  }

  /** Times in ns, never through a symlink (a symlink gets its own). Addon only. */
  async utimens(p: Buffer, atime: [number, number], mtime: [number, number]): Promise<void> {
    const { fd, rel } = this.at(p);
    return this.native!.utimensAt(fd, rel, atime[0], atime[1], mtime[0], mtime[1]).catch((e) => { throw withPath(e, p); });
  }

  /** Directory reads for the walk (addon only): see NativeAddon.scanDir and statAt. */
  scanDir(p: Buffer, maxNames: number): Promise<{ names: Buffer; stats: Float64Array; fd: number }> {
    const { fd, rel } = this.at(p);
    return this.native!.scanDir(fd, rel, maxNames);
  }

  statAt(dir: Buffer, names: Buffer[] | Buffer): Promise<Float64Array> {
    const { fd, rel } = this.at(dir);
    return this.native!.statAt(fd, rel, names);
  }
}

/** Copy extended attributes from src (on side s) to dst (on side d), addon only; layout attributes left out (copy/layout.ts). */
export async function copyXattrsBeneath(native: NativeAddon, s: Side, src: Buffer, d: Side, dst: Buffer, symlink: boolean, layout?: Buffer): Promise<void> {
  const a = s.at(src);
  const b = d.at(dst);
  return native.copyXattrsAt(a.fd, a.rel, b.fd, b.rel, symlink, layout).catch((e) => {
    throw withPath(e, (e as NodeJS.ErrnoException).syscall === 'openat2 source' ? src : dst);
  });
}

/**
 * Give dst (on side d: a new, empty file or a new directory) the layout attribute `layout`
 * of src (on side s), addon only: true when set, false when src has none.
 */
export async function copyLayoutBeneath(native: NativeAddon, s: Side, src: Buffer, d: Side, dst: Buffer, layout: Buffer): Promise<boolean> {
  const a = s.at(src);
  const b = d.at(dst);
  return native.copyLayoutAt(a.fd, a.rel, b.fd, b.rel, layout).then((set) => set === 1, (e) => {
    throw withPath(e, String((e as NodeJS.ErrnoException).syscall).endsWith(' source') ? src : dst);
  });
}

/** Both sides of a job's roots, opened once per rank. */
export class Trees {
  readonly src: Side;
  readonly dst: Side;

  /** createDst: create DST roots' missing parent directories (a copy; not a dry run). */
  constructor(readonly native: NativeAddon | null, roots: Root[], createDst = false) {
    const srcRoots = roots.map((r) => r.src);
    // SRC: a root given with a trailing slash is followed (as lstat("link/") does); a DST
    // root that is a symlink when the job starts was meant as the place to copy to.
    this.src = new Side(native, srcRoots, (root) => root.length > 1 && root[root.length - 1] === SLASH);
    try {
      this.dst = new Side(native, roots.map((r) => r.dst), () => true, createDst);
    } catch (e) {
      this.src.close();
      throw e;
    }
  }

  /** The anchors of roots[i] joined with prefixes, for copyFiles: [srcFd, dstFd, ...] and [srcRel, dstRel, ...]. */
  copyFilesRoots(roots: Root[]): { anchors: Int32Array; rels: Buffer[] } {
    const anchors = new Int32Array(roots.length * 2);
    const rels: Buffer[] = [];
    roots.forEach((r, i) => {
      const s = this.src.at(r.src);
      const d = this.dst.at(r.dst);
      anchors[2 * i] = s.fd;
      anchors[2 * i + 1] = d.fd;
      rels.push(s.rel, d.rel);
    });
    return { anchors, rels };
  }

  close(): void {
    this.src.close();
    this.dst.close();
  }
}

/** The whole path on an error (the addon's carry only the syscall). */
function withPath(e: unknown, p: Buffer): unknown {
  if (e && typeof e === 'object' && (e as NodeJS.ErrnoException).path === undefined) (e as { path?: unknown }).path = p;
  return e;
}
