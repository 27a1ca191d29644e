/**
 * 2. plan: the chunk size (a resume cuts files as the first run did, so its recorded
 * chunks line up) and the hard-link groups (copy/hardlinks.ts). Collective.
 */
import { chooseChunkSize } from '../copy/plan.js';
import { HardLinks, planHardLinks } from '../copy/hardlinks.js';
import type { CopyRun } from './run.js';
import type { Walked } from './walk-phase.js';

export interface Plan {
  /** files larger than this are copied in chunks of this size */
  chunk: number;
  /** which name of each hard-linked file is copied; the others are linked to it */
  links: HardLinks;
}

export async function planPhase(run: CopyRun, walked: Walked): Promise<Plan> {
  const { rt, opts } = run;
  run.progress?.phase('plan');
  const chunk = opts.chunkSize ?? run.ckpt.earlierChunkSize ?? chooseChunkSize(walked.result.total.bytes ?? 0, rt.size);
  // Every rank's file says it (they are created by their first flush, rank 0's maybe last):
  // chunk records are read back only with the chunk size they were cut with.
  run.store?.setMeta('chunkSize', String(chunk));
  run.known.chunkSize = chunk;
  // (no rank found a hard-linked file: no exchange, and the links phase is skipped)
  const links = walked.left.links ? await planHardLinks(rt, run.lists.hardlinked(), run.roots.length) : HardLinks.empty();
  rt.addAbortHook(() => links.close());
  run.mark('plan');
  return { chunk, links };
}
