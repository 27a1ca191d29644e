/**
 * fcp's summary (its `--json` form: cli/copy-json.ts).
 */
import { emptyDrops } from '../transport/drop-report.js';
import type { JobTotals } from './job-totals.js';

/** The fields fsum reports too (job-totals.ts), and the copy's own. */
export interface CopySummary extends JobTotals {
  /** bytes and files copied by this run; the rest was done by earlier runs (resume) */
  bytesCopied: number;
  bytesSkipped: number;
  filesCopied: number;
  filesSkipped: number;
  /** fsum's dataset signature of SRC, from the bytes the copy read (null: not hashed or incomplete) */
  signature: string | null;
  /** --verify: chunks or files of DST that differ from what was read from SRC */
  verifyMismatches?: number;
  /** --update: files DST already had (not read, with --update=time) */
  filesUpToDate: number;
  /** files whose content this run read (--update=checksum reads both sides: counts 2) */
  filesRead: number;
  /** --delete: entries removed from DST */
  deleted: number;
  /** --delete: why nothing was deleted (a guard, see copy/delete-guards.ts), or null */
  deleteRefused: string | null;
  /** entries left out by --exclude/--include */
  excluded: number;
  /** --retries: entries that failed transiently and were tried again (whatever the outcome), and the tries made again in all */
  retried: number;
  retries: number;
}

/** A summary of nothing: what a job that ended before counting anything reports. */
export function emptySummary(): CopySummary {
  return {
    files: 0, dirs: 0, symlinks: 0, specials: 0, bytes: 0, seconds: 0, bytesPerSecond: 0, errors: 0,
    bytesCopied: 0, bytesSkipped: 0, filesCopied: 0, filesSkipped: 0, chunkSize: 0, signature: null,
    filesUpToDate: 0, filesRead: 0, deleted: 0, deleteRefused: null, excluded: 0, retried: 0, retries: 0, droppedMessages: emptyDrops(), spilled: { listRanks: 0, queueItems: 0 }, ranks: [],
  };
}
