/**
 * fcp SRC... DST: parse and validate, start the job, run the copy, report, exit.
 *
 * Exit codes: 0 everything copied; 1 some entries failed (each named on stderr);
 * 2 usage (nothing written); 3 the job was aborted (a rank died, a host was lost);
 * 4 stopped by a signal (SIGINT/SIGTERM).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from '../util/cjs-deps.js';
import { EXIT, JobAborted } from '../engine/runtime.js';
import { UsageError, causeOf } from '../errors.js';
import { detectLauncher } from '../launch/env.cjs';
import { endJob, startJob } from '../launch/job.js';
import { parseSize } from '../copy/plan.js';
import { resolveRoots } from '../copy/targets.js';
import { isBuf, type Root } from '../walk/entry.js';
import { runCopyJob, type CopySummary } from '../jobs/copy-job.js';
import { formatBytes, formatCount, formatDuration } from '../progress/format.js';
import { CheckpointRefused } from '../checkpoint/job-checkpoint.js';
import { LEAF } from '../checksum/hasher.js';
import { checkpointMatches, defaultCheckpointDir } from '../checkpoint/checkpoint-dir.js';

/**
 * How --mem-limit is shared: half for the walk lists, a quarter for queued work items (a
 * batch item holds up to 64 entries, ~16 KiB). An entry in memory costs about 1.5 KiB all
 * told (its objects and path, and the rows waiting for the checkpoint): measured with
 * `node bench/scale.mjs`, 291 MiB of peak RSS for 150,000 entries a rank.
 */
function budgets(memLimit: number): { listEntries: number; queueItems: number } {
  return { listEntries: Math.max(1000, Math.floor(memLimit / 2 / 1536)), queueItems: Math.max(64, Math.floor(memLimit / 4 / 16384)) };
}

