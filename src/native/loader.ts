/**
 * Typed loader for the optional fcp_native addon (native/src/fcp_native.cc).
 *
 * The addon is optional: when it is missing, fails to load, or FCP_NO_NATIVE=1,
 * loadNative() returns null and callers use the pure-Node fallbacks.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FALLBACK_CONSTANTS, type NativeConstants } from './constants.js';
import { buildingSnapshot } from '../util/snapshot.js';

export interface NativeAddon {
  /** copy_file_range(2) with explicit offsets, run on the libuv thread pool. Resolves bytes copied (0 at EOF). */
  copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, len: number): Promise<number>;
  /** lseek(fd, off, SEEK_DATA). Returns -1 on ENXIO (no data at/after offset, or beyond EOF); throws on other errors (e.g. EINVAL when unsupported). */
  seekData(fd: number, offset: number): number;
  /** lseek(fd, off, SEEK_HOLE). Returns -1 on ENXIO (offset beyond EOF); throws on other errors. */
  seekHole(fd: number, offset: number): number;
  /** llistxattr: attribute names as raw bytes. Never follows symlinks. */
  listXattrs(path: Buffer): Buffer[];
  /** lgetxattr. Never follows symlinks. */
  getXattr(path: Buffer, name: Buffer): Buffer;
  /** lsetxattr (flags 0: create or replace). Never follows symlinks. */
  setXattr(path: Buffer, name: Buffer, value: Buffer): void;
  /** posix_fadvise. */
  fadvise(fd: number, offset: number, len: number, advice: FadviseAdvice): void;
  /** utimensat(AT_FDCWD, path, [atime, mtime], followSymlinks ? 0 : AT_SYMLINK_NOFOLLOW); nsec in [0, 1e9). */
  utimens(path: Buffer, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number, followSymlinks: boolean): void;
  /** mkfifo(path, mode) (mode & 0o7777, subject to umask). */
  mkfifo(path: Buffer, mode: number): void;
  /** syncfs(2) of the file system fd is on, in the thread pool: everything dirty there is on stable storage when it resolves. */
  syncfs(fd: number): Promise<void>;
  /** fallocate(fd, 0, 0, length): real blocks without writing them; throws EOPNOTSUPP where the file system cannot. */
  fallocate(fd: number, length: number): void;
  /**
   * Copy whole files in one thread-pool job (see native/src/batch.cc). roots holds one
   * [src, dst] pair per root, flattened; rels one path per file relative to its root
   * ('' for the root itself), joined to the root natively as joinPath does; nums
   * COPY_NUMS per file (root index, size, mode, uid, gid, atime s/ns, mtime s/ns, st_blocks
   * or -1 when unknown: holes are looked for only where blocks do not cover the size);
   * flags COPY_FLAGS. status has COPY_STATUS numbers per file: -errno (0 = ok; -1000
   * shrank, -1001 grew), the failing step (CopyOp), hole bytes.
   * With HASH the batch computes what checksum/ would, so JS does no per-file hashing:
   * digests holds each file's content digest (16 bytes big-endian, in file order; zeros
   * for files that failed or were up to date), entrySum the sum mod 2^128 of the entry
   * digests (kind 'f', no metadata, root index, rel) of the files copied (16 bytes
   * big-endian). Without HASH both are zeros.
   * cursor (optional, Int32Array(1) at 0): the worker moves it from i to i+1 before file
   * i, so cursor - 1 is the file it is on; swapping in -1 (Atomics.compareExchange) takes
   * the files not yet started away from it: they come back with -ECANCELED.
   * layout: the layout attribute's name (copy/layout.ts), never copied with the other
   * xattrs; with COPY_FLAGS.LAYOUT set on each new file before its first write (opened with
   * O_LOV_DELAY_CREATE): layoutErrors has -errno per file whose layout DST refused (the
   * file is still copied, with DST's default), else 0.
   */
  copyFiles(roots: Buffer[], rels: Buffer[], nums: Float64Array, flags: number, cursor?: Int32Array, layout?: Buffer): Promise<CopyFilesResult>;
  /** _exit(code): leave without waiting for thread-pool threads blocked in a hung file system. */
  exitNow(code: number): never;
  /**
   * The same beneath anchors (directory fds, src and dst of each root, see io/beneath.ts):
   * roots are then paths relative to the anchors, and each file is opened with openat2
   * beneath its anchor, never following a symlink in any component (no extra system call).
   */
  copyFiles(anchors: Int32Array, roots: Buffer[], rels: Buffer[], nums: Float64Array, flags: number, cursor?: Int32Array, layout?: Buffer): Promise<CopyFilesResult>;
  /**
   * Copy [off, off+len) of src into the existing dst (a part file) in the thread pool,
   * with copyFiles' flags (SPARSE, HASH): status [-errno, op, hole bytes]; with HASH
   * (off a multiple of LEAF) partial is the sum of the chunk's leaf terms, 16 bytes
   * big-endian (the file's digest is the sum of its chunks' partials and its size term).
   */
  copyChunk(src: Buffer, dst: Buffer, off: number, len: number, flags: number): Promise<{ status: Float64Array; partial: Buffer }>;
  /** The same with src and dst beneath anchors (directory fds). */
  copyChunk(srcAnchor: number, src: Buffer, dstAnchor: number, dst: Buffer, off: number, len: number, flags: number): Promise<{ status: Float64Array; partial: Buffer }>;
  /**
   * lstat each name relative to dir (opened O_NOFOLLOW): 15 numbers per name, see STAT_FIELDS.
   * names: Buffers, or one Buffer of NUL-terminated names (checkpoint/listing.ts packNames).
   */
  statAt(dir: Buffer, names: Buffer[] | Buffer): Promise<Float64Array>;
  /** The same with dir beneath an anchor ('' the anchor itself), no symlink followed on the way. */
  statAt(anchor: number, dir: Buffer, names: Buffer[] | Buffer): Promise<Float64Array>;
  /** The next names of an open directory fd (one getdents64 of up to bufBytes), NUL-separated; null at the end. */
  readNames(fd: number, bufBytes: number): Promise<Buffer | null>;
  /**
   * fsum's partial digest of [off, off+len) of a file (off a multiple of LEAF), read and
   * hashed in the thread pool: status [-errno, op (COPY_OPS; -1000 with op 11: it shrank)],
   * partial the sum of the range's leaf terms, 16 bytes big-endian.
   */
  hashRange(path: Buffer, off: number, len: number): Promise<{ status: Float64Array; partial: Buffer }>;
  /** The same with the file beneath an anchor (a directory fd). */
  hashRange(anchor: number, path: Buffer, off: number, len: number): Promise<{ status: Float64Array; partial: Buffer }>;
  /**
   * fsum's content digests of whole files, in one thread-pool job: per file an anchor (a
   * directory fd; -1: the path is whole), a path and the size the walk saw. status: 2 per
   * file [-errno, op] as hashRange's; digests: 16 per file (sizeTerm + leaf terms), zeros
   * where the file failed.
   */
  hashFiles(anchors: Int32Array, paths: Buffer[], sizes: Float64Array): Promise<{ status: Float64Array; digests: Buffer }>;
  /**
   * The same, and entries: 16 per file, its entry digest without --meta (checksum/entry-digest.ts)
   * from its root index in the signature and its path relative to that root; zeros where it failed.
   */
  hashFiles(anchors: Int32Array, paths: Buffer[], sizes: Float64Array, digestRoots: Int32Array, rels: Buffer[]): Promise<{ status: Float64Array; digests: Buffer; entries: Buffer }>;
  /**
   * Open a directory (O_NOFOLLOW), read whole getdents64 batches until at least maxNames
   * names or the end, and lstat them, in one thread-pool job: names NUL-separated, stats
   * STAT_FIELDS per name (as statAt). fd is -1 when the directory was read to the end;
   * else it is open after the returned names (continue with readNames, then close it).
   */
  scanDir(dir: Buffer, maxNames: number): Promise<{ names: Buffer; stats: Float64Array; fd: number }>;
  /** The same with dir beneath an anchor, no symlink followed on the way. */
  scanDir(anchor: number, dir: Buffer, maxNames: number): Promise<{ names: Buffer; stats: Float64Array; fd: number }>;
  // ----- beneath an anchor (native/src/beneath.cc): rel never leaves the anchor and no
  // symlink is followed in any component; a symlink on the way is ELOOP. Thread pool. -----
  /** Open a trusted root directory (followed) as an anchor: an O_PATH directory fd. */
  openAnchor(path: Buffer): number;
  closeFd(fd: number): void;
  /** openat2(anchor, rel, flags | O_NOFOLLOW | O_CLOEXEC, mode, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS). */
  openAt(anchor: number, rel: Buffer, flags: number, mode: number): Promise<number>;
  /** openAt on the calling thread. */
  openAtSync(anchor: number, rel: Buffer, flags: number, mode: number): number;
  /** lstat: STAT_FIELDS numbers (the first 0). cached: what the kernel holds, no request (statx AT_STATX_DONT_SYNC). */
  lstatAt(anchor: number, rel: Buffer, cached?: boolean): Promise<Float64Array>;
  readlinkAt(anchor: number, rel: Buffer): Promise<Buffer>;
  symlinkAt(target: Buffer, anchor: number, rel: Buffer): Promise<void>;
  /** A hard link to the entry itself (linkat without AT_SYMLINK_FOLLOW). */
  linkAt(anchor: number, rel: Buffer, newAnchor: number, newRel: Buffer): Promise<void>;
  renameAt(anchor: number, rel: Buffer, newAnchor: number, newRel: Buffer): Promise<void>;
  unlinkAt(anchor: number, rel: Buffer, dir: boolean): Promise<void>;
  /** Remove an entry and, a directory, everything in it (never following a symlink). */
  removeTreeAt(anchor: number, rel: Buffer): Promise<void>;
  /** mkdirat; parents: missing parents are created and an existing directory is fine. */
  mkdirAt(anchor: number, rel: Buffer, mode: number, parents: boolean): Promise<void>;
  mkfifoAt(anchor: number, rel: Buffer, mode: number): Promise<void>;
  /** fchmodat2(AT_SYMLINK_NOFOLLOW), or on older kernels chmod through an O_PATH fd (a symlink: EOPNOTSUPP). */
  chmodAt(anchor: number, rel: Buffer, mode: number): Promise<void>;
  chownAt(anchor: number, rel: Buffer, uid: number, gid: number): Promise<void>;
  /** utimensat(AT_SYMLINK_NOFOLLOW). */
  utimensAt(anchor: number, rel: Buffer, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): Promise<void>;
  /**
   * Copy extended attributes (user.* must succeed, others best effort; none of user.* for
   * symlinks). Layout attributes (lustre.lov, trusted.lov, and `layout`) are left out.
   */
  copyXattrsAt(srcAnchor: number, srcRel: Buffer, dstAnchor: number, dstRel: Buffer, symlink: boolean, layout?: Buffer): Promise<void>;
  /**
   * Set the source's layout attribute `layout` on dst (a new, empty file or a new directory:
   * see copy/layout.ts). 1 when set, 0 when the source has none.
   */
  copyLayoutAt(srcAnchor: number, srcRel: Buffer, dstAnchor: number, dstRel: Buffer, layout: Buffer): Promise<number>;
  /** Test hook: resolve by a walk of openat(O_NOFOLLOW) instead of openat2 (true), back (false); says which is in use. */
  resolveMode(walk?: boolean): 'openat2' | 'walk';
  /** XXH64 of data (same output as xxhash-wasm's h64). */
  xxh64(data: Uint8Array, seed?: number): bigint;
  /** SHA-256 of data (the addon's own, behind its digests; exported for tests). */
  sha256(data: Uint8Array): Buffer;
  /** The numbers shared with the TypeScript (native/src/constants.h), frozen. */
  constants: NativeConstants;
}

