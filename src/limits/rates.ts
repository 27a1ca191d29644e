/**
 * The job-wide limits an operator sets (--bwlimit, --max-ops, and the lines of
 * --limits-file): parsing and display. Pure functions.
 *
 * A limit is a rate per second for the whole job, shared by its ranks; 0 means unlimited
 * (written `0` or `none`).
 */
import { parseSize } from '../util/parse-size.js';
import { formatBytes, formatCount } from '../progress/format.js';

export interface JobLimits {
  /** data bytes per second, summed over the ranks; 0: unlimited */
  bytesPerSecond: number;
  /** metadata operations per second (see README "Limits" for what counts); 0: unlimited */
  opsPerSecond: number;
}

export const UNLIMITED: JobLimits = { bytesPerSecond: 0, opsPerSecond: 0 };

/** `2G`, `500M`, `1.5G/s`, `20MiB`; `0` or `none`: unlimited. Throws with the reason. */
export function parseBwlimit(s: string): number {
  const v = s.trim().replace(/\/s$/i, '');
  if (/^(none|0+)$/i.test(v)) return 0;
  const n = parseSize(v);
  if (!Number.isSafeInteger(n)) throw new Error(`too large: '${s}'`);
  return n;
}

/** `5000`, `2.5k`; `0` or `none`: unlimited. Throws with the reason. */
export function parseMaxOps(s: string): number {
  const v = s.trim().replace(/\/s$/i, '');
  if (/^none$/i.test(v)) return 0;
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(v);
  if (!m) throw new Error(`not a number of operations per second: '${s}' (use e.g. 5000, 2k, none)`);
  const n = Math.round(Number(m[1]) * { '': 1, k: 1e3, m: 1e6 }[m[2]!.toLowerCase() as '' | 'k' | 'm']);
  if (!Number.isSafeInteger(n)) throw new Error(`too large: '${s}'`);
  return n;
}

/** What a limits file says: the limits it names (others undefined) and its bad lines. */
export interface LimitsText {
  bytesPerSecond?: number;
  opsPerSecond?: number;
  bad: { line: number; text: string; why: string }[];
}

/**
 * A limits file: `bwlimit=1G`, `max-ops=5000` (spaces around `=` allowed), one a line;
 * blank lines and `#` comments skipped. A later line of the same key wins. A line that
 * cannot be read is returned in `bad` (the caller names it and goes on without it).
 */
export function parseLimitsText(text: string): LimitsText {
  const out: LimitsText = { bad: [] };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const m = /^([a-z-]+)\s*=\s*(.*)$/i.exec(line);
    const bad = (why: string) => out.bad.push({ line: i + 1, text: raw.trim(), why });
    if (!m) {
      bad('not key=value (bwlimit=RATE or max-ops=RATE)');
      continue;
    }
    const key = m[1]!.toLowerCase();
    try {
      if (key === 'bwlimit') out.bytesPerSecond = parseBwlimit(m[2]!);
      else if (key === 'max-ops') out.opsPerSecond = parseMaxOps(m[2]!);
      else bad(`unknown key '${m[1]}' (bwlimit, max-ops)`);
    } catch (err) {
      bad((err as Error).message);
    }
  }
  return out;
}

/** The limits in force: what the file names, else what the command line gave. */
export function effectiveLimits(cli: JobLimits, file: LimitsText | null): JobLimits {
  return {
    bytesPerSecond: file?.bytesPerSecond ?? cli.bytesPerSecond,
    opsPerSecond: file?.opsPerSecond ?? cli.opsPerSecond,
  };
}

export const sameLimits = (a: JobLimits, b: JobLimits) => a.bytesPerSecond === b.bytesPerSecond && a.opsPerSecond === b.opsPerSecond;

export const isLimited = (l: JobLimits) => l.bytesPerSecond > 0 || l.opsPerSecond > 0;

/** `bwlimit 40 MiB/s, max-ops unlimited` */
export function showLimits(l: JobLimits): string {
  const bw = l.bytesPerSecond > 0 ? `${formatBytes(l.bytesPerSecond)}/s` : 'unlimited';
  const ops = l.opsPerSecond > 0 ? `${formatCount(l.opsPerSecond)}/s` : 'unlimited';
  return `bwlimit ${bw}, max-ops ${ops}`;
}

export function isJobLimits(x: unknown): x is JobLimits {
  if (typeof x !== 'object' || x === null) return false;
  const l = x as Record<string, unknown>;
  const ok = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  return ok(l.bytesPerSecond) && ok(l.opsPerSecond);
}
