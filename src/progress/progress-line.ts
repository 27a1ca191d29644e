/**
 * Rank 0's progress line on a terminal, redrawn in place about once a second (the
 * runtime's progress reduction calls it). Never used when stdout is not a terminal.
 */
import { formatBytes, formatCount, formatDuration } from './format.js';

export class ProgressLine {
  private readonly t0 = Date.now();
  private copyStart = 0;
  private shown = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  walk(entries: number): void {
    this.draw(`walking: ${formatCount(entries)} entries found, ${formatDuration((Date.now() - this.t0) / 1000)}`);
  }

  copy(bytes: number, totalBytes: number, files: number, totalFiles: number): void {
    if (!this.copyStart) this.copyStart = Date.now();
    const el = (Date.now() - this.copyStart) / 1000;
    const rate = bytes / Math.max(el, 1e-3);
    const pct = totalBytes > 0 ? (100 * bytes) / totalBytes : 100;
    const eta = rate > 0 ? (totalBytes - bytes) / rate : Infinity;
    this.draw(`${pct.toFixed(1)}% ${formatBytes(bytes)}/${formatBytes(totalBytes)}, ${formatCount(files)}/${formatCount(totalFiles)} files, ${formatBytes(rate)}/s, elapsed ${formatDuration((Date.now() - this.t0) / 1000)}, ETA ${formatDuration(eta)}`);
  }

  done(): void {
    if (this.shown) this.out.write('\r\x1b[K');
    this.shown = false;
  }

  private draw(s: string): void {
    const width = this.out.columns || 100;
    this.out.write(`\r\x1b[K${s.slice(0, width - 1)}`);
    this.shown = true;
  }
}
