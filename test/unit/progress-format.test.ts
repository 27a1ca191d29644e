/**
 * The progress line's text: units, ETA, and fitting into any terminal width; the
 * terminal line's drawing (in place, erased before other output, unchanged text not
 * written again); the reporter's phases.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatBytes, formatEta, formatRate } from '../../src/progress/format.js';
import { formatLine, type LineView } from '../../src/progress/line-format.js';
import { displayWidth, fitMiddle } from '../../src/progress/text-width.js';
import { ProgressLine, RateMeter } from '../../src/progress/progress-line.js';
import { TerminalLine } from '../../src/progress/terminal-line.js';
import { PHASES } from '../../src/progress/phases.js';
import { currentLine, startsClean } from '../helpers/pty.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const copying: LineView = {
  label: 'copying',
  data: { bytes: 1.21 * GiB, totalBytes: 2.88 * GiB, files: 1234, totalFiles: 5678, rate: 312 * MiB, eta: 185 },
  elapsed: 42,
  note: null,
};

describe('units', () => {
  it('ETA as 12s, 3m05s, 1h02m, and -- when unknown', () => {
    expect(formatEta(0)).toBe('0s');
    expect(formatEta(12.4)).toBe('12s');
    expect(formatEta(59.6)).toBe('1m00s');
    expect(formatEta(185)).toBe('3m05s');
    expect(formatEta(3720)).toBe('1h02m');
    expect(formatEta(100 * 3600 + 59)).toBe('100h00m');
    for (const x of [null, Infinity, NaN, -1]) expect(formatEta(x)).toBe('--');
  });
  it('bytes in KiB/MiB/GiB, rates per second', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(312 * MiB)).toBe('312 MiB');
    expect(formatBytes(2.88 * GiB)).toBe('2.88 GiB');
    expect(formatRate(1.5 * MiB)).toBe('1.50 MiB/s');
    expect(formatRate(null)).toBe('--/s');
  });
});

describe('formatLine', () => {
  it('shows the phase, a bar, percent, bytes and files of totals, rate and ETA on a wide terminal', () => {
    const l = formatLine(copying, 119);
    expect(l).toMatch(/^copying \[#+\.+\] 42\.0% 1\.21\/2\.88 GiB 1,234\/5,678 files 312 MiB\/s ETA 3m05s$/);
    expect(l.match(/\[([#.]+)\]/)![1]!.length).toBe(30); // the bar's widest
  });

  it('is never wider than the terminal, and keeps percent and phase down to narrow widths', () => {
    const views: LineView[] = [
      copying,
      { ...copying, note: "stalled: read '/lustre/project/a/very/long/path/to/some/deep/file.h5' 45 s" },
      { label: PHASES['dir metadata'].label, elapsed: 3725, note: null },
      { label: 'walking', entries: { found: 123_456_789, rate: 45_678.4 }, elapsed: 12, note: null },
      { ...copying, note: '长长的路径名称/文件名称很长很长很长很长很长 ok' },
    ];
    for (const v of views) {
      for (let cols = 1; cols <= 200; cols++) {
        const l = formatLine(v, cols);
        expect(displayWidth(l), `${cols}: ${l}`).toBeLessThanOrEqual(cols);
        expect(l).not.toMatch(/[\x00-\x1f]/);
      }
    }
    for (const cols of [20, 40, 59]) {
      const l = formatLine(copying, cols);
      expect(l, l).toMatch(/^copying .*42\.0%/);
    }
    // 59 columns (a 60-column terminal): the bar gives way before ETA and bytes do
    expect(formatLine(copying, 59)).toContain('ETA 3m05s');
    expect(formatLine(copying, 59)).toContain('1.21/2.88 GiB');
  });

  it('during the walk: entries found and their rate (no total, no percent)', () => {
    const l = formatLine({ label: 'walking', entries: { found: 12345, rate: 4567.2 }, elapsed: 12, note: null }, 79);
    expect(l).toBe('walking 12,345 entries 4,567/s 12s');
    expect(formatLine({ label: 'walking', entries: { found: 0, rate: null }, elapsed: 0, note: null }, 79)).toBe('walking 0 entries --/s 0s');
  });

  it('shows -- for a rate and ETA not known yet, and 100% for a job without data', () => {
    const l = formatLine({ label: 'copying', data: { bytes: 0, totalBytes: 10 * MiB, files: 0, totalFiles: 3, rate: null, eta: null }, elapsed: 0, note: null }, 100);
    expect(l).toContain(' 0.0% ');
    expect(l).toMatch(/--\/s ETA --$/);
    expect(formatLine({ label: 'copying', data: { bytes: 0, totalBytes: 0, files: 0, totalFiles: 0, rate: null, eta: null }, elapsed: 0, note: null }, 100)).toContain('100.0%');
  });

  it('puts a status note at the end, cut in the middle when long, control characters shown as ?', () => {
    const note = "stalled: read '/lustre/project/a/very/long/path/to/file.h5' 45 s";
    const wide = formatLine({ ...copying, note }, 200);
    expect(wide.endsWith(` | ${note}`)).toBe(true);
    const narrow = formatLine({ ...copying, note }, 70);
    expect(narrow).toMatch(/ \| stalled: read .*\.\.\..*45 s$/);
    expect(narrow).toContain('42.0%');
    expect(formatLine({ ...copying, note: 'bad\x1b[2Jname\n' }, 200)).toMatch(/ \| bad\?\[2Jname\?$/);
    expect(fitMiddle('abcdefghij', 7)).toBe('ab...ij');
  });
});

describe('RateMeter', () => {
  it('measures over a sliding window, unknown until half a second has passed', () => {
    const m = new RateMeter(10_000);
    m.reset(0, 0);
    m.add(200, 100);
    expect(m.rate).toBeNull();
    m.add(1000, 1000);
    expect(m.rate).toBe(1000);
    for (let t = 2000; t <= 20_000; t += 1000) m.add(t, 1000); // stalled since t=1 s
    expect(m.rate).toBe(0);
  });
});

/** A terminal stand-in: records what is written, with a width. */
class Screen extends Writable {
  data = '';
  columns = 40;
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.data += chunk.toString();
    cb();
  }
}

