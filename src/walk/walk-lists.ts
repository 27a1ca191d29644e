/**
 * The entries one rank found in the walk, kept for the phases after it (create
 * directories, copy, links, directory metadata).
 *
 * In memory up to a budget of entries; past it the lists spill to the rank's SQLite store
 * and the phases read them back lazily, so a rank's memory does not grow with the size of
 * the tree. How they spill depends on the store:
 * - the checkpoint (`listed`): it already holds every entry the walk found, in listings
 *   (checkpoint/listing.ts), so files and others are simply dropped from memory and read
 *   back from the listings; only directories (a small share, read by depth) become rows;
 * - a scratch store (no checkpoint): every entry becomes a row of its own.
 */
import { depthOf } from '../model/paths.js';
import type { RankStore } from '../checkpoint/rank-store.js';
import { STAT_RECORD_FIELDS, type Entry } from '../model/entry.js';
import { runEntries, type FileRun } from '../model/file-run.js';

export class WalkLists {
  private dirList: Entry[] = [];
  private fileList: Entry[] = [];
  /** symlinks, FIFOs, sockets, devices */
  private otherList: Entry[] = [];
  /** plain files as the walk got them, packed (model/file-run.ts): no object per file */
  private runs: FileRun[] = [];
  private spilled = false;
  /**
   * Plain files of at most this size were handed to the copy by the walk (walk-task.ts
   * WalkSink), not added here; the checkpoint's listings still hold them (a resume needs
   * every entry), so lists read back from listings leave them out. -1: none were.
   */
  private handedOnMax = -1;
  private deepest = -1;
  private count = 0;

  /**
   * @param store where entries go once they spill
   * @param budget entries kept in memory before spilling
   * @param listed the store records every entry of the walk in listings (the checkpoint)
   */
  constructor(private readonly store: RankStore | null = null, private readonly budget = Infinity, private readonly listed = false) {}

  /** The walk hands plain files of at most maxSize bytes to the copy (see handedOnMax). */
  handsOnFilesUpTo(maxSize: number): void {
    this.handedOnMax = maxSize;
  }

  /** Not a file of these lists: a plain file the walk handed on (read back from a listing). */
  private handedOn(e: Entry): boolean {
    return e.k === 'f' && e.p.length > 0 && !e.h && e.m.nlink === 1 && e.m.size <= this.handedOnMax; // (a root is listed alone, never handed on)
  }

  /** A listing's run without the files the walk handed on (null: none left). */
  private notHandedOn(run: FileRun): FileRun | null {
    if (this.handedOnMax < 0) return run;
    const idx = run.idx.filter((i) => run.stats[i * STAT_RECORD_FIELDS + 4]! > this.handedOnMax);
    return idx.length === 0 ? null : { ...run, idx };
  }

  get isSpilled(): boolean {
    return this.spilled;
  }

  add(e: Entry): void {
    this.count++;
    if (e.k === 'd') this.deepest = Math.max(this.deepest, depthOf(e.p));
    if (this.spilled && this.store) {
      if (e.k === 'd' || !this.listed) this.store.entry(e);
      // Spilled lists live only in the store: if it cannot be written, entries would be lost.
      if (this.store.broken) throw new Error(`the file lists no longer fit in memory and cannot be written to ${this.store.path}: ${this.store.broken.message}`);
      return;
    }
    if (e.k === 'd') this.dirList.push(e);
    else if (e.k === 'f') this.fileList.push(e);
    else this.otherList.push(e);
    this.spillIfOver();
  }

  /**
   * Plain files of one stat'ed batch, packed (regular, one link: see model/file-run.ts).
   * Kept as they are in memory; once spilled they go the way of add().
   */
  addRun(run: FileRun): void {
    if (this.spilled) {
      for (const e of runEntries(run)) this.add(e);
      return;
    }
    this.count += run.idx.length;
    this.runs.push(run);
    this.spillIfOver();
  }

  private spillIfOver(): void {
    if (this.store && this.count > this.budget) {
      if (!this.listed) for (const run of this.runs) for (const e of runEntries(run)) this.store.entry(e);
      for (const l of this.listed ? [this.dirList] : [this.dirList, this.fileList, this.otherList]) for (const x of l) this.store.entry(x);
      this.dirList = [];
      this.fileList = [];
      this.otherList = [];
      this.runs = [];
      this.spilled = true;
    }
  }

  /** Spilled files or others: from the listings, or from rows. */
  private *spilledOf(kind: 'f' | 'other'): Iterable<Entry> {
    if (!this.listed) {
      yield* this.store!.read(kind === 'f' ? `kind = 'f'` : `kind NOT IN ('f', 'd')`);
      return;
    }
    for (const e of this.store!.readListed()) if (kind === 'f' ? e.k === 'f' && !this.handedOn(e) : e.k !== 'f' && e.k !== 'd') yield e;
  }

  private check(): void {
    if (this.spilled && this.store?.broken) throw new Error(`the spilled file lists in ${this.store.path} are incomplete: ${this.store.broken.message}`);
  }

  *files(): Iterable<Entry> {
    this.check();
    if (this.spilled) {
      yield* this.spilledOf('f');
      return;
    }
    yield* this.fileList;
    for (const run of this.runs) yield* runEntries(run);
  }

  /**
   * Every file, plain ones in packed runs (in memory, or once spilled as the checkpoint's
   * listings have them), the others (hard-linked) as entries: in one pass.
   */
  *filesPacked(): Iterable<Entry | FileRun> {
    this.check();
    if (!this.spilled) {
      yield* this.fileList;
      yield* this.runs;
    } else if (!this.listed) yield* this.spilledOf('f');
    else {
      for (const x of this.store!.readListedPacked()) {
        if ('idx' in x) {
          const run = this.notHandedOn(x);
          if (run) yield run;
        } else if (x.k === 'f') yield x;
      }
    }
  }

  *dirs(): Iterable<Entry> {
    this.check();
    if (this.spilled) yield* this.store!.read(`kind = 'd'`);
    else yield* this.dirList;
  }

  *others(): Iterable<Entry> {
    this.check();
    if (this.spilled) yield* this.spilledOf('other');
    else yield* this.otherList;
  }

  /** Regular files with more than one link (hard-link groups). */
  *hardlinked(): Iterable<Entry> {
    if (!this.spilled) {
      for (const e of this.fileList) if (e.h) yield e;
    } else if (this.listed) {
      // (plain files come back as runs, not unpacked: they have one link)
      this.check();
      for (const x of this.store!.readListedPacked()) if (!('idx' in x) && x.h) yield x;
    } else {
      yield* this.store!.read(`kind = 'f' AND hkey IS NOT NULL`);
    }
  }

  /** Directories of one depth (for the bottom-up metadata pass). */
  *dirsAtDepth(depth: number): Iterable<Entry> {
    if (this.spilled) yield* this.store!.read(`kind = 'd' AND depth = ${Math.trunc(depth)}`);
    else for (const d of this.dirList) if (depthOf(d.p) === depth) yield d;
  }

  /** Deepest directory level held here (-1 when none). */
  maxDirDepth(): number {
    return this.deepest;
  }
}
