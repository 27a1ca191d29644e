/**
 * Routing a stream of records to the ranks they are for, in bounded rounds.
 *
 * Each rank has a stream of (destination rank, record) pairs, possibly far larger than
 * memory (read lazily from a database). In each round every rank takes at most
 * `roundSize` records (by default the collectives' `exchangeRound`, a runtime option)
 * off its stream, sends every rank its share in one all-to-all, and hands what it
 * received to `deliver`. A rank whose stream is exhausted still takes part (it sends
 * empty shares) until every stream is: each share says whether its sender has
 * records left, so after a round every rank has seen the same flags and all stop after
 * the same round, with no collective of their own. (When no rank has any record at all,
 * one allreduce settles it and there is no round.)
 *
 * Memory per round: the records this rank sends (at most roundSize) and those it receives
 * (at most roundSize from each rank; about roundSize when destinations are spread by a
 * hash, size x roundSize when every rank sends everything to one).
 *
 * Collective: every rank calls it, in the same order relative to the other collectives.
 * Generic: records are opaque to it, validated by the caller's `isRecord`.
 */
import type { Collectives } from './collectives.js';

export { DEFAULT_ROUND } from './collectives.js';

/** One rank's share for one destination in one round: whether it has records left, and the records. */
type Share<R> = [more: boolean, records: R[]];

export interface ExchangeStats {
  rounds: number;
  /** records this rank sent (its own share included) */
  sent: number;
  /** records this rank received (its own share included) */
  received: number;
}

/**
 * Send every record of `records` to its destination rank; `deliver` gets, round by
 * round and in rank order of the sender, the records sent to this rank (a rank's records
 * to itself included). Resolves when every rank's stream is exhausted and delivered.
 */
export async function exchange<R>(
  coll: Collectives,
  records: Iterable<readonly [to: number, record: R]>,
  isRecord: (x: unknown) => x is R,
  deliver: (from: number, records: R[]) => void | Promise<void>,
  opts: { roundSize?: number } = {},
): Promise<ExchangeStats> {
  const size = coll.size;
  // Ranks need not agree on the round size: rounds end on the flags, not on counts.
  const max = Math.max(1, Math.floor(opts.roundSize ?? coll.exchangeRound));
  const isShare = (x: unknown): x is Share<R> =>
    Array.isArray(x) && x.length === 2 && typeof x[0] === 'boolean' && Array.isArray(x[1]) && x[1].every(isRecord);
  const it = records[Symbol.iterator]();
  // One record of look-ahead: a share must say whether more follow.
  let next = it.next();
  const stats: ExchangeStats = { rounds: 0, sent: 0, received: 0 };
  try {
    // Nothing to send anywhere (say, a tree without hard links): one allreduce along the
    // tree tells every rank so, instead of a round of size x size empty messages.
    const isBool = (x: unknown): x is boolean => typeof x === 'boolean';
    if (!(await coll.allreduce<boolean>(!next.done, (a, b) => a || b, isBool))) return stats;
    for (;;) {
      const out: R[][] = Array.from({ length: size }, () => []);
      let taken = 0;
      while (taken < max && !next.done) {
        const [to, rec] = next.value;
        if (!Number.isInteger(to) || to < 0 || to >= size) throw new Error(`exchange: destination ${to} is not a rank of ${size}`);
        out[to]!.push(rec);
        taken++;
        next = it.next();
      }
      const more = !next.done;
      const got = await coll.alltoall<Share<R>>(out.map((recs) => [more, recs]), isShare);
      stats.rounds++;
      stats.sent += taken;
      let anyMore = false;
      for (let from = 0; from < size; from++) {
        const [m, recs] = got[from]!;
        if (m) anyMore = true;
        if (recs.length === 0) continue;
        stats.received += recs.length;
        await deliver(from, recs);
      }
      if (!anyMore) return stats;
    }
  } finally {
    // Stopped early (an error, an abort): let the stream close what it holds (a statement).
    if (!next.done) it.return?.();
  }
}