describe('TerminalLine', () => {
  it('redraws in place, erases itself before anyone else writes, and gives the streams back', () => {
    const out = new Screen();
    const err = new Screen();
    let changes = 0;
    const line = new TerminalLine(out as unknown as NodeJS.WriteStream, [err as unknown as NodeJS.WriteStream], () => changes++);
    expect(line.cols).toBe(39);
    line.draw('one');
    line.draw('one'); // unchanged: not written again
    line.draw('two');
    expect(out.data).toBe('\rone\x1b[K\rtwo\x1b[K');
    err.write('fcp: cannot open x\n');
    expect(out.data.endsWith('\r\x1b[K')).toBe(true);
    expect(changes).toBe(1);
    out.write('summary\n');
    expect(out.data.endsWith('\r\x1b[Ksummary\n')).toBe(true); // nothing to erase: already erased
    line.draw('three');
    line.close();
    expect(out.data.endsWith('\rthree\x1b[K\r\x1b[K')).toBe(true);
    const before = out.data;
    out.write('after\n');
    expect(out.data).toBe(`${before}after\n`);
  });
});

describe('ProgressLine', () => {
  it('names the phase, ignores counters a phase does not have, and erases itself when done', async () => {
    const out = new Screen();
    out.columns = 120;
    const p = new ProgressLine(out as unknown as NodeJS.WriteStream, { others: [], minIntervalMs: 10 });
    p.phase('walk');
    p.walk(500);
    expect(p.view()).toMatchObject({ label: 'walking', entries: { found: 500 } });
    p.phase('mkdir');
    p.walk(0); // the walk's callback still runs during mkdir: not shown
    expect(p.view().entries).toBeUndefined();
    p.phase('copy');
    p.copy(5 * MiB, 10 * MiB, 2, 4);
    p.note('stalled: read x 45 s');
    expect(p.view()).toMatchObject({ label: 'copying', data: { bytes: 5 * MiB, totalFiles: 4 }, note: 'stalled: read x 45 s' });
    await new Promise((r) => setTimeout(r, 50));
    expect(out.data).toMatch(/\rcopying \[#+\.+\] 50\.0% 5\.00\/10\.0 MiB 2\/4 files .* \| stalled: read x 45 s\x1b\[K$/);
    p.done();
    expect(out.data.endsWith('\r\x1b[K')).toBe(true);
    const n = out.data.length;
    p.copy(6 * MiB, 10 * MiB, 3, 4);
    await new Promise((r) => setTimeout(r, 50));
    expect(out.data.length).toBe(n);
  });

  it("rates and ETA count only the bytes this run moved, not an earlier run's skipped work", async () => {
    const p = new ProgressLine(new Screen() as unknown as NodeJS.WriteStream, { others: [] });
    p.phase('copy');
    p.copy(90 * MiB, 100 * MiB, 90, 100, 0); // a resume: 90 MiB done before
    await new Promise((r) => setTimeout(r, 600));
    p.copy(91 * MiB, 100 * MiB, 91, 100, 1 * MiB);
    const d = p.view().data!;
    p.done();
    expect(d.rate!).toBeLessThan(2 * MiB);
    expect(d.eta!).toBeGreaterThan(3); // 9 MiB left at under 2 MiB/s
  });
});

describe('the terminal model the tty tests check lines with', () => {
  it('tracks carriage return, erase to end of line and line feed', () => {
    const at = (s: string) => startsClean(s, s.indexOf('X'));
    expect(currentLine('\rabc\x1b[K')).toEqual({ text: 'abc', col: 3 });
    expect(at('\rabc\x1b[K\r\x1b[KX')).toBe(true);
    expect(at('\rabc\x1b[K^C\r\x1b[KX')).toBe(true);
    expect(at('abc\r\nX')).toBe(true);
    expect(at('\rabc\x1b[KX')).toBe(false);
    expect(at('abc\rX')).toBe(false);
  });
});
