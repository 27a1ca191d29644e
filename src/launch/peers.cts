/**
 * Who the ranks of a job are, and the error that names those that never showed up.
 * CommonJS (like self-launch.cts, which needs it): bin/ loads the self-launch before the
 * ES modules of the program, so no ES module may be on its path.
 */

import { FcpError } from '../fcp-error.cjs';

export interface PeerInfo { rank: number; endpoint: string; host: string; pid: number }

export class RendezvousTimeout extends FcpError {
  constructor(readonly missing: number[], timeoutMs: number, jobDir: string) {
    // All a rank can know here is that no endpoint came: the rank died, or never started.
    const many = missing.length > 1;
    super('RENDEZVOUS_TIMEOUT', `rank${many ? 's' : ''} ${formatRanks(missing)} never showed up in ${jobDir} within ${Math.round(timeoutMs / 1000)} s: ${many ? 'they' : 'it'} died or never started`);
  }
}

/** "1-3,7" style list of rank numbers. */
export function formatRanks(ranks: number[]): string {
  const s = [...ranks].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    out.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return out.join(',');
}
