/**
 * The data path's primitives (copy/data-copy.ts): pooled buffers, the shared zero buffer,
 * and promisified fd calls (the callback API: cheaper than FileHandle, works on raw fds).
 */
import fs from 'node:fs';

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------
// Buffer pool: concurrent copies each take their own buffer; a few are kept for reuse.
// ---------------------------------------------------------------------------

const POOL_MAX_BYTES = 64 * MiB;
const pool = new Map<number, Buffer[]>();
let pooledBytes = 0;

export function acquireBuffer(size: number): Buffer {
  const free = pool.get(size);
  const buf = free?.pop();
  if (buf) {
    pooledBytes -= size;
    return buf;
  }
  return Buffer.allocUnsafeSlow(size);
}

export function releaseBuffer(buf: Buffer): void {
  if (pooledBytes + buf.length > POOL_MAX_BYTES) return;
  let free = pool.get(buf.length);
  if (!free) pool.set(buf.length, (free = []));
  free.push(buf);
  pooledBytes += buf.length;
}

/** Shared all-zero buffer (never written to): zero checks and hole bytes for onData. */
let zeroBuf = Buffer.alloc(0);
export function zeros(size: number): Buffer {
  if (zeroBuf.length < size) zeroBuf = Buffer.alloc(Math.max(size, 4 * MiB)); // at least a default buffer (data-copy.ts)
  return zeroBuf;
}

export function isZero(buf: Buffer, start: number, end: number): boolean {
  return buf.compare(zeros(end - start), 0, end - start, start, end) === 0;
}

// ---------------------------------------------------------------------------
// Promisified fd primitives (callback API: cheaper than FileHandle, works on raw fds).
// ---------------------------------------------------------------------------

export function readAt(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

export function writeAt(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

export async function writeAll(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<void> {
  while (len > 0) {
    const n = await writeAt(fd, buf, off, len, pos);
    if (n <= 0) throw Object.assign(new Error('write returned 0'), { code: 'EIO', syscall: 'write' });
    off += n;
    pos += n;
    len -= n;
  }
}

export function fstatSize(fd: number): Promise<number> {
  return new Promise((resolve, reject) => fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st.size))));
}

export function openFd(path: Buffer, flags: number, mode?: number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

export function ftruncateFd(fd: number, len: number): Promise<void> {
  return new Promise((resolve, reject) => fs.ftruncate(fd, len, (err) => (err ? reject(err) : resolve())));
}
