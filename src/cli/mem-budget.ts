/**
 * How --mem-limit (per rank, fcp and fsum alike) is shared: half for the walk lists, a
 * quarter for queued work items (a batch item holds up to 64 entries, ~16 KiB). An entry
 * in memory costs about 1.5 KiB all told (its objects and path, and the rows waiting for
 * the checkpoint): measured with `node bench/scale.mjs`, 291 MiB of peak RSS for 150,000
 * entries a rank.
 */
export function budgets(memLimit: number): { listEntries: number; queueItems: number } {
  // Below MIN_FULL_BUDGET these floors take over (said on stderr when it happens).
  return { listEntries: Math.max(1000, Math.floor(memLimit / 2 / 1536)), queueItems: Math.max(64, Math.floor(memLimit / 4 / 16384)) };
}

/** The smallest --mem-limit whose shares are not floored by budgets(). */
export const MIN_FULL_BUDGET = 4 * 1024 * 1024;

export const DEFAULT_MEM_LIMIT = 128 * 1024 * 1024;

export const MEM_LIMIT_HELP = 'memory budget per rank for work queues and file lists, at least 1M; beyond it they spill to SQLite (e.g. 512M)';