export type FadviseAdvice = 'normal' | 'sequential' | 'random' | 'willneed' | 'dontneed' | 'noreuse';

const EXPORTS: ReadonlyArray<keyof NativeAddon> = [
  'copyFileRange',
  'seekData',
  'seekHole',
  'listXattrs',
  'getXattr',
  'setXattr',
  'fadvise',
  'utimens',
  'mkfifo',
  'copyFiles',
  'statAt',
  'xxh64',
  'readNames',
  'copyChunk',
  'hashRange',
  'hashFiles',
  'scanDir',
  'sha256',
  'openAnchor',
  'closeFd',
  'openAt',
  'openAtSync',
  'lstatAt',
  'readlinkAt',
  'symlinkAt',
  'linkAt',
  'renameAt',
  'unlinkAt',
  'removeTreeAt',
  'mkdirAt',
  'mkfifoAt',
  'chmodAt',
  'chownAt',
  'utimensAt',
  'copyXattrsAt',
  'copyLayoutAt',
  'resolveMode',
  'syncfs',
  'fallocate',
];

/** dist/native/loader.js (and src/native/loader.ts under vitest) → <root>/native/build/Release/fcp_native.node */
export const NATIVE_ADDON_PATH = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'native',
  'build',
  'Release',
  'fcp_native.node',
);

