/**
 * Hard-link groups across ranks. Names of one inode may be found by different ranks;
 * every rank learns every multi-link file (an allgather: such files are few in practice)
 * and all agree on the group's primary, its smallest (root, path): the primary is copied,
 * the other names become links to its copy once it is in place.
 */
import type { Runtime } from '../engine/runtime.js';
import { isBuf, type Entry } from '../walk/entry.js';

type LinkRec = [key: string, root: number, path: Buffer];

export interface LinkPlan {
  /** this rank's names that are links to another name's copy, with that name */
  secondaries: { e: Entry; primary: { r: number; p: Buffer } }[];
  /** fileKey-style keys of this rank's secondaries: not copied */
  isSecondary(e: Entry): boolean;
}

export async function planHardLinks(rt: Runtime, mine: Iterable<Entry>): Promise<LinkPlan> {
  const isRecs = (x: unknown): x is LinkRec[] =>
    Array.isArray(x) && x.every((l) => Array.isArray(l) && l.length === 3 && typeof l[0] === 'string' && Number.isInteger(l[1]) && isBuf(l[2]));
  const own: Entry[] = [...mine];
  const all = (await rt.collectives.allgather<LinkRec[]>(own.map((e) => [e.h!, e.r, e.p]), isRecs)).flat();
  const primary = new Map<string, LinkRec>();
  for (const l of all) {
    const p = primary.get(l[0]);
    if (!p || l[1] < p[1] || (l[1] === p[1] && Buffer.compare(l[2], p[2]) < 0)) primary.set(l[0], l);
  }
  const secondaries: LinkPlan['secondaries'] = [];
  const keys = new Set<string>();
  for (const e of own) {
    const p = primary.get(e.h!)!;
    if (p[1] === e.r && p[2].equals(e.p)) continue;
    secondaries.push({ e, primary: { r: p[1], p: p[2] } });
    keys.add(`${e.r}:${e.p.toString('hex')}`);
  }
  return { secondaries, isSecondary: (e) => e.h !== undefined && keys.has(`${e.r}:${e.p.toString('hex')}`) };
}
