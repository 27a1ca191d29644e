/**
 * Copying byte ranges between open files.
 *
 * Paths through the code:
 *  - copy_file_range(2) via the native addon (no hash callback): data never enters user space.
 *  - read/write on a pooled buffer otherwise (and as fallback when copy_file_range is refused).
 *  - sparse: with the addon, SEEK_DATA/SEEK_HOLE skips holes; data read through user space is also
 *    scanned for all-zero 4 KiB blocks (aligned to file offsets), which are not written. Without the
 *    addon zero detection is the only hole detection. The destination must already read as zeros in
 *    the range (fresh file, ftruncate'd to its final size by the caller) so skipped blocks stay holes.
 *
 * Everything that can block is asynchronous (libuv thread pool); the synchronous parts are
 * lseek(SEEK_DATA/HOLE), posix_fadvise and in-memory zero scans of one buffer.
 */
import fs from 'node:fs';
import type { NativeAddon } from '../native/loader.js';
import { acquireBuffer, closeFd, fstatSize, ftruncateFd, isZero, openFd, readAt, releaseBuffer, writeAll, zeros } from './fd-io.js';

export interface RangeCopyOptions {
  native: NativeAddon | null;
  /**
   * Try copy_file_range (only when no onData callback). Falls back to read/write for the rest of
   * the range on EXDEV, EINVAL, ENOSYS, EOPNOTSUPP/ENOTSUP, EPERM, EBADF, ETXTBSY; EXDEV, EINVAL,
   * ENOSYS and EOPNOTSUPP also disable it for the rest of the process.
   */
  copyFileRange: boolean;
  /** Keep holes (see module comment). The destination must already have its final size. */
  sparse: boolean;
  /**
   * Called with every buffer read, in offset order, covering the whole range; holes and skipped
   * zero regions are fed as zero bytes. The buffer is reused after the callback returns: consume
   * it synchronously (or copy it) and do not modify it. Disables copy_file_range.
   */
  onData?: (buf: Buffer, offset: number) => void;
  /** read/write buffer size; default 4 MiB, rounded up to a multiple of 4 KiB. */
  bufferSize?: number;
}

