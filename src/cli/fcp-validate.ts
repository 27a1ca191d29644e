/**
 * fcp's checks across options and paths, before any rank starts: each failure is a
 * UsageError (one line, exit 2, nothing written). What passes is the job's plan: roots,
 * filter, --update rule, memory budgets.
 */
import { showPath } from '../model/paths.js';
import { mkdirpSync } from '../util/mkdirp.js';
import { accessSync, constants as fsConstants, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from '../util/cjs-deps.js';
import { UsageError, causeOf } from '../errors.js';
import { resolveRoots } from '../copy/targets.js';
import type { Root } from '../model/entry.js';
import { formatBytes } from '../progress/format.js';
import { LEAF } from '../checksum/hasher.js';
import { checkpointMatches, defaultCheckpointDir } from '../checkpoint/checkpoint-dir.js';
import { loadNative, nativeLoadError } from '../native/loader.js';
import { filterArgs, normalizeArgv, npRefused } from './options.js';
import { makeRule, PathFilter, patternsFromFile, type FilterRule } from '../walk/filter.js';
import type { FcpOptions } from './fcp-command.js';

/**
 * How --mem-limit is shared: half for the walk lists, a quarter for queued work items (a
 * batch item holds up to 64 entries, ~16 KiB). An entry in memory costs about 1.5 KiB all
 * told (its objects and path, and the rows waiting for the checkpoint): measured with
 * `node bench/scale.mjs`, 291 MiB of peak RSS for 150,000 entries a rank.
 */
export function budgets(memLimit: number): { listEntries: number; queueItems: number } {
  // Below MIN_FULL_BUDGET these floors take over (said on stderr when it happens).
  return { listEntries: Math.max(1000, Math.floor(memLimit / 2 / 1536)), queueItems: Math.max(64, Math.floor(memLimit / 4 / 16384)) };
}

/** The smallest --mem-limit whose shares are not floored by budgets(). */
const MIN_FULL_BUDGET = 4 * 1024 * 1024;

/** What the command line asks for, checked. */
export interface FcpPlan {
  update: false | 'time' | 'checksum';
  filter: PathFilter | null;
  /** the positional arguments: sources, then the destination */
  paths: string[];
  roots: Root[];
  reportFile: string | null;
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

/** --exclude, --include, --exclude-from in command-line order: the filter, or null without any. */
function buildFilter(argv: string[]): PathFilter | null {
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
        throw new UsageError(`cannot read --exclude-from '${showPath(f.file!)}': ${causeOf(err)}`, { cause: err });
      }
      for (const p of patternsFromFile(text)) rules.push(makeRule(false, p));
    }
    return rules.length > 0 ? new PathFilter(rules) : null;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`bad --exclude/--include pattern: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The copy's roots. Re-running into an existing DST (resume, --update, --delete): DST is
 * usually the copy an earlier run made, not a directory to copy into. A checkpoint tells
 * which; without one, DST/basename(SRC) existing does (then the earlier run copied into DST).
 */
function jobRoots(opts: FcpOptions, paths: string[]): Root[] {
  // --files-from: DST is the copy of SRC (DST/<listed path>), as rsync --files-from.
  let roots = resolveRoots(paths.slice(0, -1), paths[paths.length - 1]!, opts.filesFrom !== undefined);
  if (opts.filesFrom === undefined && (opts.resume || opts.update || opts.updateMode || opts.delete) && paths.length === 2 && Buffer.compare(roots[0]!.dst, Buffer.from(resolve(paths[1]!))) !== 0) {
    const asCopy = resolveRoots(paths.slice(0, -1), paths[1]!, true);
    const matches = (r: Root[]) => checkpointMatches(opts.checkpointDir ?? defaultCheckpointDir(paths[1]!, r), r);
    if (matches(asCopy) || (!matches(roots) && !existsSync(roots[0]!.dst))) roots = asCopy;
  }
  return roots;
}

/**
 * Check the command line, in the order a user would fix it; throws the first UsageError.
 * `speaks`: this is the rank that prints (rank 0), and the one that reads files only it may see.
 */
export function validate(opts: FcpOptions, cmd: Command, argv: string[], speaks: boolean): FcpPlan {
  const update: false | 'time' | 'checksum' = opts.update || opts.updateMode ? (opts.updateMode ?? 'time') : false;
  const filter = buildFilter(argv);
  if (!opts.hash && (opts.verify || opts.signature)) {
    throw new UsageError(`--${opts.verify ? 'verify' : 'signature'} needs the hashes that --no-hash turns off`);
  }
  if (!opts.delete && (opts.maxDelete !== undefined || opts.deleteFromEmpty)) {
    throw new UsageError(`--${opts.maxDelete !== undefined ? 'max-delete' : 'delete-from-empty'} is a guard of --delete, which is not given`);
  }
  // Hashes are kept per 1 MiB leaf (see checksum/hasher.ts): chunks start on leaf boundaries.
  if (opts.chunkSize && opts.hash && opts.chunkSize % LEAF !== 0) {
    throw new UsageError(`--chunk-size must be a multiple of 1M (hashes are kept per 1 MiB leaf), not ${opts.chunkSize}; or add --no-hash`);
  }
  if (opts.logDir && !opts.dryRun) {
    // Made here, so that a --log-dir that cannot be made is a usage error, not a crash later.
    try {
      mkdirpSync(opts.logDir);
    } catch (err) {
      throw new UsageError(`cannot use --log-dir '${showPath(opts.logDir)}': ${causeOf(err)}`, { cause: err });
    }
  }
  if (opts.layoutXattr !== undefined && (opts.layoutXattr === '' || opts.layoutXattr.includes('\0'))) throw new UsageError('--layout-xattr needs an attribute name');
  if (opts.report !== undefined && opts.dryRun) throw new UsageError('--report records what a copy did; --dry-run prints what it would do');
  if (opts.report === undefined && cmd.getOptionValueSource('reportFormat') === 'cli') throw new UsageError('--report-format needs --report');
  const npError = npRefused('fcp', opts.np, opts.forceNp);
  if (npError) throw new UsageError(npError.replace(/^fcp: /, ''));
  if (speaks && opts.memLimit < MIN_FULL_BUDGET) {
    const b = budgets(opts.memLimit);
    process.stderr.write(`fcp: --mem-limit ${formatBytes(opts.memLimit)} is below ${formatBytes(MIN_FULL_BUDGET)}: each rank still keeps up to ${b.queueItems} work items and ${b.listEntries} list entries in memory\n`);
  }
  const paths = cmd.processedArgs[0] as string[];
  const filesFromError = checkFilesFrom(opts, paths, speaks);
  if (filesFromError) throw new UsageError(filesFromError);
  // Only rank 0 reads the limits file; a wrong path is a usage error, not a limit never applied.
  if (speaks && opts.limitsFile !== undefined) {
    let isDir = false;
    try {
      isDir = statSync(opts.limitsFile).isDirectory();
      if (!isDir) accessSync(opts.limitsFile, fsConstants.R_OK);
    } catch (err) {
      throw new UsageError(`cannot read --limits-file '${showPath(opts.limitsFile)}': ${causeOf(err)}`, { cause: err });
    }
    if (isDir) throw new UsageError(`cannot read --limits-file '${showPath(opts.limitsFile)}': Is a directory (EISDIR)`);
  }
  const reportFile = opts.report === undefined ? null : resolve(opts.report);
  const roots = jobRoots(opts, paths);
  if (reportFile !== null) {
    const problem = reportProblem(reportFile, roots);
    if (problem) throw new UsageError(problem);
  }
  // Only the addon resolves paths beneath the roots without following symlinks
  // (io/beneath.ts); root, whom no permission stops, must not run without that.
  if (!opts.unsafePaths && (process.getuid?.() ?? 1) === 0 && !loadNative()) {
    throw new UsageError(`refusing to run as root without the native addon (${nativeLoadError()}): paths could not be resolved safely beneath SRC and DST; build it (npm install) or pass --unsafe-paths`);
  }
  return { update, filter, paths, roots, reportFile };
}
