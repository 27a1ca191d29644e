/**
 * Rank 0's progress line on a terminal, redrawn in place about once a second (the
 * runtime's progress reduction calls it). Never used when stdout is not a terminal.
 */
import { formatBytes, formatCount, formatDuration } from './format.js';

/** What rank 0 shows while a copy runs: a redrawn line (terminal) or JSON lines (batch logs). */
export interface ProgressReporter {
  walk(entries: number): void;
  copy(bytes: number, totalBytes: number, files: number, totalFiles: number): void;
  done(): void;
  /** The job stopped before the end (a signal, a stall, a full disk): say why, last. */
  stopped(reason: string): void;
}

/**
 * --progress=json: one JSON object per line and interval on stdout, so a batch job's log
 * can be followed with `tail -f` and parsed: {"progress":phase, bytes, totalBytes, files,
 * totalFiles, rate (bytes/s), eta (s, null before a rate is known), elapsed (s)}.
 */
export class JsonProgress implements ProgressReporter {
  private readonly t0 = Date.now();
  private copyStart = 0;

  constructor(private readonly out: NodeJS.WritableStream) {}

  walk(entries: number): void {
    this.emit({ phase: 'walk', entries });
  }

  copy(bytes: number, totalBytes: number, files: number, totalFiles: number): void {
    if (!this.copyStart) this.copyStart = Date.now();
    const el = (Date.now() - this.copyStart) / 1000;
    const rate = el > 0 ? bytes / el : 0;
    this.emit({ phase: 'copy', bytes, totalBytes, files, totalFiles, rate: Math.round(rate), eta: rate > 0 ? Math.round((totalBytes - bytes) / rate) : null });
  }

  done(): void {}

  stopped(reason: string): void {
    this.emit({ phase: 'stopped', reason });
  }

  private emit(o: Record<string, unknown>): void {
    this.out.write(`${JSON.stringify({ progress: o.phase, ...o, phase: undefined, elapsed: Math.round((Date.now() - this.t0) / 100) / 10 })}\n`);
  }
}

export class ProgressLine implements ProgressReporter {
  private readonly t0 = Date.now();
  private copyStart = 0;
  /** bytes already done when the copy phase started (a resume's skipped work): not part of the rate */
  private baseline = 0;
  private shown = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  walk(entries: number): void {
    this.draw(`walking: ${formatCount(entries)} entries found, ${formatDuration((Date.now() - this.t0) / 1000)}`);
  }

  copy(bytes: number, totalBytes: number, files: number, totalFiles: number): void {
    if (!this.copyStart) {
      this.copyStart = Date.now();
      this.baseline = bytes;
    }
    const el = (Date.now() - this.copyStart) / 1000;
    const rate = (bytes - this.baseline) / Math.max(el, 1e-3);
    const pct = totalBytes > 0 ? (100 * bytes) / totalBytes : 100;
    const eta = rate > 0 ? (totalBytes - bytes) / rate : Infinity;
    this.draw(`${pct.toFixed(1)}% ${formatBytes(bytes)}/${formatBytes(totalBytes)}, ${formatCount(files)}/${formatCount(totalFiles)} files, ${formatBytes(rate)}/s, elapsed ${formatDuration((Date.now() - this.t0) / 1000)}, ETA ${formatDuration(eta)}`);
  }

  done(): void {
    if (this.shown) this.out.write('\r\x1b[K');
    this.shown = false;
  }

  stopped(reason: string): void {
    this.draw(`stopped: ${reason}`);
    this.out.write('\n');
    this.shown = false;
  }

  private draw(s: string): void {
    const width = this.out.columns || 100;
    this.out.write(`\r\x1b[K${s.slice(0, width - 1)}`);
    this.shown = true;
  }
}
