/**
 * What `fcp` asks of a copy job (cli/fcp.ts builds it; phases read it from the run object),
 * and what it gets back.
 */
import type { Root } from '../model/entry.js';
import type { FileList } from '../walk/list-source.js';
import type { CheckpointOptions } from '../checkpoint/job-checkpoint.js';
import type { PathFilter } from '../walk/filter.js';
import type { MaxDelete } from '../copy/delete-guards.js';
import type { LayoutOptions } from '../copy/layout.js';
import type { ReportOptions } from '../report/report.js';
import type { LimitsOptions } from '../limits/job-limits.js';
import type { CopySummary } from '../jobs/copy-summary.js';

export interface CopyJobOptions {
  roots: Root[];
  /** --files-from: copy only what the list names (walk/list-source.ts) */
  filesFrom?: FileList | null;
  chunkSize?: number;
  quiet: boolean;
  json: boolean;
  checkpoint: CheckpointOptions;
  keepCheckpoint: boolean;
  /** the command that resumes this job, for messages */
  resumeCommand: string;
  /** entries a rank keeps in memory before its lists spill to SQLite */
  listBudget: number;
  /** hash what is read (default on): the signature and --verify need it */
  hash: boolean;
  /** re-read DST after the copy and compare it with the source's digests */
  verify: boolean;
  /** test hook: flip one byte of DST (root 0, 'rel/path:offset') before verifying */
  corruptForTest?: string;
  /** --update: skip what DST already has (see copy-task.ts) */
  update: false | 'time' | 'checksum';
  /** --exclude/--include rules */
  filter: PathFilter | null;
  /** --delete: remove what is in DST but not in SRC, after the copy */
  deleteExtras: boolean;
  /** --delete-from-empty: an empty SRC directory may empty its DST */
  deleteFromEmpty: boolean;
  /** --max-delete: delete nothing when more would be deleted */
  maxDelete: MaxDelete | null;
  /** progress display: auto (a line on a terminal), line, json, none */
  progress: 'auto' | 'line' | 'json' | 'none';
  /** --log-dir: per-rank logs of failed entries */
  logDir?: string;
  /** --layout: DST's default layouts (inherit, the default) or the source's, set at create (copy) */
  layout?: LayoutOptions;
  /** --stall-timeout: a file system request this old stops the job (exit 4); 0: never */
  stallTimeoutMs: number;
  /** for tests: every copy item waits this long first (copy-task.ts slowMs) */
  testSlowCopyMs?: number;
  /** --retries: tries again of an entry that failed transiently (io/retry.ts); 0: none */
  retries: number;
  /** --report FILE: one line per entry (report/) */
  report?: ReportOptions | null;
  /** --bwlimit, --max-ops, --limits-file (limits/job-limits.ts); absent: no limits */
  limits?: Omit<LimitsOptions, 'warn'>;
  /** rank 0: filled with the counters as they become known, for a summary if the job ends early */
  known?: Partial<CopySummary>;
  /** make copied data durable before the checkpoint records it and before success (false: --no-sync) */
  sync: boolean;
}

export interface CopyJobResult {
  summary: CopySummary;
  exitCode: number;
  /** rank 0 removes (or keeps and unlocks) the checkpoint: called after the final barrier */
  finalize: () => void;
  /** refused before anything was written (--delete's guards): no summary lines */
  wroteNothing?: true;
}
