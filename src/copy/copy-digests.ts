/**
 * What the copy learns about the source's content from the bytes it reads: the same
 * digests fsum computes (checksum/), so `fcp --signature` equals `fsum SRC` without a
 * second read, and `--verify` can compare the destination with what was read.
 *
 * Per rank: the sum of the entry digests it is responsible for and the partial digests
 * of the chunks it copied (combined by each large file's owner). The content digests of
 * hard-linked files it read go to `onLinkContent`: the other names of their groups need
 * them, and are summed by their groups' owners (link-digests.ts).
 */
import type { Runtime } from '../engine/runtime.js';
import { entryDigest, targetDigest } from '../checksum/entry-digest.js';
import { addDigests, digestFromBytes, fileDigest, fromHex, isHex128, toHex } from '../checksum/hasher.js';
import type { Entry } from '../model/entry.js';

export type ChunkPartial = [key: string, off: number, digest: string];

export class CopyDigests {
  private sum = 0n;
  /** entries whose digest this rank could not know (unreadable, or done by a run without hashing) */
  missing = 0;
  readonly chunkPartials: ChunkPartial[] = [];

  /** @param onLinkContent told the content digest (hex) of every hard-linked file read, by link key */
  constructor(private readonly onLinkContent: (h: string, digest: string) => void = () => {}) {}

  file(e: Entry, content: bigint | null): void {
    if (content === null) {
      this.missing++;
      return;
    }
    this.sum = addDigests(this.sum, entryDigest({ root: e.r, path: e.p, kind: 'f', size: e.m.size, content }));
    if (e.h) this.onLinkContent(e.h, toHex(content));
  }

  /**
   * The files a native batch copied: the sum of their entry digests, computed there
   * (16 bytes big-endian, see native/src/batch.cc), in place of one file() call each.
   */
  addEntrySum(sum: Uint8Array): void {
    this.sum = addDigests(this.sum, digestFromBytes(sum));
  }

  /** A hard-linked primary a native batch copied: its content digest (hex), which its other names need. */
  linkPrimary(h: string, contentHex: string): void {
    this.onLinkContent(h, contentHex);
  }

  /**
   * Another name of a hard-linked file (not read: linked to its primary's copy), summed
   * by its group's owner with the primary's content digest (null: unknown, missing).
   */
  secondary(root: number, path: Buffer, size: number, content: bigint | null): void {
    if (content === null) {
      this.missing++;
      return;
    }
    this.sum = addDigests(this.sum, entryDigest({ root, path, kind: 'f', size, content }));
  }

  symlink(e: Entry, target: Buffer): void {
    this.sum = addDigests(this.sum, entryDigest({ root: e.r, path: e.p, kind: 'l', target: targetDigest(target) }));
  }

  /** Directories, FIFOs, sockets, devices: path and type only. */
  plain(e: Entry): void {
    this.sum = addDigests(this.sum, entryDigest({ root: e.r, path: e.p, kind: e.k }));
  }

  chunk(key: string, off: number, partial: string | null): void {
    if (partial === null) this.missing++;
    else this.chunkPartials.push([key, off, partial]);
  }

  /** What another accumulator of this rank learnt (the copy overlapped with the walk: plain files only). */
  absorb(other: CopyDigests): void {
    this.sum = addDigests(this.sum, other.sum);
    this.missing += other.missing;
    this.chunkPartials.push(...other.chunkPartials);
  }

  /** Every rank's chunk partials by file key (large files are few: one entry per chunk). */
  async gatherChunks(rt: Runtime): Promise<Map<string, Map<number, bigint>>> {
    const isList = (x: unknown): x is ChunkPartial[] =>
      Array.isArray(x) && x.every((c) => Array.isArray(c) && typeof c[0] === 'string' && Number.isSafeInteger(c[1]) && isHex128(c[2]));
    const all = (await rt.collectives.allgather<ChunkPartial[]>(this.chunkPartials, isList)).flat();
    const byFile = new Map<string, Map<number, bigint>>();
    for (const [k, off, d] of all) {
      if (!byFile.has(k)) byFile.set(k, new Map());
      byFile.get(k)!.set(off, fromHex(d));
    }
    return byFile;
  }

  /** A large file's content digest from its chunks' partials, or null if one is missing. */
  static combine(partials: Map<number, bigint> | undefined, size: number, chunks: [number, number][]): bigint | null {
    if (!partials || chunks.some(([o]) => !partials.has(o))) return null;
    return fileDigest(chunks.map(([o]) => partials.get(o)!), size);
  }

  /** This rank's share of the signature (hex; see signatureOf), for a collective that gathers every rank's. */
  share(): string {
    return toHex(this.sum);
  }

  /** The dataset signature from every rank's share (the sum of their sums: any order gives the same). */
  static signatureOf(shares: readonly string[]): bigint {
    return shares.reduce((a, s) => addDigests(a, fromHex(s)), 0n);
  }
}
