/**
 * End of a job, every tool: what the transport turned away (see transport/drop-report.ts).
 * Collective. The sum over ranks goes into the summary; rank 0 says it once on stderr;
 * each rank notes its own count where it logs (fcp's --log-dir file).
 */
import type { Runtime } from '../engine/runtime.js';
import type { DropCounts } from '../transport/codec.js';
import { describeDrops, dropCountsOf } from '../transport/drop-report.js';

export async function reportDrops(rt: Runtime, tool: string, note?: (where: string, what: string) => void): Promise<DropCounts> {
  const mine = describeDrops(dropCountsOf(rt.dropped));
  if (mine && note) note(rt.endpoint ?? `rank ${rt.rank}`, mine);
  const all = await rt.droppedEverywhere();
  const said = describeDrops(all);
  if (said && rt.rank === 0) process.stderr.write(`${tool}: ${said}\n`);
  return all;
}
