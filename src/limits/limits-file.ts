/**
 * --limits-file on rank 0: the file is stat'ed every few seconds and read again when it
 * changed (mtime, size or inode: an editor that renames a new file into place counts), so
 * an operator can slow a running copy down (or speed it up) by editing one file.
 *
 * A bad line is named once on stderr, however often the file is read while it stays,
 * and ignored (the other lines apply). A file that cannot be read leaves the limits as
 * they are, said once until it can be read again.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { causeOf } from '../errors.js';
import { showPath } from '../model/paths.js';
import { parseLimitsText, type LimitsText } from './rates.js';

export interface LimitsFileOptions {
  path: string;
  /** how often the file is stat'ed */
  everyMs: number;
  /** called with what the file says, after each read that found it changed */
  onChange: (text: LimitsText) => void;
  /** one line for the operator (stderr) */
  warn: (line: string) => void;
}

export class LimitsFile {
  private timer: NodeJS.Timeout | null = null;
  private seen = '';
  private readonly reported = new Set<string>();
  private unreadable = false;
  private busy = false;

  constructor(private readonly o: LimitsFileOptions) {}

  /** Read it now (job start); null when it cannot be read (said on stderr). */
  readNow(): LimitsText | null {
    try {
      // Its stamp before its text: a change in between is seen by the next look.
      const st = statSync(this.o.path, { bigint: true });
      this.seen = `${st.ino}:${st.size}:${st.mtimeNs}`;
      return this.parse(readFileSync(this.o.path, 'utf8'));
    } catch (err) {
      this.cannotRead(err);
      return null;
    }
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.o.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look at the file (public for tests). */
  async check(): Promise<void> {
    if (this.busy) return; // a slow file system: one look at a time
    this.busy = true;
    try {
      const s = await this.stamp();
      if (s === null || s === this.seen) return;
      let text: string;
      try {
        text = await readFile(this.o.path, 'utf8');
      } catch (err) {
        this.cannotRead(err);
        return;
      }
      this.seen = s;
      this.o.onChange(this.parse(text));
    } finally {
      this.busy = false;
    }
  }

  private async stamp(): Promise<string | null> {
    try {
      const st = await stat(this.o.path, { bigint: true });
      this.unreadable = false;
      return `${st.ino}:${st.size}:${st.mtimeNs}`;
    } catch (err) {
      this.cannotRead(err);
      return null;
    }
  }

  private parse(text: string): LimitsText {
    const t = parseLimitsText(text);
    for (const b of t.bad) {
      const key = `${b.text}\n${b.why}`;
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      this.o.warn(`--limits-file '${showPath(this.o.path)}' line ${b.line} ('${showPath(b.text)}'): ${b.why}; line ignored`);
    }
    return t;
  }

  private cannotRead(err: unknown): void {
    if (this.unreadable) return;
    this.unreadable = true;
    this.o.warn(`cannot read --limits-file '${showPath(this.o.path)}': ${causeOf(err)}; the limits stay as they are`);
  }
}
