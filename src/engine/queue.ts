/**
 * A rank's work queue: LIFO for its owner (depth-first keeps the queue short and the
 * working set warm), oldest-first for thieves (old items are near the root of the
 * work tree and tend to expand into the most work).
 */
export class WorkQueue<I> {
  private items: I[] = [];

  get length(): number {
    return this.items.length;
  }

  push(item: I): void {
    this.items.push(item);
  }

  /** The newest item, or undefined. */
  pop(): I | undefined {
    return this.items.pop();
  }

  /** Remove and return up to n of the oldest items. */
  takeOldest(n: number): I[] {
    if (n <= 0) return [];
    return this.items.splice(0, Math.min(n, this.items.length));
  }

  clear(): void {
    this.items = [];
  }
}