let cached: { addon: NativeAddon | null; error: string | null } | undefined;

/**
 * The addon, or null when FCP_NO_NATIVE=1 or it is missing / fails to load.
 * The result is cached; `{ reload: true }` re-reads the environment (for tests).
 */
export function loadNative(opts?: { reload?: boolean }): NativeAddon | null {
  if (cached && !opts?.reload) return cached.addon;
  cached = tryLoad();
  return cached.addon;
}

/** Why loadNative() returned null (null when it loaded). */
export function nativeLoadError(): string | null {
  loadNative();
  return cached!.error;
}

function tryLoad(): { addon: NativeAddon | null; error: string | null } {
  const env = process.env.FCP_NO_NATIVE;
  if (env !== undefined && env !== '' && env !== '0') return { addon: null, error: 'disabled by FCP_NO_NATIVE' };
  if (!fs.existsSync(NATIVE_ADDON_PATH)) return { addon: null, error: `${NATIVE_ADDON_PATH} not found` };
  try {
    const req = createRequire(import.meta.url);
    const addon = req(NATIVE_ADDON_PATH) as Partial<NativeAddon>;
    const missing = EXPORTS.filter((k) => typeof addon[k] !== 'function');
    if (typeof addon.constants !== 'object' || addon.constants === null) missing.push('constants');
    if (missing.length) return { addon: null, error: `addon lacks ${missing.join(', ')} (stale build?)` };
    return { addon: addon as NativeAddon, error: null };
  } catch (e) {
    return { addon: null, error: `failed to load ${NATIVE_ADDON_PATH}: ${(e as Error).message.split('\n')[0]}` };
  }
}

