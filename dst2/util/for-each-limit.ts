/** Run `fn` over items with at most `n` in flight, pulling items lazily (works on generators). */
export async function forEachLimit<T>(items: Iterable<T>, n: number, fn: (t: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]();
  await Promise.all(Array.from({ length: n }, async () => {
    for (let r = it.next(); !r.done; r = it.next()) await fn(r.value);
  }));
}
