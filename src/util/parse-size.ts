/** Sizes as users write them (--chunk-size, --bwlimit, limits files). */

/** Parse "64M", "1G", "4096", "1.5GiB" into bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(s.trim());
  if (!m) throw new Error(`not a size: '${s}' (use e.g. 64M, 1G, 4096)`);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 }[m[2]!.toLowerCase() as '' | 'k'];
  const v = Math.round(Number(m[1]) * mult);
  if (!(v > 0)) throw new Error(`size must be positive: '${s}'`);
  return v;
}
