/**
 * 6b. --delete: what DST has and SRC has not (copy/delete-extras.ts). Runs before the
 * directory metadata, since removing entries changes their directories' mtimes. Skipped
 * when a guard refused it; the refusal is said here, by rank 0. Collective.
 */
import { deleteExtras } from '../copy/delete-extras.js';
import type { CopyRun } from './run.js';

export interface Deleted {
  /** entries this rank deleted */
  deleted: number;
  /** why nothing was deleted (exit 5); null: not refused */
  refused: string | null;
}

export async function deletePhase(run: CopyRun, refusedAfterWalk: string | null): Promise<Deleted> {
  const { rt, opts } = run;
  let deleted = 0;
  let refused = refusedAfterWalk;
  if (opts.deleteExtras && refused === null) {
    run.progress?.phase('delete');
    // Two lists (DST's entries, the extras) beside the walk's: half the budget each.
    const d = await deleteExtras(rt, {
      roots: run.roots, trees: run.trees, filter: opts.filter, errors: run.errors, native: run.native, dryRun: false, verbose: false,
      maxDelete: opts.maxDelete, listBudget: Math.max(1000, Math.floor(opts.listBudget / 2)), report: run.report,
    });
    deleted = d.deleted;
    refused = d.refused;
    run.mark('delete');
  }
  if (refused !== null && rt.rank === 0) process.stderr.write(`fcp: not deleting: ${refused}\n`);
  return { deleted, refused };
}
