/**
 * 1. walk: distributed over the ranks (work stealing). Each rank lists what it found in
 * `run.lists` (spilled to its store past the budget). Unless the job does not allow it
 * (walk-copy.ts overlapUnfit), the walk also makes the directories it finds and copies
 * their small plain files as it goes (walk-copy.ts); else it reads SRC only. Collective.
 */
import type { PhaseResult } from '../engine/task.js';
import type { Counters } from '../transport/messages.js';
import { walkTask } from '../walk/walk-task.js';
import type { CopySummary } from '../jobs/copy-summary.js';
import type { CopyRun } from './run.js';
import { overlap, overlapUnfit, splitCounters } from './walk-copy.js';
import type { CopyDigests } from '../copy/copy-digests.js';

export interface Walked {
  /** the walk's counters: this rank's, every rank's, the sums */
  result: PhaseResult;
  /** --update (time rule): directories DST had as directories when walked (mkdir skips them) */
  dstDirs: Set<string> | null;
  /** directories made in the walk (the mkdir phase skips them); null: none were */
  made: Set<string> | null;
  /** the copy done during the walk (walk-copy.ts): its counters, and what it read (--hash); null: none */
  overlap: { copied: PhaseResult; digests: CopyDigests | null } | null;
  /** what the walk left for the phases after it (the same on every rank) */
  left: Left;
  /** levels of directories in the lists of all ranks (the deepest + 1; 0: none) from the walk's counters; null: ask the ranks (the lists hold directories the walk did not count) */
  dirLevels: number | null;
}

/**
 * What the walk left for the phases after it. Decided from the walk's totals, which every
 * rank has, so every rank skips the same phases, and their collectives: each costs a few
 * round trips among all ranks (at 16 ranks on two cores 10-30 ms a phase, even with
 * nothing to do).
 */
export interface Left {
  /** directories the walk did not make: the mkdir phase */
  dirs: boolean;
  /** entries for the copy phase (files not copied in the walk nor up to date, symlinks, specials), and so perhaps large files to finish */
  copy: boolean;
  /** files with more than one link: the plan's link groups and the links phase */
  links: boolean;
}

/**
 * What is left after a walk of these totals (counters of walk-task.ts: `handed`, the files
 * it copied as it went; `upToDate`, files --update found in DST and never listed; `linked`,
 * files with more than one link; `dstDirs`, directories --update found in DST already).
 * `overlapped`: the walk made every directory it found (walk-copy.ts); `reported`:
 * --report. A resume lists again what earlier runs found, and a list of files implies its
 * parents: there every phase runs.
 */
export function leftAfterWalk(t: Counters, job: { overlapped: boolean; resume: boolean; listed: boolean; reported: boolean }): Left {
  if (job.resume || job.listed) return { dirs: true, copy: true, links: true };
  const n = (k: string) => t[k] ?? 0;
  return {
    // (with --report, mkdir writes a line for each directory there already)
    dirs: !job.overlapped && (job.reported || n('dirs') !== n('dstDirs')),
    copy: n('files') !== n('handed') + n('upToDate') || n('symlinks') + n('specials') > 0,
    links: n('linked') > 0,
  };
}

export async function walkPhase(run: CopyRun): Promise<Walked> {
  const { rt, opts, progress, known } = run;
  progress?.phase('walk');
  const ov = overlapUnfit(run) === null ? await overlap(run) : null;
  // Rank 0, when the walk copies too: the job may stop in this phase, with files copied;
  // its summary then says what was found and copied so far (the last progress total, with
  // rank 0's own counters as they are now).
  let tick: { total: Counters; own: Counters } | null = null;
  let copyShown = false;
  rt.onProgress((_p, total) => {
    if (ov) tick = { total, own: { ...ov.local() } };
    // Once files are being copied the line says so, against what the walk found so far
    // (the totals grow while it goes on, as rsync's incremental recursion's do).
    if ((total['copy.started'] ?? 0) === 0) return progress?.walk(total.entries ?? 0);
    if (!copyShown) progress?.phase('copy');
    copyShown = true;
    progress?.copy(total['copy.bytes'] ?? 0, total.bytes ?? 0, total['copy.files'] ?? 0, total.files ?? 0);
  });
  let walking = true;
  if (ov && rt.rank === 0) {
    rt.addAbortHook(() => {
      if (!walking) return;
      const now = ov.local();
      const sofar: Counters = { ...tick?.total };
      for (const [k, v] of Object.entries(now)) sofar[k] = (sofar[k] ?? 0) - (tick?.own[k] ?? 0) + v;
      const { walk: w, copy: c } = splitCounters({ local: sofar, total: sofar, perRank: [] });
      Object.assign(known, knownOfWalk(w.total), { bytesCopied: c.total.bytes ?? 0, filesCopied: c.total.files ?? 0, filesRead: c.total.filesRead ?? 0 } satisfies Partial<CopySummary>);
    });
  }
  // --update (time rule): files DST already has are found by the walk and never listed
  // (a resume re-checks its kept entries in the copy, as before).
  const updateDst = opts.update === 'time' && run.native && !run.resume ? run.trees.dst : null;
  const dstDirs = updateDst ? new Set<string>() : null;
  const walk = walkTask({
    roots: run.roots, side: run.trees.src, lists: run.lists, errors: run.errors, uid: run.uid, native: run.native, store: run.store, resume: run.resume,
    filter: opts.filter, inFlight: run.inFlight, list: opts.filesFrom, retries: run.retries, report: run.report, updateDst, dstDirs, limits: run.throttle,
    sink: ov?.sink ?? null,
  });
  const both = ov ? splitCounters(await rt.runPhase(ov.task(walk))) : null;
  const result = both ? both.walk : await rt.runPhase(walk);
  walking = false;
  const t = result.total;
  Object.assign(known, knownOfWalk(t));
  progress?.walk(t.entries ?? 0);
  run.mark('walk');
  if (rt.rank === 0 && !run.chown && (t.foreignOwner ?? 0) > 0 && !opts.quiet) {
    process.stderr.write(`fcp: not running as root: ${t.foreignOwner} entries owned by other users will be owned by uid ${run.uid}\n`);
  }
  const left = leftAfterWalk(t, { overlapped: ov !== null, resume: run.resume !== null, listed: !!opts.filesFrom, reported: run.report !== null });
  const counted = !run.resume && !opts.filesFrom;
  const dirLevels = counted ? Math.max(0, ...result.perRank.map((c) => c.dirLevels ?? 0)) : null;
  return { result, dstDirs, made: ov?.made ?? null, overlap: ov && both ? { copied: both.copy, digests: ov.digests } : null, left, dirLevels };
}

/** The summary's counters the walk knows. */
function knownOfWalk(t: Counters): Partial<CopySummary> {
  return {
    files: t.files ?? 0, dirs: t.dirs ?? 0, symlinks: t.symlinks ?? 0, specials: t.specials ?? 0,
    bytes: t.bytes ?? 0, excluded: t.excluded ?? 0, errors: t.errors ?? 0,
  };
}
