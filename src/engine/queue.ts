/**
 * A rank's work queue: LIFO for its owner (depth-first keeps the queue short and the
 * working set warm), oldest-first for thieves (old items are near the root of the work
 * tree and tend to expand into the most work).
 *
 * Bounded memory: past `maxInMemory` items, the oldest half is written to a spill store
 * in one batch (msgpack rows in a SQLite file, see spill.ts) and read back a batch at a
 * time when the in-memory part runs dry. Order is kept: spilled batches are older than
 * anything in memory, and newer batches have higher ids.
 */
import { Packr } from '../util/cjs-deps.js';
import type { SpillStore } from './spill.js';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export class WorkQueue<I> {
  private items: I[] = [];
  private spilledCount = 0;
  /** Items ever written to the spill store (for reports). */
  spilledTotal = 0;
  private spill: SpillStore | null = null;

  /** `makeSpill` is called on the first spill only: most phases never need one. */
  constructor(private readonly maxInMemory = Infinity, private readonly makeSpill: (() => SpillStore) | null = null) {}

  get length(): number {
    return this.items.length + this.spilledCount;
  }

  get spilled(): number {
    return this.spilledCount;
  }

  push(item: I): void {
    this.items.push(item);
    if (this.makeSpill && this.items.length > this.maxInMemory) {
      this.spill ??= this.makeSpill();
      const out = this.items.splice(0, Math.floor(this.items.length / 2));
      this.spill.push(packr.pack(out), out.length);
      this.spilledCount += out.length;
      this.spilledTotal += out.length;
    }
  }

  /** The newest item, or undefined. */
  pop(): I | undefined {
    if (this.items.length === 0 && this.spilledCount > 0) this.reload(this.spill!.popNewest());
    return this.items.pop();
  }

  /**
   * The newest item `ok` accepts among the newest `scan` held in memory, removed; undefined
   * if none (spilled items are older than all of these and are not looked at).
   */
  popNewestWhere(ok: (item: I) => boolean, scan: number): I | undefined {
    if (this.items.length === 0 && this.spilledCount > 0) this.reload(this.spill!.popNewest());
    const stop = Math.max(0, this.items.length - scan);
    for (let i = this.items.length - 1; i >= stop; i--) {
      if (ok(this.items[i]!)) return this.items.splice(i, 1)[0];
    }
    return undefined;
  }

  /** Remove and return up to n of the oldest items. */
  takeOldest(n: number): I[] {
    if (n <= 0) return [];
    if (this.spilledCount > 0) {
      const row = this.spill!.popOldest();
      if (row) {
        const batch = packr.unpack(row.data) as I[];
        this.spilledCount -= batch.length;
        const give = batch.splice(0, n);
        if (batch.length > 0) {
          this.spill!.putBack(row.id, packr.pack(batch), batch.length);
          this.spilledCount += batch.length;
        }
        return give;
      }
    }
    return this.items.splice(0, Math.min(n, this.items.length));
  }

  private reload(row: { id: number; data: Buffer } | null): void {
    if (!row) return;
    const batch = packr.unpack(row.data) as I[];
    this.spilledCount -= batch.length;
    this.items = batch.concat(this.items);
  }

  /** Drop everything and remove the spill file. */
  close(): void {
    this.items = [];
    this.spill?.close();
    this.spill = null;
    this.spilledCount = 0;
  }
}