/**
 * What the pure-Node fallback cannot do, for a one-time notice. Empty when the
 * addon is loaded.
 */
export function nativeSkips(): string[] {
  if (loadNative()) return [];
  return [
    'holes detected by reading zeros (no SEEK_DATA/SEEK_HOLE)',
    'no extended attributes (xattrs, ACLs, capabilities) copied',
    'timestamps rounded to ~1 µs (no utimensat with nanoseconds)',
    'no copy_file_range (all data goes through user space)',
    'no posix_fadvise page cache hints',
    'no named pipes (mkfifo)',
  ];
}

/**
 * The numbers shared with the addon, read from its table when it loads (the addon is
 * loaded here, once: every tool loads it anyway); without it, the fallback's checked copy.
 * A startup snapshot is built without the addon (it cannot hold one): there the fallback's
 * copy, and the ranks started from it check it against the addon's (snapshotConstantsDiffer).
 */
export const NATIVE_CONSTANTS: NativeConstants = buildingSnapshot() ? FALLBACK_CONSTANTS : loadNative()?.constants ?? FALLBACK_CONSTANTS;

/**
 * In a rank started from a startup snapshot: why its constants (the fallback's copy) are
 * not the loaded addon's, or null when they are the same (as test/unit/native-constants
 * checks) or there is no addon.
 */
export function snapshotConstantsDiffer(): string | null {
  const addon = loadNative()?.constants;
  // Key order may differ between the addon's object and ours: compare with keys sorted.
  const canon = (v: unknown): string => (typeof v === 'object' && v !== null
    ? `{${Object.keys(v).sort().map((k) => `${k}:${canon((v as Record<string, unknown>)[k])}`).join(',')}}`
    : String(v));
  if (!addon || canon(addon) === canon(NATIVE_CONSTANTS)) return null;
  return 'the startup snapshot was built with other constants than the native addon has (rebuild: npm run build)';
}
const K = NATIVE_CONSTANTS;

/**
 * WRITEBACK: start writing data back as it is written (sync_file_range, every 8 MiB and at the
 * end), so the checkpoint's syncfs waits less (files of 1 MiB or more, chunks).
 */
export const COPY_FLAGS = K.copyFlags;

export interface CopyFilesResult { status: Float64Array; digests: Buffer; entrySum: Buffer; layoutErrors: Float64Array }
/** copyFiles' numbers per file (root, size, mode, uid, gid, atime s/ns, mtime s/ns, blocks) and status fields per file (-errno, op, hole bytes). */
export const COPY_NUMS = K.copyNums;
export const COPY_STATUS = K.copyStatus;
/** copyFiles' op when --update found the destination up to date (nothing read or written). */
export const OP_UP_TO_DATE = K.ops.UP_TO_DATE;
/** copyFiles' op, with COPY_FLAGS.REPORT and no error, when the file replaced an existing one in DST (--report's '*'). */
export const OP_REPLACED = K.ops.REPLACED;
/** Failing step reported by copyFiles, by op: the verb of the message ("cannot read 'PATH'"). */
export const COPY_OPS: readonly string[] = (() => {
  const verbs: Partial<Record<keyof NativeConstants['ops'], string>> = {
    NONE: '', OPEN_SRC: 'open', OPEN_DST: 'open', READ: 'read', WRITE: 'write', TRUNCATE: 'truncate', CHOWN: 'chown',
    XATTR: 'set xattrs of', CHMOD: 'chmod', UTIMES: 'set times of', CLOSE: 'close', CHANGED: 'copy',
  };
  const out: string[] = [];
  for (const [name, verb] of Object.entries(verbs)) out[K.ops[name as keyof NativeConstants['ops']]] = verb;
  return Array.from(out, (v) => v ?? '');
})();
/** Steps whose error is about the source path (else the destination). */
export const COPY_OP_ON_SOURCE: ReadonlySet<number> = new Set([K.ops.OPEN_SRC, K.ops.READ, K.ops.CHANGED]);
/** Numbers per name of statAt and scanDir (layout: model/entry.ts STAT_RECORD_FIELDS). */
export const STAT_FIELDS = K.statFields;
/** fcp's own errnos in a native status: the file shrank / grew while it was read. */
export const ERR_SHRANK = K.errnos.SHRANK;
export const ERR_GREW = K.errnos.GREW;
