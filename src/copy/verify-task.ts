/**
 * --verify: re-read the destination and compare it with the digests of what the copy
 * read from the source. Items are the copy's own records (a whole file, or one chunk of
 * a large file); a rank verifies what another rank wrote, so one rank's bug or bad
 * memory does not check itself. Every mismatch is named with its file and byte range.
 */
import { constants as C, close as closeCb, read as readCb, write as writeCb } from 'node:fs';
import type { Side } from '../io/beneath.js';
import type { Task } from '../engine/task.js';
import type { EntryErrors } from '../errors.js';
import type { DoneWork } from '../checkpoint/verifiable.js';
import { ChunkHasher, fileDigest, toHex } from '../checksum/hasher.js';
import type { Root } from '../model/entry.js';
import { joinPath, showPath } from '../model/paths.js';

export interface VerifyItem { r: number; p: Buffer; o: number; l: number; s: number; d: string }

export interface VerifyContext {
  roots: Root[];
  /** DST beneath its roots' anchors (beneath.ts) */
  dst: Side;
  errors: EntryErrors;
  /** the records to verify on this rank (read lazily) */
  rows: () => Iterable<DoneWork>;
  /** whose work these are (for messages) */
  writer: number;
}

const BUF = 4 * 1024 * 1024;

export function verifyTask(v: VerifyContext): Task<VerifyItem> {
  return {
    name: 'verify',
    concurrency: 4,
    stealable: false,
    seed() {},
    *source() {
      for (const row of v.rows()) {
        const whole = row.off < 0;
        yield { r: row.root, p: row.path, o: whole ? 0 : row.off, l: whole ? row.size : row.len, s: whole ? -1 : row.size, d: row.digest! };
      }
    },
    async process(item, ctx) {
      const dst = joinPath(v.roots[item.r]!.dst, item.p);
      const h = new ChunkHasher(item.o);
      let fd = -1;
      try {
        fd = await v.dst.open(dst, C.O_RDONLY);
        const buf = Buffer.allocUnsafe(Math.min(BUF, Math.max(item.l, 1)));
        for (let at = item.o; at < item.o + item.l; ) {
          const bytesRead = await readAt(fd, buf, Math.min(buf.length, item.o + item.l - at), at);
          if (bytesRead === 0) throw Object.assign(new Error('shorter than the source'), { code: 'ESHRUNK' });
          h.update(buf.subarray(0, bytesRead), at);
          at += bytesRead;
        }
      } catch (err) {
        v.errors.report('verify', dst, err);
        ctx.count('mismatches');
        return;
      } finally {
        if (fd >= 0) await closeFd(fd);
      }
      // A whole file's record holds its content digest; a chunk's, the chunk's partial.
      const got = toHex(item.s < 0 ? fileDigest([h.digest()], item.l) : h.digest());
      ctx.count('verified', item.l);
      if (got !== item.d) {
        ctx.count('mismatches');
        process.stderr.write(`fcp: verify: '${showPath(dst)}' bytes ${item.o}-${item.o + item.l - 1} differ from what was read from the source (written by rank ${v.writer})\n`);
      }
    },
    isItem: (x): x is VerifyItem => false, // never travels: stealable is false
  };
}

/** Test hook: flip the byte at `rel:offset` under root's DST, as a bad disk would. */
export async function corruptForTest(dst: Side, root: Root, spec: string): Promise<void> {
  const i = spec.lastIndexOf(':');
  const path = joinPath(root.dst, Buffer.from(spec.slice(0, i)));
  const off = Number(spec.slice(i + 1));
  const fd = await dst.open(path, C.O_RDWR);
  const b = Buffer.alloc(1);
  await readAt(fd, b, 1, off);
  b[0] = b[0]! ^ 0xff;
  await new Promise<void>((resolve, reject) => writeCb(fd, b, 0, 1, off, (err) => (err ? reject(err) : resolve())));
  await closeFd(fd);
}

function readAt(fd: number, buf: Buffer, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => readCb(fd, buf, 0, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve) => closeCb(fd, () => resolve()));
}
