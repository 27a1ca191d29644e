/**
 * The text of the progress line, fitted to the terminal: pure, so its widths, units and
 * ETA are unit-tested (test/unit/progress-format.test.ts).
 *
 *   copying [#########.........]  42.3% 1.21/2.88 GiB 1,234/5,678 files 312 MiB/s ETA 3m05s | NOTE
 *   walking 123,456 entries 4,567/s 12s
 *   setting directory metadata 3s
 *
 * When the terminal is narrower than the whole line, the least useful fields go first
 * (elapsed, files, rate, bytes, ETA; the bar takes only the room that is left over),
 * a status note is cut in the middle, and the result never takes more than `cols` columns.
 */
import { formatBytes, formatCount, formatEta, formatRate } from './format.js';
import { cutToWidth, displayWidth, fitMiddle, printable } from './text-width.js';

export interface LineView {
  /** what the phase is called (phases.ts) */
  label: string;
  /** walk: entries found so far (the total is unknown) and how many a second */
  entries?: { found: number; rate: number | null };
  /** a phase that moves data: done and total bytes and files, bytes a second, seconds left */
  data?: { bytes: number; totalBytes: number; files: number; totalFiles: number; rate: number | null; eta: number | null };
  /** seconds since the phase began */
  elapsed: number;
  /** a status note shown at the end (a stalled request...), or null */
  note: string | null;
}

/** A field of the line; fields with a lower `keep` are dropped first when space is short. */
interface Field { text: string; keep: number }

const BAR_MIN = 8;
const BAR_MAX = 30;
/** a note gets at least this many columns (or its own width) before fields are dropped for it */
const NOTE_MIN = 24;
const NOTE_SEP = ' | ';

export function percentOf(d: NonNullable<LineView['data']>): number {
  const p = d.totalBytes > 0 ? d.bytes / d.totalBytes : d.totalFiles > 0 ? d.files / d.totalFiles : 1;
  return Math.min(100, Math.max(0, 100 * p));
}

/** `1.21/2.88 GiB` when both have the same unit, else `512 MiB/2.88 GiB`. */
function bytesOfTotal(done: number, total: number): string {
  const a = formatBytes(done);
  const b = formatBytes(total);
  const [an, au] = a.split(' ');
  const [bn, bu] = b.split(' ');
  return au === bu ? `${an}/${bn} ${bu}` : `${a}/${b}`;
}

function fields(v: LineView): Field[] {
  const f: Field[] = [{ text: v.label, keep: 9 }];
  if (v.data) {
    const d = v.data;
    f.push({ text: `${percentOf(d).toFixed(1)}%`, keep: 10 });
    f.push({ text: bytesOfTotal(d.bytes, d.totalBytes), keep: 6 });
    if (d.totalFiles > 0 || d.files > 0) f.push({ text: `${formatCount(d.files)}/${formatCount(d.totalFiles)} files`, keep: 3 });
    f.push({ text: formatRate(d.rate), keep: 5 });
    f.push({ text: `ETA ${formatEta(d.eta)}`, keep: 7 });
  } else if (v.entries) {
    f.push({ text: `${formatCount(v.entries.found)} entries`, keep: 10 });
    f.push({ text: v.entries.rate === null ? '--/s' : `${formatCount(Math.round(v.entries.rate))}/s`, keep: 5 });
    f.push({ text: formatEta(v.elapsed), keep: 2 });
  } else {
    f.push({ text: formatEta(v.elapsed), keep: 2 });
  }
  return f;
}

const widthOf = (fs: Field[]) => fs.reduce((a, x) => a + displayWidth(x.text), 0) + Math.max(0, fs.length - 1);

/** The line for `v` in at most `cols` columns (no control characters, no line end). */
export function formatLine(v: LineView, cols: number): string {
  if (cols <= 0) return '';
  let fs = fields(v);
  const note = v.note ? printable(v.note) : '';
  const noteWant = note ? NOTE_SEP.length + Math.min(displayWidth(note), NOTE_MIN) : 0;
  // Drop the least useful fields until the rest and the note's minimum fit.
  while (fs.length > 1 && widthOf(fs) + noteWant > cols) {
    const drop = fs.reduce((lo, x) => (x.keep < lo.keep ? x : lo));
    fs = fs.filter((x) => x !== drop);
  }
  let room = cols - widthOf(fs);
  let tail = '';
  if (note && room >= NOTE_SEP.length + 4) {
    tail = NOTE_SEP + fitMiddle(note, room - NOTE_SEP.length);
    room -= displayWidth(tail);
  }
  // The bar takes what is left, after the label.
  if (v.data && room >= BAR_MIN + 3) {
    const w = Math.min(BAR_MAX, room - 3);
    const fill = Math.floor((w * percentOf(v.data)) / 100);
    fs.splice(1, 0, { text: `[${'#'.repeat(fill)}${'.'.repeat(w - fill)}]`, keep: 0 });
  }
  return cutToWidth(fs.map((x) => x.text).join(' ') + tail, cols);
}
