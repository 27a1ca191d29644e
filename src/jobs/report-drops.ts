/**
 * End of a job, every tool: what the transport turned away (see transport/drop-report.ts).
 * Collective. The sum over ranks goes into the summary; rank 0 says it once on stderr;
 * each rank notes its own count where it logs (fcp's --log-dir file).
 */
import type { Runtime } from '../engine/runtime.js';
import type { DropCounts } from '../transport/codec.js';
import { describeDrops, dropCountsOf } from '../transport/drop-report.js';

export async function reportDrops(rt: Runtime, tool: string, note?: (where: string, what: string) => void): Promise<DropCounts> {
  const mine = dropCountsOf(rt.dropped);
  return sayDrops(rt, tool, mine, await rt.droppedEverywhere(), note);
}

/**
 * The same, for a job whose last collective gathered the counts already: `mine` this
 * rank's (as they were sent), `all` their sum over ranks.
 */
export function sayDrops(rt: Runtime, tool: string, mine: DropCounts, all: DropCounts, note?: (where: string, what: string) => void): DropCounts {
  const own = describeDrops(mine);
  if (own && note) note(rt.endpoint ?? `rank ${rt.rank}`, own);
  const said = describeDrops(all);
  if (said && rt.rank === 0) process.stderr.write(`${tool}: ${said}\n`);
  return all;
}
