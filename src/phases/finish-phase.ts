/**
 * 5. finish large files: every rank learns which large files lost a chunk anywhere; each
 * owner then gives its large files their metadata and renames them into place (or names
 * the failure once, and keeps or removes the part file). Collective.
 */
import { forEachLimit } from '../util/for-each-limit.js';
import { systemErrorFromCode } from '../errors.js';
import { chunksOf } from '../copy/plan.js';
import { metaOptions } from '../copy/copy-context.js';
import { applyMeta } from '../copy/metadata.js';
import { dstOf, fileKey, partName, srcOf } from '../model/paths.js';
import { CopyDigests } from '../copy/copy-digests.js';
import { datasyncBeforeRename } from '../copy/data-sync.js';
import { toHex } from '../checksum/hasher.js';
import { ACTION } from '../report/report-part.js';
import { IN_FLIGHT, type CopyRun } from './run.js';
import type { Plan } from './plan-phase.js';
import type { Copied } from './copy-data-phase.js';

/** Returns the number of large files this rank finished (they count as copied files). */
export async function finishLargePhase(run: CopyRun, plan: Plan, copied: Copied): Promise<number> {
  const { rt, roots, trees, errors, report, dataSync, store, retrying, tracked } = run;
  const { digests, doneStore } = copied;
  run.progress?.phase('finish');
  // No copy phase: no rank has a large file (Copied.ran), nor a chunk that failed.
  if (!copied.ran) {
    run.mark('finish');
    return 0;
  }
  type Failure = [string, string, boolean];
  const isFailures = (x: unknown): x is Failure[] => Array.isArray(x) && x.every((f) => Array.isArray(f) && typeof f[0] === 'string' && typeof f[1] === 'string' && typeof f[2] === 'boolean');
  const failedEverywhere = new Map<string, Failure>();
  for (const f of (await rt.collectives.allgather<Failure[]>([...copied.failed].map(([k, v]) => [k, v.code, v.onDst]), isFailures)).flat()) {
    if (!failedEverywhere.has(f[0])) failedEverywhere.set(f[0], f);
  }
  const chunkPartials = digests ? await digests.gatherChunks(rt) : null;
  let finishedFiles = 0;
  await forEachLimit(copied.large.filter((e) => !copied.largeUpToDate.has(e)), IN_FLIGHT, async (e) => {
    const src = srcOf(roots, e);
    const dst = dstOf(roots, e);
    const part = partName(dst);
    const why = failedEverywhere.get(fileKey(e));
    if (why) {
      // One line per file, from its owner, however many chunks failed where.
      if (why[1] !== 'REPORTED') errors.report('copy', why[2] ? dst : src, systemErrorFromCode(why[1]));
      // A chunk could not be read from SRC: the chunks that were copied are good and the
      // checkpoint records them, so keep the part file for --resume to copy only the
      // failed ones. Removed without a checkpoint (nothing could use it) and when DST
      // failed (a full disk needs the space back; what was written there is suspect), and
      // when the source changed while it was read (a resume copies it anew: its size or
      // mtime no longer match the chunks recorded).
      if (!store || why[2] || why[1] === 'ESHRUNK' || why[1] === 'ECHANGED') await trees.dst.removeTree(part).catch(() => {});
      return;
    }
    try {
      const st = await retrying(() => tracked('lstat of', src, () => trees.src.lstat(src)));
      if (st.size < e.m.size) throw Object.assign(new Error('shrank while copied'), { code: 'ESHRUNK' });
      if (st.size !== e.m.size || st.mtimeNs !== BigInt(e.m.mtime[0]) * 1_000_000_000n + BigInt(e.m.mtime[1])) {
        throw Object.assign(new Error('changed while copied'), { code: 'ECHANGED' });
      }
      let existed = false;
      await retrying(() => tracked('finish of', dst, async () => {
        await applyMeta(part, e.m, metaOptions(run, src));
        await datasyncBeforeRename(dataSync, trees.dst, part);
        if (report) existed = await trees.dst.lstat(dst).then(() => true, () => false);
        await trees.dst.rename(part, dst);
      }));
      dataSync.wrote(dst);
      report?.add(existed ? ACTION.updated : ACTION.copied, e.r, e.p);
      const content = chunkPartials ? CopyDigests.combine(chunkPartials.get(fileKey(e)), e.m.size, chunksOf(e.m.size, plan.chunk)) : null;
      doneStore?.doneWork(e, -1, e.m.size, content === null ? null : toHex(content));
      digests?.file(e, content);
      finishedFiles++;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      errors.report('finish', code === 'ECHANGED' || code === 'ESHRUNK' ? src : dst, err);
      await trees.dst.removeTree(part).catch(() => {});
    }
  });
  await rt.barrier();
  run.mark('finish');
  return finishedFiles;
}
