/**
 * `--json` on every exit. A tool that finishes prints its full summary; one that ends
 * early (usage error, startup failure, a rank lost, SIGINT/SIGTERM, an internal error)
 * still prints one JSON object as the last line of rank 0's stdout, with what rank 0 knew
 * by then and zeros or nulls for the rest, so batch scripts always have a line to parse.
 * How a job ended is said the same way by every tool: the `Ending` fields.
 */

/** How the job ended; part of every --json summary. */
export interface Ending {
  exitCode: number;
  /** the job was aborted (exit 3: a rank died, a host was lost, an internal error) */
  aborted: boolean;
  /** stopped with progress saved: SIGINT/SIGTERM/SIGHUP, --time-limit, --stall-timeout (exit 4), a full destination (exit 6) */
  stopped: boolean;
  /** why it did not run to its end (as said on stderr); null when it did */
  reason: string | null;
}

import { EXIT } from '../fcp-error.cjs';

/** The exit codes that mean the job did not run to its end. */
const { USAGE, ABORTED, INTERRUPTED, DELETE_REFUSED, DESTINATION_FULL } = EXIT;

/** Did a job that exits with `code` run to its end (0: all done, 1: some entries failed, 5: all but --delete, which a guard refused)? */
export const ranToEnd = (code: number) => code === 0 || code === 1 || code === DELETE_REFUSED;

export function ending(exitCode: number, reason: string | null): Ending {
  const generic = exitCode === INTERRUPTED ? 'stopped by a signal' : exitCode === DESTINATION_FULL ? 'the destination is full' : exitCode === USAGE ? 'usage error' : 'the job was aborted';
  return {
    exitCode,
    aborted: exitCode === ABORTED,
    stopped: exitCode === INTERRUPTED || exitCode === DESTINATION_FULL,
    reason: ranToEnd(exitCode) ? null : reason ?? generic,
  };
}

/**
 * Rank 0 with --json: print one summary, on whatever path the process leaves by. The job
 * fills `known` as it learns counters; `ended` records why it stops early; `finished`
 * prints the summary of a job that ran to its end. Any other exit (process.exit anywhere)
 * prints what is known, shaped by `shape`.
 */
export class JsonOnExit<T extends object> {
  readonly known: Partial<T> = {};
  private reason: string | null = null;
  private printed = false;

  constructor(
    private readonly shape: (known: Partial<T>, end: Ending) => object,
    private readonly write: (line: string) => void = (l) => void process.stdout.write(l),
  ) {
    process.on('exit', (code) => this.print(this.known, code));
  }

  /** Why the job is ending early (the first reason given wins: it is the cause). */
  ended(reason: string): void {
    this.reason ??= reason;
  }

  finished(summary: T, exitCode: number): void {
    this.print(summary, exitCode);
  }

  private print(s: Partial<T>, code: number): void {
    if (this.printed) return;
    this.printed = true;
    this.write(`${JSON.stringify(this.shape(s, ending(code, this.reason)))}\n`);
  }
}
