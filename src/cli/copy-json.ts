/**
 * fcp's `--json` object, printed on every exit (see json-on-exit.ts): the summary's
 * counters, as far as they are known, then how the job ended.
 */
import { ranToEnd, type Ending } from './json-on-exit.js';
import { emptySummary, type CopySummary } from '../jobs/copy-summary.js';

/** `ranks` (each rank's share) only when the job ran to its end: an early exit does not know them. */
export type CopyJson = Omit<CopySummary, 'ranks'> & Partial<Pick<CopySummary, 'ranks'>> & Ending;

/** fcp's --json object: the counters (what is known of them), then how the job ended. */
export function copyJson(known: Partial<CopySummary>, end: Ending): CopyJson {
  const s = { ...emptySummary(), ...known };
  if (known.seconds === undefined) {
    s.seconds = performance.now() / 1000;
    s.bytesPerSecond = s.bytesCopied / Math.max(s.seconds, 1e-9);
  }
  const { ranks, ...counters } = s;
  return { ...counters, ...(ranToEnd(end.exitCode) ? { ranks } : {}), ...end };
}
