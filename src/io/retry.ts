/**
 * Retries of transient errors (--retries N).
 *
 * A parallel file system client returns some errors for a while and then recovers: EIO
 * after the client was evicted by a server, ESTALE after a failover, ETIMEDOUT,
 * ENOTCONN and ECONNRESET while a server or the network is down, EAGAIN. An entry that
 * fails with one of these is tried again after a backoff (0.5 s, 1 s, 2 s, ... each
 * ±25 %), up to N more times, and is named only when its last try fails. Every other error
 * is permanent (ENOENT, EACCES, EPERM, ELOOP, ENOTDIR, EISDIR, EROFS, ...) and named at
 * once. A full destination (ENOSPC, EDQUOT) stops the job (errors.ts onFull) and a request
 * that never returns is a stall (in-flight.ts): neither is retried.
 *
 * Engine items are retried by enqueuing them again after the backoff (TaskContext
 * enqueueLater), so the wait holds up nothing else; the phases that run outside the
 * engine (finish, links, directory metadata) wait in place, a few entries at a time.
 */
import { constants } from 'node:os';

/** The errors a parallel file system returns transiently: the one table, used everywhere. */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set(['EIO', 'ESTALE', 'ETIMEDOUT', 'EAGAIN', 'ENOTCONN', 'ECONNRESET']);

/** The same as negative errnos, as the native batch returns them. */
const TRANSIENT_ERRNOS: ReadonlySet<number> = new Set(
  [...TRANSIENT_CODES].map((c) => (constants.errno as Record<string, number>)[c]).filter((n): n is number => typeof n === 'number').map((n) => -n),
);

export const isTransientCode = (code: unknown): boolean => typeof code === 'string' && TRANSIENT_CODES.has(code);
export const isTransientErrno = (negErrno: number): boolean => TRANSIENT_ERRNOS.has(negErrno);
/** (By errno too: Node gives errnos libuv does not name, as ESTALE, no code of their own.) */
export const isTransient = (err: unknown): boolean => {
  const e = err as NodeJS.ErrnoException | null;
  return isTransientCode(e?.code) || (typeof e?.errno === 'number' && isTransientErrno(e.errno));
};

/** The first backoff; each next one doubles. */
export const FIRST_BACKOFF_MS = 500;
/** No single wait is longer than this, whatever N. */
const MAX_BACKOFF_MS = 30_000;
/** An attempt count that arrives in a work item from a peer is at most this (validation). */
export const MAX_RETRIES = 100;

export interface RetryCounts { retried: number; retries: number }

/**
 * This rank's retry policy and what it did: `retried` entries needed a retry, `retries`
 * tries were made again in all.
 */
export class Retries implements RetryCounts {
  retried = 0;
  retries = 0;

  constructor(readonly max: number, private readonly firstMs = FIRST_BACKOFF_MS, private readonly random: () => number = Math.random) {}

  /**
   * An entry failed with `err` on try number `attempt` (0: the first): the wait before the
   * next try (counted as a retry), or null when it is not to be retried (permanent, or
   * no retry left): then the caller names it.
   */
  next(err: unknown, attempt: number): number | null {
    return isTransient(err) ? this.schedule(attempt) : null;
  }

  /** As next(), for a negative errno from the native addon. */
  nextErrno(negErrno: number, attempt: number): number | null {
    return isTransientErrno(negErrno) ? this.schedule(attempt) : null;
  }

  /** An attempt count as it arrives with a work item: absent (0) or a small integer. */
  static validAttempt(a: unknown): boolean {
    return a === undefined || (Number.isInteger(a) && (a as number) >= 1 && (a as number) <= MAX_RETRIES);
  }

  /** Run fn, trying it again after a backoff while it fails transiently (phases outside the engine). */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const wait = this.next(err, attempt);
        if (wait === null) throw err;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** The backoff before try attempt+1: 0.5 s × 2^attempt, ±25 % so that ranks do not retry in step. */
  delayMs(attempt: number): number {
    const base = Math.min(MAX_BACKOFF_MS, this.firstMs * 2 ** attempt);
    return Math.round(base * (0.75 + this.random() * 0.5));
  }

  private schedule(attempt: number): number | null {
    if (attempt >= this.max) return null;
    if (attempt === 0) this.retried++;
    this.retries++;
    return this.delayMs(attempt);
  }
}
