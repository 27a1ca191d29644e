/**
 * Hard-link groups across ranks, in memory that does not grow with the number of links.
 *
 * Names of one inode may be found by different ranks, and all must agree on the group's
 * primary, its smallest (root, path): the primary is copied, the other names (the
 * secondaries) become links to its copy once it is in place.
 *
 * Rather than every rank learning every multi-link file (an allgather, which a hard-link
 * farm such as rsnapshot-style backups makes as large as the tree, on every rank), each
 * group has an owner rank, a hash of its link key:
 *   1. every rank sends the hard-linked names it found to their groups' owners;
 *   2. an owner keeps the names it receives in a temporary database (link-groups.ts)
 *      and picks each group's primary;
 *   3. it sends each rank back that rank's names that are secondaries, with their
 *      primary, and those that are primaries of groups of several names; the rank keeps
 *      them in its own temporary database (link-names.ts).
 * Both exchanges go in bounded rounds (engine/exchange.ts). The owners keep the names:
 * the signature needs them after the copy (link-digests.ts).
 */
import type { Runtime } from '../engine/runtime.js';
import { exchange } from '../engine/exchange.js';
import { hasDotDot, isBuf, type Entry } from '../model/entry.js';
import { LinkGroups, type NameRec, type RoleRec } from './link-groups.js';
import { LinkNames, type Secondary } from './link-names.js';

/** The rank that owns the group of link key `key` (FNV-1a: the same on every rank and every run). */
export function ownerOf(key: string, size: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619) >>> 0;
  return h % size;
}

/** Link keys are "dev:ino" strings (entry.ts); anything much longer is not one. */
const MAX_KEY = 128;

export class HardLinks {
  constructor(
    /** the groups this rank owns */
    readonly groups: LinkGroups,
    /** this rank's own names' roles, and the digests of the primaries it read */
    readonly names: LinkNames,
    /** no rank found a hard-linked file (the plan made no exchange): the links phase has nothing to do anywhere */
    readonly none = false,
  ) {}

  /** The plan of a job in which no rank found a file with more than one link. */
  static empty(): HardLinks {
    const groups = new LinkGroups();
    groups.seal();
    return new HardLinks(groups, new LinkNames(), true);
  }

  /**
   * How this rank copies a file it found: null for a secondary (not copied: linked to its
   * primary's copy later); without its link key when no other name of it is in the copy
   * (a plain file then: nobody needs its digest); as it is otherwise (a primary: whichever
   * rank copies it, a thief included, records its content digest for the group's owner).
   * A point query for hard-linked files only.
   */
  copyAs(e: Entry): Entry | null {
    if (e.h === undefined) return e;
    const role = this.names.role(e.r, e.p);
    if (role === 'secondary') return null;
    if (role === 'primary') return e;
    const { h: _h, ...plain } = e;
    return plain;
  }

  /** This rank's secondaries, lazily. */
  secondaries(): Iterable<Secondary> {
    return this.names.secondaries();
  }

  /** Bytes of this rank's secondaries: data the copy does not write again. */
  secondaryBytes(): number {
    return this.names.secondaryBytes();
  }

  /** A primary this rank read, with its content digest (hex): its group's owner needs it. */
  primaryContent(key: string, digest: string): void {
    this.names.primaryContent(key, digest);
  }

  close(): void {
    this.groups.close();
    this.names.close();
  }
}

/** Collective: every rank calls it with the hard-linked files (e.h set) it found. */
export async function planHardLinks(rt: Runtime, mine: Iterable<Entry>, roots: number): Promise<HardLinks> {
  const isRoot = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) < roots;
  const isPath = (x: unknown): x is Buffer => isBuf(x) && !hasDotDot(x as Buffer);
  const isSize = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  const isName = (x: unknown): x is NameRec =>
    Array.isArray(x) && x.length === 4 && typeof x[0] === 'string' && x[0].length <= MAX_KEY && isRoot(x[1]) && isPath(x[2]) && isSize(x[3]);
  const isRole = (x: unknown): x is RoleRec =>
    Array.isArray(x) && isRoot(x[0]) && isPath(x[1]) && (x.length === 2 || (x.length === 5 && isSize(x[2]) && isRoot(x[3]) && isPath(x[4])));

  const groups = new LinkGroups();
  const names = new LinkNames();
  try {
    const toOwners = function* (): Generator<[number, NameRec]> {
      for (const e of mine) if (e.h !== undefined) yield [ownerOf(e.h, rt.size), [e.h, e.r, e.p, e.m.size]];
    };
    await exchange(rt.collectives, toOwners(), isName, (from, recs) => groups.addNames(from, recs));
    groups.seal();
    await exchange(rt.collectives, groups.roles(), isRole, (_from, recs) => names.addRoles(recs));
  } catch (err) {
    groups.close();
    names.close();
    throw err;
  }
  return new HardLinks(groups, names);
}