const shellQuote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
import { addLaunchOptions, collect, filterArgs, normalizeArgv, positiveInt, seconds } from './options.js';
import { makeRule, PathFilter, patternsFromFile, type FilterRule } from '../walk/filter.js';
import { runDryRun } from '../jobs/dry-run.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function sizeArg(v: string): number {
  try {
    return parseSize(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function buildCommand(): Command {
  const cmd = new Command('fcp')
    .description('Copy SRC to DST (or several SRC into directory DST) with N cooperating ranks, keeping content, holes, modes, owners, ns times, links and xattrs (cp -a semantics).')
    .usage('[options] SRC... DST')
    .argument('<paths...>', 'sources, then the destination')
    .option('-n, --np <N>', 'number of ranks to start when no launcher (mpirun, srun) started fcp; -np N works too', positiveInt('--np'), 1)
    .option('--chunk-size <size>', 'split files larger than this into chunks of this size (e.g. 64M, 1G); default adapts: clamp(pow2floor(total bytes / (ranks x 8)), 4 MiB, 1 GiB)', sizeArg)
    .option('--json', 'print the summary as one JSON object on the last line of stdout', false)
    .option('-q, --quiet', 'no progress line, no summary (errors are still printed)', false)
    .option('--update', 'skip files DST already has with the same type, size and mtime (to the ns), without reading them; --update=checksum compares content by hash instead (reads both sides)', false)
    .addOption(new Option('--update-mode <mode>', 'rule of --update (time, checksum)').choices(['time', 'checksum']).hideHelp())
    .option('--delete', 'after the copy, remove what is in DST but not in SRC (only below the copy\'s DST roots; excluded entries are kept)', false)
    .option('--exclude <pattern>', 'leave out entries matching PATTERN (repeatable; rsync-like rules, see README: first matching rule wins; no \'/\' matches the name, \'/\' anchors at SRC; trailing \'/\' directories only; * ? [..] **)', collect, [])
    .option('--include <pattern>', 'keep entries matching PATTERN even if a later --exclude matches (repeatable; order on the command line decides)', collect, [])
    .option('--exclude-from <file>', 'read exclude patterns from FILE, one per line (# comments)', collect, [])
    .option('--dry-run', 'walk and decide: print what would be copied, updated and deleted, with totals; write nothing', false)
    .addOption(new Option('--progress <mode>', 'progress display: auto (a line on a terminal), line, json (one JSON object per line and second, for batch logs), none').choices(['auto', 'line', 'json', 'none']).default('auto'))
    .option('--log-dir <dir>', 'also log failed entries, one line each (path, operation, errno), to DIR/fcp-rank<R>.log')
    .option('--no-hash', 'do not hash what is read (no --signature, no --verify); lets copy_file_range move data in the kernel')
    .option('--verify', 'after the copy, re-read DST (each rank what another wrote) and compare it with the xxhash digests of what was read from SRC; mismatches are named with file and byte range, exit 1', false)
    .option('--signature', 'print the dataset signature of SRC (the same as fsum SRC) computed from the bytes the copy read', false)
    .addOption(new Option('--mem-limit <size>', 'memory budget per rank for work queues and file lists; beyond it they spill to SQLite (e.g. 512M)').argParser(sizeArg).default(128 * 1024 * 1024, '128M'))
    .option('--resume', 'finish an earlier, interrupted copy of the same SRC to DST: work recorded in its checkpoint is not done again (any -np); without a checkpoint, copy from scratch', false)
    .option('--checkpoint-dir <dir>', 'where ranks record progress (default: hidden beside DST: DST/../.fcp-checkpoint-<hash>)')
    .option('--checkpoint-interval <s>', 'seconds between checkpoint writes; a kill loses at most this much work', seconds('--checkpoint-interval'), 5)
    .option('--keep-checkpoint', 'keep the checkpoint after a successful copy', false)
    .option('--no-checkpoint', 'record no progress (a later --resume starts over)')
    .option('--no-sync', 'UNSAFE: do not make copied data durable (syncfs) before the checkpoint records it as done and success is reported; after a crash --resume may skip files whose data was lost')
    .addHelpText('after', `
Exit status: 0 all copied; 1 some entries failed (each named on stderr; the checkpoint is
kept so --resume retries only those); 2 usage error (nothing written); 3 job aborted (a rank
died or became unreachable; resumable); 4 stopped by SIGINT/SIGTERM (progress saved;
resumable with --resume).

Launch: 'fcp SRC DST -np 4' starts 4 local ranks; under 'mpirun -np 64 fcp SRC DST' or
'srun -n 64 fcp SRC DST' the launcher's ranks are used and find each other over TCP.`)
    .showHelpAfterError('(run fcp --help for usage)')
    .exitOverride();
  return addLaunchOptions(cmd, "the destination's parent directory", pkg.version);
}

function printSummary(s: CopySummary, json: boolean, quiet: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  if (quiet) return;
  process.stdout.write(
    `fcp: ${formatCount(s.files)} files, ${formatCount(s.dirs)} directories, ${formatCount(s.symlinks)} symlinks, ` +
      `${formatBytes(s.bytes)} in ${formatDuration(s.seconds)} (${formatBytes(s.bytesPerSecond)}/s), ` +
      `${s.errors} error${s.errors === 1 ? '' : 's'}` +
      (s.bytesSkipped > 0 || s.filesSkipped > 0 ? ` (${formatBytes(s.bytesSkipped)} in ${formatCount(s.filesSkipped)} files already done by an earlier run)` : '') + '\n',
  );
}

async function main(argv: string[]): Promise<void> {
  const launch = detectLauncher();
  const speaks = launch.rank === 0; // only one rank prints usage errors
  const cmd = buildCommand();
  if (!speaks) cmd.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  try {
    cmd.parse(normalizeArgv(argv), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT.USAGE);
    throw err;
  }
  const opts = cmd.opts<{
    np: number; chunkSize?: number; json: boolean; quiet: boolean; rendezvous?: string; bind?: string; jobId?: string;
    startupTimeout: number; heartbeatTimeout: number; resume: boolean; checkpointDir?: string; checkpointInterval: number;
    keepCheckpoint: boolean; checkpoint: boolean; memLimit: number; hash: boolean; verify: boolean; signature: boolean;
    update: boolean; updateMode?: 'time' | 'checksum'; delete: boolean; dryRun: boolean; progress: 'auto' | 'line' | 'json' | 'none'; logDir?: string; sync: boolean;
  }>();
  const update: false | 'time' | 'checksum' = opts.update || opts.updateMode ? (opts.updateMode ?? 'time') : false;
  let filter: PathFilter | null = null;
  try {
    const rules: FilterRule[] = [];
    for (const f of filterArgs(normalizeArgv(argv))) {
      if (f.pattern !== undefined) {
        rules.push(makeRule(f.include, f.pattern));
        continue;
      }
      let text: string;
      try {
        text = readFileSync(f.file!, 'utf8');
      } catch (err) {
        throw new UsageError(`cannot read --exclude-from '${f.file}': ${causeOf(err)}`);
      }
      for (const p of patternsFromFile(text)) rules.push(makeRule(false, p));
    }
    if (rules.length > 0) filter = new PathFilter(rules);
  } catch (err) {
    if (speaks) process.stderr.write(`fcp: ${err instanceof UsageError ? err.message : `bad --exclude/--include pattern: ${(err as Error).message}`}\n`);
    process.exit(EXIT.USAGE);
  }
  if (!opts.hash && (opts.verify || opts.signature)) {
    if (speaks) process.stderr.write(`fcp: --${opts.verify ? 'verify' : 'signature'} needs the hashes that --no-hash turns off\n`);
    process.exit(EXIT.USAGE);
  }
  // Hashes are kept per 1 MiB leaf (see checksum/hasher.ts): chunks start on leaf boundaries.
  if (opts.chunkSize && opts.hash) opts.chunkSize = Math.ceil(opts.chunkSize / LEAF) * LEAF;
  const paths = cmd.processedArgs[0] as string[];
  if (opts.jobId) process.env.FCP_JOB_ID = opts.jobId;

  let roots: Root[];
  try {
    roots = resolveRoots(paths.slice(0, -1), paths[paths.length - 1]!);
    if ((opts.resume || opts.update || opts.updateMode || opts.delete) && paths.length === 2 && Buffer.compare(roots[0]!.dst, Buffer.from(resolve(paths[1]!))) !== 0) {
      // Re-running into an existing DST (resume, --update, --delete): DST is usually the
      // copy an earlier run made, not a directory to copy into. A checkpoint tells which;
      // without one, DST/basename(SRC) existing does (then the earlier run copied into DST).
      const asCopy = resolveRoots(paths.slice(0, -1), paths[1]!, true);
      const matches = (r: Root[]) => checkpointMatches(opts.checkpointDir ?? defaultCheckpointDir(paths[1]!, r), r);
      if (matches(asCopy) || (!matches(roots) && !existsSync(roots[0]!.dst))) roots = asCopy;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      if (speaks) process.stderr.write(`fcp: ${err.message}\n`);
      process.exit(EXIT.USAGE);
    }
    throw err;
  }

  const job = await startJob({
    tool: 'fcp',
    np: opts.np,
    rendezvous: opts.rendezvous,
    besidePath: Buffer.from(roots[0]!.dst).toString(),
    bind: opts.bind,
    startupTimeoutMs: opts.startupTimeout * 1000,
    heartbeatTimeoutMs: opts.heartbeatTimeout * 1000,
    delayWorkMs: Number(process.env.FCP_TEST_DELAY_WORK_MS ?? 0) || undefined,
    queueInMemory: budgets(opts.memLimit).queueItems,
  });
  // Rank 0's view of the roots is the job's: ranks on other hosts follow it.
  const isRoots = (x: unknown): x is Root[] => Array.isArray(x) && x.every((r) => isBuf((r as Root).src) && isBuf((r as Root).dst));
  roots = await job.rt.collectives.bcast<Root[]>(job.rt.rank === 0 ? roots : null, isRoots);

  if (opts.dryRun) {
    const { summary, exitCode } = await runDryRun(job.rt, { roots, update, filter, deleteExtras: opts.delete, json: opts.json });
    if (job.rt.rank === 0 && opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    await endJob(job, exitCode);
  }
  const dstArg = paths[paths.length - 1]!;
  const resumeArgs = argv.filter((a) => a !== '--resume').map(shellQuote).join(' ');
  let result;
  try {
    result = await runCopyJob(job.rt, {
      roots, chunkSize: opts.chunkSize, quiet: opts.quiet, json: opts.json, keepCheckpoint: opts.keepCheckpoint,
      listBudget: budgets(opts.memLimit).listEntries,
      hash: opts.hash,
      verify: opts.verify,
      update,
      filter,
      deleteExtras: opts.delete,
      progress: opts.progress,
      logDir: opts.logDir,
      sync: opts.sync,
      corruptForTest: process.env.FCP_TEST_CORRUPT_BEFORE_VERIFY,
      resumeCommand: `fcp --resume ${resumeArgs}`,
      checkpoint: {
        dir: opts.checkpointDir ?? defaultCheckpointDir(dstArg, roots),
        intervalMs: opts.checkpointInterval * 1000,
        resume: opts.resume,
        enabled: opts.checkpoint,
        roots,
      },
    });
  } catch (err) {
    if (err instanceof CheckpointRefused) {
      if (job.rt.rank === 0) process.stderr.write(`fcp: ${err.message}\n`);
      await endJob(job, EXIT.USAGE);
    }
    throw err;
  }
  const { summary, exitCode, finalize } = result;
  job.rt.markFinishing();
  if (job.rt.rank === 0) {
    if (opts.signature && !opts.json) {
      process.stdout.write(summary.signature
        ? `signature ${summary.signature}\n`
        : 'fcp: no signature: some entries could not be read (see the errors above), or an earlier run copied them with --no-hash\n');
    }
    printSummary(summary, opts.json, opts.quiet);
  }
  await endJob(job, exitCode, finalize);
}

main(process.argv.slice(2)).catch((err) => {
  // The job is aborting (its reason is printed, its hooks run, then it exits with its code):
  // a collective that was waiting only learned it.
  if (err instanceof JobAborted) return;
  process.stderr.write(`fcp: internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(EXIT.ABORTED);
});
