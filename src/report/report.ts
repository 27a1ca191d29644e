/**
 * --report FILE for one copy job: this rank's part (report-part.ts) and, at the end, the
 * join on rank 0 (report-join.ts). On a stop (SIGTERM, --time-limit, a stall, a full
 * destination, an aborted job) every rank still closes its part, and rank 0 joins the
 * parts that are whole within a few seconds; a part that is not stays beside FILE.
 */
import { existsSync } from 'node:fs';
import type { Runtime } from '../engine/runtime.js';
import type { Root } from '../model/entry.js';
import { causeOf } from '../errors.js';
import { showPath } from '../model/paths.js';
import { partPath, ReportPart } from './report-part.js';
import { joinParts, type ReportFormat } from './report-join.js';

export interface ReportOptions { file: string; format: ReportFormat }

/** How long rank 0 waits on a stop for the other ranks' parts (abort hooks get 5 s in all). */
const STOP_WAIT_MS = 3000;

export class JobReport {
  readonly part: ReportPart;
  private closed = false;
  private joined = false;

  /**
   * On a stop, wait for the work in flight (bounded), as the checkpoint does: what it
   * finishes is recorded there, so it must be in the report too.
   */
  beforeClose: (() => Promise<void>) | null = null;

  /** Throws when the part cannot be created (the caller names it and stops the job). */
  constructor(private readonly rt: Runtime, private readonly opts: ReportOptions, roots: Root[]) {
    this.part = new ReportPart(partPath(opts.file, rt.rank), roots);
    rt.addAbortHook(() => this.onStop());
  }

  /** Collective, at the end of the job: every rank closes its part, rank 0 joins them. */
  async finish(): Promise<void> {
    this.close();
    await this.rt.barrier();
    if (this.rt.rank === 0) this.join(false);
  }

  /** The job ends before it began (its checkpoint refused it): no part is left behind. */
  discard(): void {
    this.closed = true;
    this.joined = true;
    this.part.discard();
  }

  private parts(): string[] {
    return Array.from({ length: this.rt.size }, (_, r) => partPath(this.opts.file, r));
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.part.close();
    } catch (err) {
      process.stderr.write(`fcp: rank ${this.rt.rank}: cannot write the report part '${showPath(this.part.path)}': ${causeOf(err)}\n`);
    }
  }

  private join(stopping: boolean): void {
    if (this.joined) return;
    this.joined = true;
    const parts = this.parts();
    const missing = parts.map((p, r) => (existsSync(p) ? -1 : r)).filter((r) => r >= 0);
    try {
      joinParts(this.opts.file, parts.filter((p) => existsSync(p)), this.opts.format);
    } catch (err) {
      process.stderr.write(`fcp: cannot write the report '${showPath(this.opts.file)}': ${causeOf(err)}\n`);
      return;
    }
    if (missing.length > 0) {
      process.stderr.write(`fcp: the report '${showPath(this.opts.file)}' lacks what rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did${stopping ? ' (not written when the job stopped)' : ''}: see ${showPath(this.opts.file)}.part-r<R>.open\n`);
    }
  }

  private async onStop(): Promise<void> {
    await this.beforeClose?.().catch(() => {});
    this.close();
    if (this.rt.rank !== 0 || this.joined) return;
    const deadline = Date.now() + STOP_WAIT_MS;
    while (!this.parts().every((p) => existsSync(p)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.join(true);
  }
}
