/**
 * How --mem-limit (per rank, fcp and fsum alike) is shared: half for the walk lists, a
 * quarter for queued work items (a batch item holds up to 64 entries, ~16 KiB), and
 * fcp's checkpoint buffers records from the last quarter (checkpointRows). An entry
 * in memory costs about 1.5 KiB all told (its objects and path, and the rows waiting for
 * the checkpoint): measured with `node bench/scale.mjs`, 291 MiB of peak RSS for 150,000
 * entries a rank.
 */
export function budgets(memLimit: number): { listEntries: number; queueItems: number; checkpointRows: number } {
  // Below MIN_FULL_BUDGET these floors take over (said on stderr when it happens).
  return {
    listEntries: Math.max(1000, Math.floor(memLimit / 2 / 1536)),
    queueItems: Math.max(64, Math.floor(memLimit / 4 / 16384)),
    checkpointRows: checkpointRows(memLimit),
  };
}

/**
 * Records a rank's checkpoint buffers before writing them, whatever its interval: from the
 * last quarter, at most ~512 bytes a record (a listing's names and stat record, or a done
 * record), between 8,192 and 32,768 (32,768 from 64 MiB up). A job shorter than one interval
 * whose ranks copy fewer files each then never opens SQLite (`node bench/cpu.mjs`, 20,000
 * files at -np 2: CPU 0.67 s against 0.75 s with 8,192).
 */
function checkpointRows(memLimit: number): number {
  return Math.min(32_768, Math.max(8_192, Math.floor(memLimit / 4 / 512)));
}

/** The smallest --mem-limit whose shares are not floored by budgets(). */
export const MIN_FULL_BUDGET = 4 * 1024 * 1024;

export const DEFAULT_MEM_LIMIT = 128 * 1024 * 1024;

export const MEM_LIMIT_HELP = 'memory budget per rank for work queues and file lists, at least 1M; beyond it they spill to SQLite (e.g. 512M)';
