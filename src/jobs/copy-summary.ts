/**
 * fcp's summary, and its `--json` form on every exit. A finished job prints its full
 * summary; a job that ends early (usage error, a rank lost, SIGINT/SIGTERM) still prints
 * one JSON object as the last line of rank 0's stdout, with what rank 0 knew by then and
 * zeros or nulls for the rest, so batch scripts always have a line to parse.
 */
export interface CopySummary {
  files: number;
  dirs: number;
  symlinks: number;
  specials: number;
  bytes: number;
  seconds: number;
  bytesPerSecond: number;
  errors: number;
  /** bytes and files copied by this run; the rest was done by earlier runs (resume) */
  bytesCopied: number;
  bytesSkipped: number;
  filesCopied: number;
  filesSkipped: number;
  chunkSize: number;
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
  /** entries left out by --exclude/--include */
  excluded: number;
  /** bounded memory at work: ranks whose file lists spilled to SQLite, work items that did */
  spilled: { listRanks: number; queueItems: number };
  ranks: { files: number; bytes: number; chunks: number; steals: number }[];
}

/** How the job ended; part of every --json summary. */
export interface Ending {
  exitCode: number;
  /** the job was aborted (exit 3: a rank died, a host was lost, an internal error) */
  aborted: boolean;
  /** stopped by SIGINT/SIGTERM/SIGHUP (exit 4), progress saved */
  stopped: boolean;
  /** why it did not finish (as said on stderr); null when it ran to its end */
  reason: string | null;
}

/** `ranks` (each rank's share) only when the job ran to its end: an early exit does not know them. */
export type CopyJson = Omit<CopySummary, 'ranks'> & Partial<Pick<CopySummary, 'ranks'>> & Ending;

/** A summary of nothing: what a job that ended before counting anything reports. */
export function emptySummary(): CopySummary {
  return {
    files: 0, dirs: 0, symlinks: 0, specials: 0, bytes: 0, seconds: 0, bytesPerSecond: 0, errors: 0,
    bytesCopied: 0, bytesSkipped: 0, filesCopied: 0, filesSkipped: 0, chunkSize: 0, signature: null,
    filesUpToDate: 0, filesRead: 0, deleted: 0, excluded: 0, spilled: { listRanks: 0, queueItems: 0 }, ranks: [],
  };
}

/** The exit codes (see engine/runtime.ts EXIT) that mean the job did not run to its end. */
const ABORTED = 3;
const INTERRUPTED = 4;

/** The one place a --json summary is shaped: counters, then how the job ended. */
export function copyJson(known: Partial<CopySummary>, exitCode: number, reason: string | null): CopyJson {
  const s = { ...emptySummary(), ...known };
  if (known.seconds === undefined) {
    s.seconds = performance.now() / 1000;
    s.bytesPerSecond = s.bytesCopied / Math.max(s.seconds, 1e-9);
  }
  const early = exitCode !== 0 && exitCode !== 1;
  const { ranks, ...counters } = s;
  return {
    ...counters,
    ...(early ? {} : { ranks }),
    exitCode,
    aborted: exitCode === ABORTED,
    stopped: exitCode === INTERRUPTED,
    reason: early ? reason ?? (exitCode === INTERRUPTED ? 'stopped by a signal' : exitCode === ABORTED ? 'the job was aborted' : 'usage error') : null,
  };
}

/**
 * Rank 0 with --json: print the summary once, on whatever path the process leaves by.
 * The job fills `known` as it learns counters; `ended` records why it stops early;
 * `finished` prints the full summary of a job that ran to its end. Any other exit
 * (process.exit anywhere: usage, startup failure, abort) prints what is known.
 */
export class JsonSummaryOnExit {
  readonly known: Partial<CopySummary> = {};
  private reason: string | null = null;
  private printed = false;

  constructor(private readonly write: (line: string) => void = (l) => void process.stdout.write(l)) {
    process.on('exit', (code) => this.print(this.known, code));
  }

  /** Why the job is ending early (the first reason given wins: it is the cause). */
  ended(reason: string): void {
    this.reason ??= reason;
  }

  finished(summary: CopySummary, exitCode: number): void {
    this.print(summary, exitCode);
  }

  private print(s: Partial<CopySummary>, code: number): void {
    if (this.printed) return;
    this.printed = true;
    this.write(`${JSON.stringify(copyJson(s, code, this.reason))}\n`);
  }
}
