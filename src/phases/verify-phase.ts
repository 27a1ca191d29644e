/**
 * 8. --verify: each rank re-reads what its ring neighbour wrote (and a share of what
 * earlier runs did) and compares it with the digests of what was read from SRC
 * (copy/verify-task.ts). Collective.
 */
import { readVerifiable, type DoneWork } from '../checkpoint/verifiable.js';
import { verifyTask, corruptForTest } from '../copy/verify-task.js';
import type { CopyRun } from './run.js';
import type { Plan } from './plan-phase.js';
import type { Copied } from './copy-data-phase.js';

/** Returns the mismatches found by every rank; undefined when there was nothing to verify with (no --verify, no digests). */
export async function verifyPhase(run: CopyRun, { chunk }: Plan, { digests, totalBytes }: Copied): Promise<number | undefined> {
  const { rt, opts, progress, store, scratch, resume } = run;
  if (!opts.verify || !digests) return undefined;
  progress?.phase('verify');
  rt.onProgress((_p, t) => progress?.copy(t.verified ?? 0, totalBytes, 0, 0));
  if (rt.rank === 0 && opts.corruptForTest) await corruptForTest(run.trees.dst, run.roots[0]!, opts.corruptForTest);
  // Every rank's done records in its file (synced first: they are the checkpoint's too).
  await (store ?? scratch!.store).commit();
  await rt.barrier();
  const peer = (rt.rank + 1) % rt.size;
  const rows = function* (): Generator<DoneWork> {
    const mine = store ? run.ckpt.rankFileOf(peer) : scratch!.store.path;
    yield* readVerifiable(mine, chunk);
    if (resume) {
      // Earlier runs' records: every rank reads them and keeps its share (by a hash of the path).
      for (const row of readVerifiable(resume.path, chunk)) {
        if ((pathHash(row.path) + row.off) % rt.size === rt.rank) yield row;
      }
    }
  };
  const v = await rt.runPhase(verifyTask({ roots: run.roots, dst: run.trees.dst, errors: run.errors, rows, writer: peer }));
  run.mark('verify');
  return v.total.mismatches ?? 0;
}

/** FNV-1a of a path: spreads records over ranks. */
function pathHash(p: Buffer): number {
  let h = 0x811c9dc5;
  for (const b of p) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}
