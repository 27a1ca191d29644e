/**
 * What rank 0 shows while a job runs (the runtime's progress reduction and the jobs'
 * phase announcements feed it): a line redrawn in place on a terminal, or JSON lines
 * for batch logs. Never a line when stdout is not a terminal (see progressReporter in
 * phases/run.ts).
 */
import { formatLine, type LineView } from './line-format.js';
import { PHASES, type PhaseKey } from './phases.js';
import { TerminalLine } from './terminal-line.js';

export interface ProgressReporter {
  /** A phase of the job starts (keys and labels: phases.ts). */
  phase(key: PhaseKey): void;
  /** walk: entries found so far, all ranks */
  walk(entries: number): void;
  /**
   * A phase that moves data (copy, verify, fsum's hash): done and total, all ranks.
   * `moved`: the bytes of `bytes` this run actually moved (default: all); the rate, and so
   * the ETA, count only those, not what an earlier run did (a resume skips it at once).
   */
  copy(bytes: number, totalBytes: number, files: number, totalFiles: number, moved?: number): void;
  /**
   * A status note shown at the end of the line until replaced or cleared with null,
   * e.g. "stalled: read 'PATH' 45 s". The JSON lines do not carry it.
   */
  note(text: string | null): void;
  /** The job's work is over: erase the line, before the summary is printed. */
  done(): void;
  /** The job stopped before the end (a signal, a stall, a full disk): say why, last. */
  stopped(reason: string): void;
}

/**
 * --progress=json: one JSON object per line and interval on stdout, so a batch job's log
 * can be followed with `tail -f` and parsed: {"progress":phase, bytes, totalBytes, files,
 * totalFiles, rate (bytes/s), eta (s, null before a rate is known), elapsed (s)}.
 * Only the walk and copy phases print (as they always have): the runtime's reduction
 * keeps calling the last callback during later phases, whose counters are not these.
 */
export class JsonProgress implements ProgressReporter {
  private readonly t0 = Date.now();
  private copyStart = 0;
  private current: PhaseKey | null = null;

  constructor(private readonly out: NodeJS.WritableStream) {}

  phase(key: PhaseKey): void {
    this.current = key;
  }

  walk(entries: number): void {
    if (this.current !== null && this.current !== 'walk') return;
    this.emit({ phase: 'walk', entries });
  }

  copy(bytes: number, totalBytes: number, files: number, totalFiles: number): void {
    if (this.current !== null && this.current !== 'copy') return;
    if (!this.copyStart) this.copyStart = Date.now();
    const el = (Date.now() - this.copyStart) / 1000;
    const rate = el > 0 ? bytes / el : 0;
    this.emit({ phase: 'copy', bytes, totalBytes, files, totalFiles, rate: Math.round(rate), eta: rate > 0 ? Math.round((totalBytes - bytes) / rate) : null });
  }

  note(): void {}

  done(): void {}

  stopped(reason: string): void {
    this.emit({ phase: 'stopped', reason });
  }

  private emit(o: Record<string, unknown>): void {
    this.out.write(`${JSON.stringify({ progress: o.phase, ...o, phase: undefined, elapsed: Math.round((Date.now() - this.t0) / 100) / 10 })}\n`);
  }
}

/** Units a second over the last `windowMs` (so a rate follows changes, and a stall shows). */
export class RateMeter {
  private samples: [number, number][] = [];

  constructor(private readonly windowMs = 10_000) {}

  reset(t: number, v: number): void {
    this.samples = [[t, v]];
  }

  add(t: number, v: number): void {
    this.samples.push([t, v]);
    while (this.samples.length > 2 && t - this.samples[1]![0] >= this.windowMs) this.samples.shift();
  }

  /** null until two samples half a second apart */
  get rate(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last[0] - first[0] < 500) return null;
    return Math.max(0, (last[1] - first[1]) / ((last[0] - first[0]) / 1000));
  }
}

export interface ProgressLineOptions {
  /** streams whose output must not land inside the line (default: stderr) */
  others?: NodeJS.WriteStream[];
  /** at most one redraw per this many ms (default 100: 10 a second) */
  minIntervalMs?: number;
  /** redraw at least this often, for the elapsed time, the note, and after other ranks' output (default 1000) */
  tickMs?: number;
}

