/**
 * fcp SRC... DST: parse and validate, start the job, run the copy, report, exit.
 *
 * Exit codes: 0 everything copied; 1 some entries failed (each named on stderr);
 * 2 usage (nothing written); 3 the job was aborted (a rank died, a host was lost);
 * 4 stopped by a signal (SIGINT/SIGTERM), --time-limit or --stall-timeout; 5 --delete
 * refused by a guard (nothing deleted); 6 the destination is full.
 */
import { showPath } from '../copy/paths.js';
import { mkdirpSync } from '../util/mkdirp.js';
import { accessSync, constants as fsConstants, createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from '../util/cjs-deps.js';
import { EXIT, JobAborted } from '../engine/runtime.js';
import { UsageError, causeOf, internalErrorLine } from '../errors.js';
import { detectLauncher } from '../launch/env.cjs';
import { endJob, startJob } from '../launch/job.js';
import { resolveRoots } from '../copy/targets.js';
import { isBuf, type Root } from '../walk/entry.js';
import { runCopyJob, type CopySummary } from '../jobs/copy-job.js';
import { copyJson } from '../jobs/copy-summary.js';
import { JsonOnExit, ending } from './json-on-exit.js';
import { budgets, MIN_FULL_BUDGET } from './mem-budget.js';
import { formatBytes, formatCount, formatDuration } from '../progress/format.js';
import { CheckpointRefused } from '../checkpoint/job-checkpoint.js';
import { LEAF } from '../checksum/hasher.js';
import { checkpointMatches, defaultCheckpointDir } from '../checkpoint/checkpoint-dir.js';
import { loadNative, nativeLoadError } from '../native/loader.js';

/** An argument as a POSIX shell reads it back; control characters as bash's $'..' (so a name cannot break the line). */
const shellQuote = (a: string) => {
  if (/^[\w@%+=:,./-]+$/.test(a)) return a;
  // eslint-disable-next-line no-control-regex
  if (!/[\x00-\x1f\x7f]/.test(a)) return `'${a.replace(/'/g, `'\\''`)}'`;
  return `$'${showPath(a).replace(/'/g, "\\'")}'`;
};
import { addLaunchOptions, collect, countOption, duration, filterArgs, normalizeArgv, npRefused, positiveInt, rateOption, seconds, sizeOption } from './options.js';
import { MAX_RETRIES } from '../copy/retry.js';
import { hardExit } from '../native/exit.js';
import { makeRule, PathFilter, patternsFromFile, type FilterRule } from '../walk/filter.js';
import { runDryRun } from '../jobs/dry-run.js';
import { parseMaxDelete, type MaxDelete } from '../copy/delete-guards.js';
import type { FileList } from '../walk/list-source.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function maxDeleteArg(v: string): MaxDelete {
  try {
    return parseMaxDelete(v);
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
    .option('--chunk-size <size>', 'split files larger than this into chunks of this size (e.g. 64M, 1G; a multiple of 1M unless --no-hash); default adapts: clamp(pow2floor(total bytes / (ranks x 8)), 4 MiB, 1 GiB)', sizeOption('--chunk-size', 4096))
    .option('--json', 'print the summary as one JSON object on the last line of stdout, on every exit (with exitCode, aborted, stopped, reason)', false)
    .option('-q, --quiet', 'no progress line, no summary (errors are still printed)', false)
    .option('--update', 'skip files DST already has with the same type, size and mtime (to the ns), without reading them; --update=checksum compares content by hash instead (reads both sides)', false)
    .addOption(new Option('--update-mode <mode>', 'rule of --update (time, checksum)').choices(['time', 'checksum']).hideHelp())
    .option('--delete', 'after the copy, remove what is in DST but not in SRC (only below the copy\'s DST roots; excluded entries are kept); nothing is deleted when the walk of SRC had errors or SRC is empty (exit 5)', false)
    .option('--max-delete <N|P%>', 'with --delete: delete nothing (exit 5) when more than N entries, or P% of the entries in DST, would be deleted', maxDeleteArg)
    .option('--delete-from-empty', 'with --delete: allow an empty SRC directory to empty its DST (refused otherwise, exit 5)', false)
    .option('--exclude <pattern>', 'leave out entries matching PATTERN (repeatable; rsync-like rules, see README: first matching rule wins; no \'/\' matches the name, \'/\' anchors at SRC; trailing \'/\' directories only; * ? [..] **)', collect, [])
    .option('--include <pattern>', 'keep entries matching PATTERN even if a later --exclude matches (repeatable; order on the command line decides)', collect, [])
    .option('--exclude-from <file>', 'read exclude patterns from FILE, one per line (# comments)', collect, [])
    .option('--files-from <file>', "copy only the paths listed in FILE ('-': stdin), one per line, relative to SRC (a leading '/' or './' too; '..' refused); exactly one SRC, and DST is the copy of SRC (DST/path); the directories leading to a listed path are created with their source metadata; a listed directory is created, not copied whole, unless --recursive-list (as rsync --files-from)")
    .option('--from0', 'with --files-from: the list is separated by NUL bytes, not newlines (find -print0)', false)
    .option('--recursive-list', 'with --files-from: a listed directory is copied whole (by default only the directory itself)', false)
    .option('--dry-run', 'walk and decide: print what would be copied, updated and deleted, with totals; write nothing', false)
    .addOption(new Option('--progress <mode>', 'progress display: auto (a line on a terminal), line, json (one JSON object per line and second, for batch logs), none').choices(['auto', 'line', 'json', 'none']).default('auto'))
    .option('--report <file>', "write FILE: one line per entry, sorted by path: '+' copied, '*' updated, '~' metadata only, '=' up to date, 'h' hard link, '-' deleted, 'x' excluded, '!' failed (TAB, the cause); each rank writes FILE.part-r<R> beside it as it goes")
    .addOption(new Option('--report-format <format>', "--report's lines: text, or json (one object per line: action, path or pathHex, error)").choices(['text', 'json']).default('text'))
    .option('--log-dir <dir>', 'also log failed entries, one line each (path, operation, errno), to DIR/fcp-rank<R>.log')
    .option('--no-hash', 'do not hash what is read (no --signature, no --verify); lets copy_file_range move data in the kernel')
    .option('--verify', 'after the copy, re-read DST (each rank what another wrote) and compare it with the xxhash digests of what was read from SRC; mismatches are named with file and byte range, exit 1', false)
    .option('--signature', 'print the dataset signature of SRC (the same as fsum SRC) computed from the bytes the copy read', false)
    .addOption(new Option('--mem-limit <size>', 'memory budget per rank for work queues and file lists, at least 1M; beyond it they spill to SQLite (e.g. 512M)').argParser(sizeOption('--mem-limit', 2 ** 20)).default(128 * 1024 * 1024, '128M'))
    .option('--resume', 'finish an earlier, interrupted copy of the same SRC to DST: work recorded in its checkpoint is not done again (any -np); without a checkpoint, copy from scratch', false)
    .option('--checkpoint-dir <dir>', 'where ranks record progress (default: hidden beside DST: DST/../.fcp-checkpoint-<hash>)')
    .option('--checkpoint-interval <s>', 'seconds between checkpoint writes; a kill loses at most this much work', seconds('--checkpoint-interval'), 5)
    .option('--keep-checkpoint', 'keep the checkpoint after a successful copy', false)
    .option('--no-checkpoint', 'record no progress (a later --resume starts over)')
    .option('--stall-timeout <s>', 'a file system request that has not returned after this many seconds (a hung server) is named and the job stops as on SIGTERM (exit 4, resumable)', seconds('--stall-timeout'), 300)
    .option('--retries <N>', 'try an entry that failed with a transient error (EIO, ESTALE, ETIMEDOUT, EAGAIN, ENOTCONN, ECONNRESET) again up to N times, after 0.5 s, 1 s, 2 s, ... (doubling, +-25%), before naming it; other errors are named at once; 0: never', countOption('--retries', MAX_RETRIES), 3)
    .option('--time-limit <duration>', 'stop at this wall time (e.g. 3h50m, 45m, 90s) as on SIGTERM: progress saved, exit 4, resumable', duration('--time-limit'))
    .addOption(new Option('--layout <mode>', "file layout on Lustre: inherit (the destination directory's default layout) or copy (the source's striping, set when each file and directory is created; a no-op elsewhere)").choices(['inherit', 'copy']).default('inherit'))
    // For tests only (see copy/layout.ts): this attribute is the layout, on any file system.
    .addOption(new Option('--layout-xattr <name>', 'for tests: treat the extended attribute NAME as the layout, on any file system').hideHelp())
    // For tests only: flip one byte of DST ('root-relative path:offset', first root) before --verify reads it back.
    // For tests only: every copy item waits MS ms before it starts, so a test can act while a copy surely runs.
    .addOption(new Option('--test-slow-copy-ms <ms>', 'for tests: every copy item waits MS ms first').argParser(countOption('--test-slow-copy-ms', 60_000)).hideHelp())
    .addOption(new Option('--test-corrupt-before-verify <spec>', 'for tests: flip the byte at PATH:OFFSET of DST before verifying').hideHelp())
    .option('--bwlimit <rate>', 'data bytes per second for the whole job, shared by its ranks (e.g. 500M, 2G; 0 or none: unlimited)', rateOption('--bwlimit'))
    .option('--max-ops <rate>', 'metadata operations per second for the whole job (one per entry the walk lstats, directory read or made, file or chunk copied, directory whose metadata is set; see README; 0 or none: unlimited)', rateOption('--max-ops'))
    .option('--limits-file <file>', 'reread every 2 s while the job runs: lines bwlimit=RATE and max-ops=RATE override --bwlimit/--max-ops, so a running copy can be slowed down or sped up')
    .option('--unsafe-paths', 'as root without the native addon, copy anyway: paths are then opened whole, so a directory swapped for a symlink during the copy can make fcp read or write outside SRC and DST', false)
    .option('--no-sync', 'UNSAFE: do not make copied data durable (syncfs) before the checkpoint records it as done and success is reported; after a crash --resume may skip files whose data was lost')
    .addHelpText('after', `
Exit status: 0 all copied; 1 some entries failed (each named on stderr; the checkpoint is
kept so --resume retries only those); 2 usage error (nothing written); 3 job aborted (a rank
died or became unreachable; resumable); 4 stopped by SIGINT/SIGTERM (progress saved;
resumable with --resume, also after --time-limit or a --stall-timeout); 5 --delete refused
by a guard, nothing deleted (SRC's walk had errors, SRC is empty, or more than
--max-delete would go); 6 the destination is full (progress saved; free space, then --resume).

Launch: 'fcp SRC DST -np 4' starts 4 local ranks; under 'mpirun -np 64 fcp SRC DST' or
'srun -n 64 fcp SRC DST' the launcher's ranks are used and find each other over TCP.`)
    .showHelpAfterError('(run fcp --help for usage)')
    .exitOverride();
  return addLaunchOptions(cmd, "the destination's parent directory", pkg.version);
}