export interface RangeCopyResult {
  /** bytes read from the source (or moved by copy_file_range); holes skipped via SEEK_DATA are not read */
  bytesRead: number;
  /** bytes written to the destination (or moved by copy_file_range) */
  bytesWritten: number;
  /** bytes of the range not written because they are holes or zero blocks: bytesWritten + holeBytes == length */
  holeBytes: number;
  /** copy_file_range moved at least one byte */
  usedCopyFileRange: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;
export const DEFAULT_BUFFER_SIZE = 4 * MiB;
/** Files up to this size are copied by copyWholeSmallFile with one read and one write. */
export const SMALL_FILE_MAX = 64 * KiB;
const BLOCK = 4 * KiB;
/** Ranges larger than this get POSIX_FADV_DONTNEED every DONTNEED_WINDOW bytes. */
const DONTNEED_WINDOW = 64 * MiB;
/** Feeding hole zeros to onData yields to the event loop this often. */
const YIELD_EVERY = 64 * MiB;
/** Bytes per copy_file_range call. */
const CFR_CHUNK = 64 * MiB;

const CFR_FALLBACK = new Set(['EXDEV', 'EINVAL', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP', 'EPERM', 'EBADF', 'ETXTBSY']);
const CFR_DISABLE = new Set(['EXDEV', 'EINVAL', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP']);
const SEEK_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

let cfrDisabledBy: string | null = null;

/** Why copy_file_range was disabled for this process (error code), or null. */
export function copyFileRangeDisabledReason(): string | null {
  return cfrDisabledBy;
}

/** Re-enable copy_file_range after a failure disabled it (tests). */
export function resetCopyFileRangeState(): void {
  cfrDisabledBy = null;
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

/** Error for a source that ended before the range did. */
export function shrunkError(expected: number, actual: number): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(
    `ESHRUNK: source file shrank during copy: expected at least ${expected} bytes, found ${actual}`,
  );
  e.code = 'ESHRUNK';
  return e;
}

async function shrunk(fd: number, expected: number): Promise<NodeJS.ErrnoException> {
  return shrunkError(expected, await fstatSize(fd));
}

function advise(native: NativeAddon | null, fd: number, off: number, len: number, how: 'sequential' | 'dontneed'): void {
  if (!native) return;
  try {
    native.fadvise(fd, off, len, how);
  } catch {
    /* advisory only */
  }
}

// ---------------------------------------------------------------------------
// copyRange
// ---------------------------------------------------------------------------

interface Ctx {
  srcFd: number;
  dstFd: number;
  opts: RangeCopyOptions;
  bufSize: number;
  buf: Buffer | null;
  res: RangeCopyResult;
  /** start of the window not yet given DONTNEED; -1 when the range is too small to bother */
  dnFrom: number;
}

/** POSIX_FADV_DONTNEED on the completed window once it reaches DONTNEED_WINDOW (or at the end). */
function progress(ctx: Ctx, pos: number, final = false): void {
  if (ctx.dnFrom < 0 || !ctx.opts.native) return;
  const len = pos - ctx.dnFrom;
  if (len <= 0 || (!final && len < DONTNEED_WINDOW)) return;
  advise(ctx.opts.native, ctx.srcFd, ctx.dnFrom, len, 'dontneed');
  advise(ctx.opts.native, ctx.dstFd, ctx.dnFrom, len, 'dontneed');
  ctx.dnFrom = pos;
}

/** Feed [from, to) as zeros to onData (holes), yielding to the event loop every 64 MiB. */
async function feedZeros(ctx: Ctx, from: number, to: number): Promise<void> {
  const onData = ctx.opts.onData;
  if (!onData) return;
  const z = zeros(ctx.bufSize);
  let sinceYield = 0;
  for (let pos = from; pos < to; ) {
    const n = Math.min(ctx.bufSize, to - pos);
    onData(z.subarray(0, n), pos);
    pos += n;
    sinceYield += n;
    if (sinceYield >= YIELD_EVERY && pos < to) {
      sinceYield = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

/** Write buf[0, len) at pos, skipping all-zero 4 KiB blocks (aligned to file offsets). */
async function writeSkippingZeros(ctx: Ctx, buf: Buffer, len: number, pos: number): Promise<void> {
  if (isZero(buf, 0, len)) {
    ctx.res.holeBytes += len;
    return;
  }
  let runStart = -1;
  let i = 0;
  while (i < len) {
    const blockEnd = Math.min(len, i + BLOCK - ((pos + i) % BLOCK));
    if (isZero(buf, i, blockEnd)) {
      if (runStart >= 0) {
        await writeAll(ctx.dstFd, buf, runStart, i - runStart, pos + runStart);
        ctx.res.bytesWritten += i - runStart;
        runStart = -1;
      }
      ctx.res.holeBytes += blockEnd - i;
    } else if (runStart < 0) {
      runStart = i;
    }
    i = blockEnd;
  }
  if (runStart >= 0) {
    await writeAll(ctx.dstFd, buf, runStart, len - runStart, pos + runStart);
    ctx.res.bytesWritten += len - runStart;
  }
}

/** read/write [from, to), which the source must contain. */
async function readWrite(ctx: Ctx, from: number, to: number): Promise<void> {
  const buf = (ctx.buf ??= acquireBuffer(ctx.bufSize));
  const { srcFd, dstFd, opts, res } = ctx;
  let pos = from;
  while (pos < to) {
    const n = await readAt(srcFd, buf, 0, Math.min(ctx.bufSize, to - pos), pos);
    if (n === 0) throw await shrunk(srcFd, to);
    res.bytesRead += n;
    opts.onData?.(buf.subarray(0, n), pos);
    if (opts.sparse) {
      await writeSkippingZeros(ctx, buf, n, pos);
    } else {
      await writeAll(dstFd, buf, 0, n, pos);
      res.bytesWritten += n;
    }
    pos += n;
    progress(ctx, pos);
  }
}

/** Copy [from, to), which the source must contain: copy_file_range when allowed, else read/write. */
async function copyData(ctx: Ctx, from: number, to: number, allowCfr = true): Promise<void> {
  const { opts, res } = ctx;
  const native = opts.native;
  let pos = from;
  if (allowCfr && native && opts.copyFileRange && !opts.onData && cfrDisabledBy === null) {
    while (pos < to) {
      let n: number;
      try {
        n = await native.copyFileRange(ctx.srcFd, pos, ctx.dstFd, pos, Math.min(CFR_CHUNK, to - pos));
      } catch (e) {
        const code = errCode(e);
        if (!code || !CFR_FALLBACK.has(code)) throw e;
        if (CFR_DISABLE.has(code)) cfrDisabledBy = code;
        break;
      }
      if (n === 0) {
        // EOF: the source shrank, or a file system that reports 0 instead of an error.
        const size = await fstatSize(ctx.srcFd);
        if (size < to) throw shrunkError(to, size);
        break;
      }
      res.bytesRead += n;
      res.bytesWritten += n;
      res.usedCopyFileRange = true;
      pos += n;
      progress(ctx, pos);
    }
  }
  if (pos < to) await readWrite(ctx, pos, to);
}

/** Sparse copy walking SEEK_DATA/SEEK_HOLE. Returns the offset where it stopped (< end when unsupported). */
async function copySeekingData(ctx: Ctx, native: NativeAddon, offset: number, end: number): Promise<number> {
  let pos = offset;
  while (pos < end) {
    let data: number;
    try {
      data = native.seekData(ctx.srcFd, pos);
    } catch (e) {
      if (SEEK_UNSUPPORTED.has(errCode(e) ?? '')) return pos;
      throw e;
    }
    if (data < 0) {
      // No data at or after pos: a trailing hole, or the file shrank below pos.
      const size = await fstatSize(ctx.srcFd);
      if (size < end) throw shrunkError(end, size);
      data = end;
    }
    if (data > pos) {
      const holeEnd = Math.min(data, end);
      await feedZeros(ctx, pos, holeEnd);
      ctx.res.holeBytes += holeEnd - pos;
      pos = holeEnd;
      progress(ctx, pos);
      if (pos >= end) break;
    }
    let hole: number;
    try {
      hole = native.seekHole(ctx.srcFd, pos);
    } catch (e) {
      if (SEEK_UNSUPPORTED.has(errCode(e) ?? '')) return pos;
      throw e;
    }
    if (hole < 0) throw await shrunk(ctx.srcFd, end); // pos is beyond EOF now
    const dataEnd = Math.min(end, hole > pos ? hole : pos + ctx.bufSize);
    await copyData(ctx, pos, dataEnd);
    pos = dataEnd;
  }
  return pos;
}

/**
 * Copy [offset, offset+length) of srcFd to the same offsets of dstFd.
 * A source shorter than offset+length throws an Error with code 'ESHRUNK'.
 */
export async function copyRange(
  srcFd: number,
  dstFd: number,
  offset: number,
  length: number,
  opts: RangeCopyOptions,
): Promise<RangeCopyResult> {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`copyRange: bad offset ${offset}`);
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`copyRange: bad length ${length}`);
  const res: RangeCopyResult = { bytesRead: 0, bytesWritten: 0, holeBytes: 0, usedCopyFileRange: false };
  if (length === 0) return res;
  const end = offset + length;
  const bufSize = Math.max(BLOCK, Math.ceil((opts.bufferSize ?? DEFAULT_BUFFER_SIZE) / BLOCK) * BLOCK);
  const ctx: Ctx = { srcFd, dstFd, opts, bufSize, buf: null, res, dnFrom: length > DONTNEED_WINDOW ? offset : -1 };
  const native = opts.native;
  advise(native, srcFd, offset, length, 'sequential');
  try {
    let pos = offset;
    if (opts.sparse && native) pos = await copySeekingData(ctx, native, offset, end);
    // Sparse without SEEK_DATA (no addon, or unsupported): read everything and skip zero blocks.
    if (pos < end) await copyData(ctx, pos, end, !opts.sparse);
    progress(ctx, end, true);
  } finally {
    if (ctx.buf) releaseBuffer(ctx.buf);
  }
  return res;
}

// ---------------------------------------------------------------------------
// Whole small files
// ---------------------------------------------------------------------------

/**
 * Copy a whole file of `size` bytes from src to dst (created or truncated, mode & 0o777 | 0o200;
 * the caller applies the real mode later). Neither path may be a symlink (O_NOFOLLOW on both).
 * Files up to SMALL_FILE_MAX are copied with one read and one write (a sparse all-zero small file
 * becomes a hole); larger ones go through copyRange (dst ftruncate'd to size first when sparse).
 */
export async function copyWholeSmallFile(
  src: Buffer,
  dst: Buffer,
  size: number,
  opts: RangeCopyOptions & {
    mode: number;
    /** How to open each side (io/beneath.ts: beneath the roots' anchors); default open(2) of the whole path. */
    open?: (side: 'src' | 'dst', path: Buffer, flags: number, mode?: number) => Promise<number>;
  },
): Promise<RangeCopyResult> {
  const { O_RDONLY, O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = fs.constants;
  const open = opts.open ?? ((_side: 'src' | 'dst', p: Buffer, flags: number, mode?: number) => openFd(p, flags, mode));
  const srcFd = await open('src', src, O_RDONLY | O_NOFOLLOW);
  let dstFd = -1;
  let result: RangeCopyResult | undefined;
  let failure: unknown;
  try {
    dstFd = await open('dst', dst, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, (opts.mode & 0o777) | 0o200);
    if (size <= SMALL_FILE_MAX) {
      result = await copySmall(srcFd, dstFd, size, opts);
    } else {
      if (opts.sparse) await ftruncateFd(dstFd, size);
      result = await copyRange(srcFd, dstFd, 0, size, opts);
    }
  } catch (e) {
    failure = e;
  }
  for (const fd of [dstFd, srcFd]) {
    if (fd < 0) continue;
    try {
      await closeFd(fd);
    } catch (e) {
      failure ??= e; // e.g. EIO/EDQUOT reported at close on NFS
    }
  }
  if (failure !== undefined) throw failure;
  return result!;
}

async function copySmall(srcFd: number, dstFd: number, size: number, opts: RangeCopyOptions): Promise<RangeCopyResult> {
  const res: RangeCopyResult = { bytesRead: 0, bytesWritten: 0, holeBytes: 0, usedCopyFileRange: false };
  if (size === 0) return res;
  const buf = acquireBuffer(SMALL_FILE_MAX);
  try {
    while (res.bytesRead < size) {
      const n = await readAt(srcFd, buf, res.bytesRead, size - res.bytesRead, res.bytesRead);
      if (n === 0) throw await shrunk(srcFd, size);
      res.bytesRead += n;
    }
    opts.onData?.(buf.subarray(0, size), 0);
    if (opts.sparse && isZero(buf, 0, size)) {
      await ftruncateFd(dstFd, size);
      res.holeBytes = size;
    } else {
      await writeAll(dstFd, buf, 0, size, 0);
      res.bytesWritten = size;
    }
  } finally {
    releaseBuffer(buf);
  }
  return res;
}
