/**
 * What the transport turned away, said in words: for the one line on stderr at the end
 * of a job and the rank's --log-dir file. Nothing is said when nothing was dropped.
 */
import type { DropCounts } from './codec.js';

const REASONS: [keyof DropCounts, string][] = [
  ['secret', 'wrong secret'],
  ['malformed', 'malformed'],
  ['version', 'other protocol version'],
  ['sender', 'unknown sender rank'],
  ['body', 'invalid body'],
];

export const emptyDrops = (): DropCounts => ({ malformed: 0, version: 0, secret: 0, sender: 0, body: 0, address: 0 });

/** Counts from a record of numbers (a sum over ranks); missing reasons are 0. */
export function dropCountsOf(c: Record<string, number>): DropCounts {
  const out = emptyDrops();
  for (const k of Object.keys(out) as (keyof DropCounts)[]) out[k] = c[k] ?? 0;
  return out;
}

export function droppedMessages(c: DropCounts): number {
  return REASONS.reduce((n, [k]) => n + c[k], 0);
}

/** "dropped 3 messages that did not come from this job (wrong secret 1, malformed 2); refused 1 connection ...", or null. */
export function describeDrops(c: DropCounts): string | null {
  const n = droppedMessages(c);
  const parts: string[] = [];
  if (n > 0) {
    const why = REASONS.filter(([k]) => c[k] > 0).map(([k, label]) => `${label} ${c[k]}`).join(', ');
    parts.push(`dropped ${n} message${n === 1 ? '' : 's'} that did not come from this job (${why})`);
  }
  if (c.address > 0) parts.push(`refused ${c.address} connection${c.address === 1 ? '' : 's'} from addresses outside the job`);
  return parts.length > 0 ? parts.join('; ') : null;
}