function printSummary(s: CopySummary, quiet: boolean): void {
  if (quiet) return;
  process.stdout.write(
    `fcp: ${formatCount(s.files)} files, ${formatCount(s.dirs)} directories, ${formatCount(s.symlinks)} symlinks, ` +
      `${formatBytes(s.bytes)} in ${formatDuration(s.seconds)} (${formatBytes(s.bytesPerSecond)}/s), ` +
      `${s.errors} error${s.errors === 1 ? '' : 's'}` +
      (s.retried > 0 ? ` (${formatCount(s.retried)} entr${s.retried === 1 ? 'y' : 'ies'} retried)` : '') +
      (s.bytesSkipped > 0 || s.filesSkipped > 0 ? ` (${formatBytes(s.bytesSkipped)} in ${formatCount(s.filesSkipped)} files already done by an earlier run)` : '') + '\n',
  );
}

/** --report FILE: never in SRC (fcp does not write there), in a directory that exists; the usage error, or null. */
function reportProblem(file: string, roots: Root[]): string | null {
  for (const r of roots) {
    const src = Buffer.from(r.src).toString();
    if (file === src || file.startsWith(src.endsWith('/') ? src : `${src}/`)) return `--report '${showPath(file)}' is inside SRC '${showPath(src)}', which fcp never writes to`;
  }
  try {
    if (!statSync(dirname(file)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (err) {
    return `cannot write --report '${showPath(file)}': ${causeOf(err)}`;
  }
  return null;
}

/** --files-from and its companions: the usage error, or null. */
function checkFilesFrom(o: { filesFrom?: string; from0: boolean; recursiveList: boolean; delete: boolean }, paths: string[], speaks: boolean): string | null {
  if (o.filesFrom === undefined) {
    if (o.from0 || o.recursiveList) return `--${o.from0 ? 'from0' : 'recursive-list'} needs --files-from`;
    return null;
  }
  if (paths.length !== 2) return `--files-from takes exactly one SRC (and DST), got ${paths.length - 1} SRC`;
  if (o.delete) return '--delete cannot be used with --files-from (DST would lose everything not listed)';
  try {
    if (!statSync(paths[0]!).isDirectory()) return `--files-from needs SRC to be a directory: '${showPath(paths[0]!)}' is not`;
  } catch {
    return null; // a missing SRC is named by resolveRoots
  }
  // Only rank 0 reads the list (other ranks may be on hosts that cannot see it).
  if (speaks && o.filesFrom !== '-') {
    // Not opened here: a pipe (`--files-from <(lfs find ...)`) would lose its writer.
    try {
      accessSync(o.filesFrom, fsConstants.R_OK);
      if (statSync(o.filesFrom).isDirectory()) return `cannot read --files-from '${showPath(o.filesFrom)}': Is a directory (EISDIR)`;
    } catch (err) {
      return `cannot read --files-from '${showPath(o.filesFrom)}': ${causeOf(err)}`;
    }
  }
  return null;
}

async function main(argv: string[]): Promise<void> {
  const launch = detectLauncher();
  const speaks = launch.rank === 0; // only one rank prints usage errors
  const cmd = buildCommand();
  if (!speaks) cmd.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  try {
    cmd.parse(normalizeArgv(argv), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --json promises a last line on every exit, also when the rest of the line did not parse.
      const json = argv.includes('--json') && !argv.includes('--dry-run');
      if (err.exitCode !== 0 && speaks && json) process.stdout.write(`${JSON.stringify(copyJson({}, ending(EXIT.USAGE, err.message.replace(/^error: /, ''))))}\n`);
      process.exit(err.exitCode === 0 ? 0 : EXIT.USAGE);
    }
    throw err;
  }
  const opts = cmd.opts<{
    np: number; forceNp: boolean; chunkSize?: number; json: boolean; quiet: boolean; rendezvous?: string; bind?: string; jobId?: string;
    startupTimeout: number; heartbeatTimeout: number; resume: boolean; checkpointDir?: string; checkpointInterval: number;
    keepCheckpoint: boolean; checkpoint: boolean; memLimit: number; hash: boolean; verify: boolean; signature: boolean;
    update: boolean; updateMode?: 'time' | 'checksum'; delete: boolean; maxDelete?: MaxDelete; deleteFromEmpty: boolean; dryRun: boolean; progress: 'auto' | 'line' | 'json' | 'none'; logDir?: string;
    stallTimeout: number; timeLimit?: number; retries: number;
    layout: 'inherit' | 'copy'; layoutXattr?: string; testCorruptBeforeVerify?: string; testDelayWorkMs?: number; testSlowCopyMs?: number;
    unsafePaths: boolean;
    filesFrom?: string; from0: boolean; recursiveList: boolean;
    sync: boolean;
    report?: string; reportFormat: 'text' | 'json';
    bwlimit?: number; maxOps?: number; limitsFile?: string;
  }>();
  // --json: rank 0 prints a summary on every exit from here on, however the job ends.
  const jsonOut = opts.json && speaks && !opts.dryRun ? new JsonOnExit<CopySummary>(copyJson) : null;
  /** A usage error: one line (from rank 0), exit 2, nothing written. */
  const usage = (msg: string): never => {
    if (speaks) process.stderr.write(`fcp: ${msg}\n`);
    jsonOut?.ended(msg);
    process.exit(EXIT.USAGE);
  };
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
        throw new UsageError(`cannot read --exclude-from '${showPath(f.file!)}': ${causeOf(err)}`);
      }
      for (const p of patternsFromFile(text)) rules.push(makeRule(false, p));
    }
    if (rules.length > 0) filter = new PathFilter(rules);
  } catch (err) {
    usage(err instanceof UsageError ? err.message : `bad --exclude/--include pattern: ${(err as Error).message}`);
  }
  if (!opts.hash && (opts.verify || opts.signature)) {
    usage(`--${opts.verify ? 'verify' : 'signature'} needs the hashes that --no-hash turns off`);
  }
  if (!opts.delete && (opts.maxDelete !== undefined || opts.deleteFromEmpty)) {
    if (speaks) process.stderr.write(`fcp: --${opts.maxDelete !== undefined ? 'max-delete' : 'delete-from-empty'} is a guard of --delete, which is not given\n`);
    process.exit(EXIT.USAGE);
  }
  // Hashes are kept per 1 MiB leaf (see checksum/hasher.ts): chunks start on leaf boundaries.
  if (opts.chunkSize && opts.hash && opts.chunkSize % LEAF !== 0) {
    usage(`--chunk-size must be a multiple of 1M (hashes are kept per 1 MiB leaf), not ${opts.chunkSize}; or add --no-hash`);
  }
  if (opts.logDir && !opts.dryRun) {
    // Made here, so that a --log-dir that cannot be made is a usage error, not a crash later.
    try {
      mkdirpSync(opts.logDir);
    } catch (err) {
      usage(`cannot use --log-dir '${showPath(opts.logDir)}': ${causeOf(err)}`);
    }
  }
  if (opts.layoutXattr !== undefined && (opts.layoutXattr === '' || opts.layoutXattr.includes('\0'))) usage('--layout-xattr needs an attribute name');
  if (opts.report !== undefined && opts.dryRun) usage('--report records what a copy did; --dry-run prints what it would do');
  if (opts.report === undefined && cmd.getOptionValueSource('reportFormat') === 'cli') usage('--report-format needs --report');
  const npError = npRefused('fcp', opts.np, opts.forceNp);
  if (npError) usage(npError.replace(/^fcp: /, ''));
  if (speaks && opts.memLimit < MIN_FULL_BUDGET) {
    const b = budgets(opts.memLimit);
    process.stderr.write(`fcp: --mem-limit ${formatBytes(opts.memLimit)} is below ${formatBytes(MIN_FULL_BUDGET)}: each rank still keeps up to ${b.queueItems} work items and ${b.listEntries} list entries in memory\n`);
  }
  const paths = cmd.processedArgs[0] as string[];
  const filesFromError = checkFilesFrom(opts, paths, speaks);
  if (filesFromError) usage(filesFromError);
  // Only rank 0 reads the limits file; a wrong path is a usage error, not a limit never applied.
  if (speaks && opts.limitsFile !== undefined) {
    try {
      if (statSync(opts.limitsFile).isDirectory()) usage(`cannot read --limits-file '${showPath(opts.limitsFile)}': Is a directory (EISDIR)`);
      accessSync(opts.limitsFile, fsConstants.R_OK);
    } catch (err) {
      usage(`cannot read --limits-file '${showPath(opts.limitsFile)}': ${causeOf(err)}`);
    }
  }
  if (opts.jobId) process.env.FCP_JOB_ID = opts.jobId;
  const reportFile = opts.report === undefined ? null : resolve(opts.report);

  let roots: Root[];
  try {
    // --files-from: DST is the copy of SRC (DST/<listed path>), as rsync --files-from.
    roots = resolveRoots(paths.slice(0, -1), paths[paths.length - 1]!, opts.filesFrom !== undefined);
    if (opts.filesFrom === undefined && (opts.resume || opts.update || opts.updateMode || opts.delete) && paths.length === 2 && Buffer.compare(roots[0]!.dst, Buffer.from(resolve(paths[1]!))) !== 0) {
      // Re-running into an existing DST (resume, --update, --delete): DST is usually the
      // copy an earlier run made, not a directory to copy into. A checkpoint tells which;
      // without one, DST/basename(SRC) existing does (then the earlier run copied into DST).
      const asCopy = resolveRoots(paths.slice(0, -1), paths[1]!, true);
      const matches = (r: Root[]) => checkpointMatches(opts.checkpointDir ?? defaultCheckpointDir(paths[1]!, r), r);
      if (matches(asCopy) || (!matches(roots) && !existsSync(roots[0]!.dst))) roots = asCopy;
    }
  } catch (err) {
    if (err instanceof UsageError) usage(err.message);
    throw err;
  }
  if (reportFile !== null) {
    const problem = reportProblem(reportFile, roots);
    if (problem) usage(problem);
  }

  // Only the addon resolves paths beneath the roots without following symlinks
  // (copy/beneath.ts); root, whom no permission stops, must not run without that.
  if (!opts.unsafePaths && (process.getuid?.() ?? 1) === 0 && !loadNative()) {
    if (speaks) process.stderr.write(`fcp: refusing to run as root without the native addon (${nativeLoadError()}): paths could not be resolved safely beneath SRC and DST; build it (npm install) or pass --unsafe-paths\n`);
    process.exit(EXIT.USAGE);
  }

  const job = await startJob({
    tool: 'fcp',
    np: opts.np,
    rendezvous: opts.rendezvous,
    besidePath: Buffer.from(roots[0]!.dst).toString(),
    bind: opts.bind,
    startupTimeoutMs: opts.startupTimeout * 1000,
    heartbeatTimeoutMs: opts.heartbeatTimeout * 1000,
    delayWorkMs: opts.testDelayWorkMs || undefined,
    queueInMemory: budgets(opts.memLimit).queueItems,
    exit: hardExit(loadNative()),
    onStartupFailure: (reason) => jsonOut?.ended(reason),
  });
  job.rt.addAbortHook((reason) => jsonOut?.ended(reason));
  if (opts.timeLimit !== undefined && job.rt.rank === 0) {
    // From the start of rank 0, as the batch system counts; rank 0 stops everyone.
    const limit = opts.timeLimit;
    setTimeout(() => job.rt.stop(`time limit of ${formatDuration(limit)} reached`), Math.max(0, limit * 1000 - performance.now())).unref();
  }
  // Rank 0's view of the roots is the job's: ranks on other hosts follow it.
  const isRoots = (x: unknown): x is Root[] => Array.isArray(x) && x.every((r) => isBuf((r as Root).src) && isBuf((r as Root).dst));
  roots = await job.rt.collectives.bcast<Root[]>(job.rt.rank === 0 ? roots : null, isRoots);

  const filesFrom: FileList | null = opts.filesFrom === undefined ? null : {
    open: () => (opts.filesFrom === '-' ? process.stdin : createReadStream(opts.filesFrom!, { highWaterMark: 256 * 1024 })),
    name: opts.filesFrom === '-' ? '(stdin)' : opts.filesFrom,
    sep: opts.from0 ? 0 : 10,
    recursive: opts.recursiveList,
  };

  if (opts.dryRun) {
    const { summary, exitCode } = await runDryRun(job.rt, {
      filesFrom,
      roots, update, filter, deleteExtras: opts.delete, deleteFromEmpty: opts.deleteFromEmpty, maxDelete: opts.maxDelete ?? null,
      listBudget: budgets(opts.memLimit).listEntries, json: opts.json,
    });
    if (job.rt.rank === 0 && opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    await endJob(job, exitCode);
  }
  const dstArg = paths[paths.length - 1]!;
  const resumeArgs = argv.filter((a) => a !== '--resume').map(shellQuote).join(' ');
  let result;
  try {
    result = await runCopyJob(job.rt, {
      roots, filesFrom, chunkSize: opts.chunkSize, quiet: opts.quiet, json: opts.json, keepCheckpoint: opts.keepCheckpoint,
      listBudget: budgets(opts.memLimit).listEntries,
      hash: opts.hash,
      verify: opts.verify,
      update,
      filter,
      deleteExtras: opts.delete,
      deleteFromEmpty: opts.deleteFromEmpty,
      maxDelete: opts.maxDelete ?? null,
      progress: opts.progress,
      logDir: opts.logDir,
      report: reportFile === null ? null : { file: reportFile, format: opts.reportFormat },
      stallTimeoutMs: opts.stallTimeout * 1000,
      layout: { mode: opts.layout, testXattr: opts.layoutXattr },
      retries: opts.retries,
      limits: opts.bwlimit || opts.maxOps || opts.limitsFile !== undefined
        ? { cli: { bytesPerSecond: opts.bwlimit ?? 0, opsPerSecond: opts.maxOps ?? 0 }, file: opts.limitsFile ?? null }
        : undefined,
      known: jsonOut?.known,
      sync: opts.sync,
      corruptForTest: opts.testCorruptBeforeVerify,
      testSlowCopyMs: opts.testSlowCopyMs || undefined,
      resumeCommand: `fcp --resume ${resumeArgs}`,
      checkpoint: {
        dir: opts.checkpointDir ?? defaultCheckpointDir(dstArg, roots),
        intervalMs: opts.checkpointInterval * 1000,
        resume: opts.resume,
        enabled: opts.checkpoint,
        roots,
        list: filesFrom !== null,
      },
    });
  } catch (err) {
    if (err instanceof CheckpointRefused) {
      if (job.rt.rank === 0) process.stderr.write(`fcp: ${err.message}\n`);
      jsonOut?.ended(err.message);
      await endJob(job, EXIT.USAGE);
    }
    throw err;
  }
  const { summary, exitCode, finalize, wroteNothing } = result;
  job.rt.markFinishing();
  if (job.rt.rank === 0) {
    if (opts.signature && !opts.json && !wroteNothing) {
      process.stdout.write(summary.signature
        ? `signature ${summary.signature}\n`
        : 'fcp: no signature: some entries could not be read (see the errors above), or an earlier run copied them with --no-hash\n');
    }
    // A job refused before anything was written says so in one line (above), not a summary.
    if (jsonOut) jsonOut.finished(summary, exitCode);
    else printSummary(summary, opts.quiet || wroteNothing === true);
  }
  await endJob(job, exitCode, finalize);
}

main(process.argv.slice(2)).catch((err) => {
  // The job is aborting (its reason is printed, its hooks run, then it exits with its code):
  // a collective that was waiting only learned it.
  if (err instanceof JobAborted) return;
  process.stderr.write(internalErrorLine('fcp', err));
  process.exit(EXIT.ABORTED);
});
