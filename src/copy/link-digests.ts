/**
 * The signature's share of hard-linked names that are not their group's primary.
 *
 * Such a name is never read (it becomes a link to the primary's copy), yet fsum counts
 * it as a file with its own path and the primary's content: its entry digest needs the
 * primary's content digest, which only the rank that copied the primary knows. Rather
 * than every rank learning every primary's digest, each rank sends the digests of the
 * primaries it read (of groups of several names: link-names.ts keeps only those) to
 * their groups' owners (bounded rounds), and each owner, which holds every name of its
 * groups with root, path and size (link-groups.ts), adds the secondaries' entry digests
 * itself. A secondary whose primary's digest is unknown (not read, or failed) is counted
 * missing: the signature would lack it.
 *
 * The ranks that found the secondaries add nothing for them.
 */
import type { Runtime } from '../engine/runtime.js';
import { exchange } from '../engine/exchange.js';
import { fromHex, isHex128 } from '../checksum/hasher.js';
import type { CopyDigests } from './copy-digests.js';
import { ownerOf, type HardLinks } from './hardlinks.js';
import type { ContentRec } from './link-groups.js';

/** Collective: every rank calls it once, after every primary is copied and finished. */
export async function sumSecondaries(rt: Runtime, links: HardLinks, digests: CopyDigests): Promise<void> {
  const isContent = (x: unknown): x is ContentRec => Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && isHex128(x[1]);
  const toOwners = function* (): Generator<[number, ContentRec]> {
    for (const rec of links.names.contents()) yield [ownerOf(rec[0], rt.size), rec];
  };
  await exchange(rt.collectives, toOwners(), isContent, (_from, recs) => links.groups.addContent(recs));
  for (const s of links.groups.secondaryContent()) digests.secondary(s.root, s.path, s.size, s.digest === null ? null : fromHex(s.digest));
}
