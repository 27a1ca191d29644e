/**
 * What fcp's and fsum's summaries both report (copy-summary.ts, sum-job.ts): the same
 * fields in their --json forms, counted the same way, and the same first words of the
 * line each prints at the end.
 */
import type { Counters } from '../transport/messages.js';
import { formatBytes, formatCount, formatDuration } from '../progress/format.js';
import type { DropCounts } from '../transport/codec.js';

export interface RankTotals { files: number; bytes: number; chunks: number; steals: number }

export interface JobTotals {
  files: number;
  dirs: number;
  symlinks: number;
  specials: number;
  bytes: number;
  seconds: number;
  bytesPerSecond: number;
  errors: number;
  chunkSize: number;
  /** messages the ranks dropped (wrong secret, malformed...) and connections refused from outside the job, summed */
  droppedMessages: DropCounts;
  /** bounded memory at work: ranks whose file lists spilled to SQLite, work items that did */
  spilled: { listRanks: number; queueItems: number };
  ranks: RankTotals[];
}

/** The entries a walk found, by kind, from its summed counters. */
export function walkedEntries(walk: Counters): Pick<JobTotals, 'files' | 'dirs' | 'symlinks' | 'specials'> {
  return { files: walk.files ?? 0, dirs: walk.dirs ?? 0, symlinks: walk.symlinks ?? 0, specials: walk.specials ?? 0 };
}

/** `N files, N directories, N symlinks, SIZE in TIME (RATE/s), N errors`: the start of both tools' last line. */
export function totalsLine(s: JobTotals): string {
  return `${formatCount(s.files)} files, ${formatCount(s.dirs)} directories, ${formatCount(s.symlinks)} symlinks, ` +
    `${formatBytes(s.bytes)} in ${formatDuration(s.seconds)} (${formatBytes(s.bytesPerSecond)}/s), ` +
    `${s.errors} error${s.errors === 1 ? '' : 's'}`;
}
