/**
 * --report FILE for one copy job: this rank's part (report-part.ts) and, at the end, the
 * sort and join (report-join.ts). On a stop (SIGTERM, --time-limit, a stall, a full
 * destination, an aborted job) every rank still sorts its part, and rank 0 joins the
 * parts that are ready within a few seconds; a part that is not stays beside FILE.
 */
import { existsSync } from 'node:fs';
import type { Runtime } from '../engine/runtime.js';
import type { Root } from '../walk/entry.js';
import { causeOf } from '../errors.js';
import { showPath } from '../copy/paths.js';
import { partPath, ReportPart } from './report-part.js';
import { joinParts, sortPart, type ReportFormat } from './report-join.js';

export interface ReportOptions { file: string; format: ReportFormat }

const sortedPath = (file: string, rank: number) => `${partPath(file, rank)}.sorted`;

/** How long rank 0 waits on a stop for the other ranks' sorted parts (abort hooks get 5 s in all). */
const STOP_WAIT_MS = 3000;

export class JobReport {
  readonly part: ReportPart;
  private sorted = false;
  private joined = false;

  constructor(private readonly rt: Runtime, private readonly opts: ReportOptions, roots: Root[]) {
    this.part = new ReportPart(partPath(opts.file, rt.rank), roots);
    rt.addAbortHook(() => this.onStop());
  }

  /** Collective, at the end of the job: sort every part, join them on rank 0. */
  async finish(): Promise<void> {
    this.sortMine();
    await this.rt.barrier();
    if (this.rt.rank === 0) this.join(false);
  }

  private sortMine(): boolean {
    if (this.sorted) return true;
    this.sorted = true;
    try {
      this.part.close();
      sortPart(this.part.path, sortedPath(this.opts.file, this.rt.rank));
      return true;
    } catch (err) {
      process.stderr.write(`fcp: rank ${this.rt.rank}: cannot write the report part '${showPath(this.part.path)}': ${causeOf(err)}\n`);
      return false;
    }
  }

  private join(stopping: boolean): void {
    if (this.joined) return;
    this.joined = true;
    const parts = Array.from({ length: this.rt.size }, (_, r) => sortedPath(this.opts.file, r));
    const ready = parts.filter((p) => existsSync(p));
    try {
      joinParts(this.opts.file, ready, this.opts.format);
    } catch (err) {
      process.stderr.write(`fcp: cannot write the report '${showPath(this.opts.file)}': ${causeOf(err)}\n`);
      return;
    }
    if (ready.length < parts.length) {
      const missing = parts.map((_, r) => r).filter((r) => !ready.includes(parts[r]!));
      process.stderr.write(`fcp: the report '${showPath(this.opts.file)}' lacks rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')}${stopping ? ' (not ready when the job stopped)' : ''}: see ${showPath(this.opts.file)}.part-r<R>\n`);
    }
  }

  private async onStop(): Promise<void> {
    this.sortMine();
    if (this.rt.rank !== 0 || this.joined) return;
    const deadline = Date.now() + STOP_WAIT_MS;
    const all = () => Array.from({ length: this.rt.size }, (_, r) => sortedPath(this.opts.file, r)).every((p) => existsSync(p));
    while (!all() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.join(true);
  }
}
