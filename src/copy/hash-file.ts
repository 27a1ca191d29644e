import { constants as C, close as closeCb } from 'node:fs';
import { fileDigest } from '../checksum/hasher.js';
import { hashRange } from '../checksum/sum-task.js';
import type { Side } from '../io/beneath.js';

const closeFd = (fd: number) => new Promise<void>((resolve) => closeCb(fd, () => resolve()));

/** Content digest of a whole file on one side (for --update=checksum). */
export async function hashFile(side: Side, path: Buffer, size: number): Promise<bigint> {
  const fd = await side.open(path, C.O_RDONLY);
  try {
    return fileDigest([await hashRange(fd, 0, size, Buffer.allocUnsafe(Math.min(4 << 20, Math.max(size, 1))))], size);
  } finally {
    await closeFd(fd);
  }
}
