/**
 * Reading back what a checkpoint recorded done, for --verify (phases/verify-phase.ts).
 */
import { openDb } from './schema.js';
import { doneRows } from './done-batch.js';

export interface DoneWork { root: number; path: Buffer; off: number; len: number; size: number; digest: string | null }

/**
 * The done rows of a store file (any rank's, or merged.db) that --verify can check: with a
 * digest, and chunks or whole files of at most `chunk` bytes (a larger whole file's
 * digest is a tree over its chunks: verify reads those). Read-only and lazily.
 */
export function* readVerifiable(path: string, chunk: number): Generator<DoneWork> {
  const rd = openDb(path, true);
  try {
    yield* rd.prepare(`SELECT root, path, off, len, size, digest FROM done WHERE digest IS NOT NULL AND (off >= 0 OR size <= ?)`).iterate(chunk) as IterableIterator<DoneWork>;
    const hasBatches = rd.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'done_batches'").pluck().get() !== undefined;
    if (!hasBatches) return;
    for (const b of rd.prepare('SELECT rels, nums, status, digests FROM done_batches').iterate() as IterableIterator<{ rels: Buffer; nums: Buffer; status: Buffer; digests: Buffer | null }>) {
      for (const [root, p, off, len, size, , , digest] of doneRows(b.rels, b.nums, b.status, b.digests)) {
        if (digest !== null && size <= chunk) yield { root, path: p, off, len, size, digest };
      }
    }
  } finally {
    rd.close();
  }
}