/**
 * The line on a terminal: the phase's name, then for the walk the entries found and
 * their rate, for a data phase a bar, percent, bytes and files of the totals, rate and
 * ETA; a status note at the end. See line-format.ts for the layout and terminal-line.ts
 * for drawing it.
 */
export class ProgressLine implements ProgressReporter {
  private current: PhaseKey | null = null;
  private phaseStart = Date.now();
  private entries: number | null = null;
  private data: Omit<NonNullable<LineView['data']>, 'rate' | 'eta'> | null = null;
  private readonly meter = new RateMeter();
  private status: string | null = null;
  private readonly term: TerminalLine;
  private readonly minIntervalMs: number;
  private lastDraw = 0;
  private pending: NodeJS.Timeout | null = null;
  private readonly tick: NodeJS.Timeout;
  private closed = false;
  /** the next draw writes the line even if unchanged */
  private force = false;

  constructor(out: NodeJS.WriteStream, opts: ProgressLineOptions = {}) {
    this.minIntervalMs = opts.minIntervalMs ?? 100;
    this.term = new TerminalLine(out, opts.others ?? [process.stderr], () => this.schedule());
    // Once a tick the line is written even if unchanged: other ranks' output may have erased it.
    this.tick = setInterval(() => this.schedule(true), opts.tickMs ?? 1000);
    this.tick.unref();
  }

  phase(key: PhaseKey): void {
    this.current = key;
    this.phaseStart = Date.now();
    this.entries = null;
    this.data = null;
    this.meter.reset(this.phaseStart, 0);
    this.schedule();
  }

  walk(entries: number): void {
    if (this.current === null || PHASES[this.current].counts !== 'entries') return;
    this.entries = entries;
    this.meter.add(Date.now(), entries);
    this.schedule();
  }

  copy(bytes: number, totalBytes: number, files: number, totalFiles: number, moved = bytes): void {
    if (this.current === null || PHASES[this.current].counts !== 'data') return;
    this.data = { bytes, totalBytes, files, totalFiles };
    this.meter.add(Date.now(), moved);
    this.schedule();
  }

  note(text: string | null): void {
    this.status = text;
    this.schedule();
  }

  done(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.tick);
    if (this.pending) clearTimeout(this.pending);
    this.term.close();
  }

  /** The job stopped before the end (a signal, a stall, a full disk): say why, on a line of its own that stays. */
  stopped(reason: string): void {
    if (this.closed) return;
    const text = `stopped: ${reason}`;
    this.term.draw(text.length > this.term.cols ? `${text.slice(0, this.term.cols - 1)}…` : text, true);
    this.term.keep();
    this.done();
  }

  /** What the line shows now. */
  view(): LineView {
    const rate = this.meter.rate;
    const base = { label: this.current ? PHASES[this.current].label : '', elapsed: (Date.now() - this.phaseStart) / 1000, note: this.status };
    if (this.data) {
      const left = this.data.totalBytes - this.data.bytes;
      return { ...base, data: { ...this.data, rate, eta: rate && rate > 0 ? Math.max(0, left) / rate : left <= 0 ? 0 : null } };
    }
    if (this.entries !== null) return { ...base, entries: { found: this.entries, rate } };
    return base;
  }

  /**
   * Redraw soon, never more than once per minIntervalMs, and never synchronously: this
   * is also called from inside someone else's write (which erased the line), and the line
   * must come back after that output, not before it.
   */
  private schedule(force = false): void {
    this.force ||= force;
    if (this.closed || this.current === null || this.pending) return;
    const wait = Math.max(0, this.lastDraw + this.minIntervalMs - Date.now());
    this.pending = setTimeout(() => {
      this.pending = null;
      if (this.closed) return;
      this.lastDraw = Date.now();
      this.term.draw(formatLine(this.view(), this.term.cols), this.force);
      this.force = false;
    }, wait);
    this.pending.unref();
  }
}
