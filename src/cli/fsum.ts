/**
 * fsum PATH...: a content signature of one or more trees, computed by N cooperating ranks.
 *
 *   fsum PATH... [-o SUMFILE]        print the signature (and write a sum file)
 *   fsum --check SUMFILE PATH...     recompute and name what differs from the sum file
 *   fsum --compare A B               hash two trees in one job and name what differs
 *
 * The signature depends only on the data (relative paths, types, sizes, contents,
 * symlink targets; with --meta also permission bits, owner and mtime): not on -np, the
 * chunk size or the order of anything. With several PATHs each is a root and its
 * position is part of every entry's digest: `fsum A B` equals `fsum DST/A DST/B` after
 * `fcp A B DST`, and `fsum SRC` equals `fsum DST` after `fcp SRC DST`.
 *
 * Records (for -o, --check, --compare) never sit in memory all at once: rank 0 gets them
 * in a temporary table ordered like the sum file (see sum-job.ts), writes the sum file by
 * reading it in order, reads the sum file given to --check as a stream into another
 * such table, and compares the two in key order (a merge join), printing as it goes.
 *
 * Exit codes: 0 done (check/compare: nothing differs); 1 some entries could not be read
 * (each named on stderr) or something differs; 2 usage; 3 job aborted; 4 signal.
 */
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, Option } from '../util/cjs-deps.js';
import { EXIT } from '../engine/runtime.js';
import { UsageError, causeOf } from '../errors.js';
import { detectLauncher } from '../launch/env.cjs';
import { endJob, startJob, type Job } from '../launch/job.js';
import { joinPath, showPath } from '../model/paths.js';
import { isBuf } from '../model/entry.js';
import { formatBytes } from '../progress/format.js';
import { totalsLine } from '../jobs/job-totals.js';
import { LEAF, initHashing } from '../checksum/hasher.js';
import { readSumFile, readSumFileHeader, writeSumFileFrom, SumFileError, type SumFileHeader } from '../checksum/sumfile.js';
import { RecordTable } from '../checksum/record-table.js';
import { diffSorted, formatDifference, type Difference } from '../checksum/diff.js';
import { DEFAULT_SUM_CHUNK, runSumJob, type SumSummary } from '../jobs/sum-job.js';
import { JsonOnExit, ending, ranToEnd, type Ending } from './json-on-exit.js';
import { addLaunchOptions, npRefused, parseOrExit, positiveInt, sizeOption } from './options.js';
import { budgets, DEFAULT_MEM_LIMIT, MEM_LIMIT_HELP, MIN_FULL_BUDGET } from './mem-budget.js';
import { buildingSnapshot } from '../util/snapshot.js';
import { runToolMain, warmUpTool } from './tool-main.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Sizes are rounded up to a whole number of 1 MiB leaves. */
function buildCommand(): Command {
  const cmd = new Command('fsum')
    .description('Checksum one or more trees with N cooperating ranks: a 128-bit signature independent of -np, chunking and order, equal for a faithful copy.')
    .usage('[options] PATH...')
    .argument('<paths...>', 'trees (or files) to checksum; with --compare, the two trees A B')
    .option('-n, --np <N>', 'number of ranks to start when no launcher (mpirun, srun) started fsum; -np N works too', positiveInt('--np'), 1)
    .option('--meta', 'include permission bits, owner (uid:gid) and mtime (ns) of every entry', false)
    .option('--chunk-size <size>', `hash files larger than this in chunks of this size, a multiple of 1M; default ${DEFAULT_SUM_CHUNK / LEAF}M. Changes the sum file's chunk lines, never the signature`, sizeOption('--chunk-size', LEAF, LEAF))
    .option('-o, --output <sumfile>', 'write a sum file: one line per entry, sorted, with chunk digests of large files')
    .option('--check <sumfile>', 'recompute PATH... with the sum file\'s chunk size and name every missing, extra and differing entry; exit 1 if anything differs')
    .option('--compare', 'hash the two trees A B in one job and name every difference; exit 1 if anything differs', false)
    .option('--json', 'print the summary as one JSON object on the last line of stdout, on every exit (with exitCode, aborted, stopped, reason)', false)
    .option('-q, --quiet', 'no progress line, no summary: only the signature or the differences', false)
    .addOption(new Option('--mem-limit <size>', MEM_LIMIT_HELP).argParser(sizeOption('--mem-limit', 2 ** 20)).default(DEFAULT_MEM_LIMIT, '128M'))
    .addHelpText('after', `
Output: the signature (32 hex digits) and the PATHs, then a summary line. --check and
--compare print one line per difference on stdout:
  missing 'PATH/x'     in the sum file (or A), not in PATH (or B)
  extra 'PATH/y'       in PATH (or B) only
  differs 'PATH/z': content: bytes 67108864-134217727 differ
  differs 'PATH/w': type f -> l; size 3 -> 9; target; mode 0644 -> 0600; owner 0:0 -> 1:1; mtime ...
  unreadable 'PATH/u'  could not be read now (the error is on stderr)

Exit status: 0 done (nothing differs); 1 something differs, or some entries could not
be read (each named on stderr); 2 usage error; 3 job aborted; 4 stopped by a signal.`)
    .showHelpAfterError('(run fsum --help for usage)')
    // For tests only: small files read through the thread pool one by one (the path taken on slow file systems).
    .addOption(new Option('--test-async-reads', 'for tests: read every small file through the thread pool').hideHelp())
    .exitOverride();
  return addLaunchOptions(cmd, "the first PATH's parent directory", pkg.version);
}

interface Opts {
  np: number; forceNp: boolean; testDelayWorkMs?: number; testExchangeRound?: number; testAsyncReads?: boolean; meta: boolean; chunkSize?: number; output?: string; check?: string; compare: boolean; json: boolean; quiet: boolean; memLimit: number;
  rendezvous?: string; bind?: string; jobId?: string; startupTimeout: number; heartbeatTimeout: number;
}

class Usage extends UsageError {}

function summaryLine(s: SumSummary): string {
  return `fsum: ${totalsLine(s)}\n`;
}

/** A sum file given to --check: its header, and (on rank 0, once read) its records in an ordered table. */
interface SumCheck { head: SumFileHeader; table: RecordTable | null }

/**
 * Every rank checks the command line, and of a sum file given to --check its header, so
 * that all exit 2 on a usage error before the job starts. The whole sum file is read
 * and verified once, by rank 0, after the job started (readCheckFile).
 */
async function validate(opts: Opts, paths: string[]): Promise<{ sum: SumCheck | null }> {
  if (opts.check && opts.compare) throw new Usage('--check and --compare cannot be used together');
  if (opts.compare && paths.length !== 2) throw new Usage(`--compare takes exactly two trees, A and B (got ${paths.length})`);
  if (opts.compare && opts.output) throw new Usage('-o cannot be used with --compare');
  for (const p of paths) {
    try {
      lstatSync(p);
    } catch (err) {
      throw new Usage(`cannot stat '${showPath(p)}': ${causeOf(err)}`);
    }
  }
  if (opts.output) {
    const parent = dirname(resolve(opts.output));
    let ok = false;
    try {
      ok = statSync(parent).isDirectory();
    } catch { /* reported below */ }
    if (!ok) throw new Usage(`cannot write '${showPath(opts.output)}': directory '${showPath(parent)}' does not exist`);
  }
  let sum: SumCheck | null = null;
  if (opts.check) {
    if (opts.chunkSize) throw new Usage('--chunk-size cannot be used with --check (the sum file\'s chunk size is used)');
    try {
      sum = { head: await readSumFileHeader(opts.check), table: null };
    } catch (err) {
      throw checkFileError(opts.check, err);
    }
    if (sum.head.roots !== paths.length) throw new Usage(`'${showPath(opts.check)}' has ${sum.head.roots} root${sum.head.roots === 1 ? '' : 's'}, ${paths.length} PATH${paths.length === 1 ? '' : 's'} given`);
    if (opts.meta && !sum.head.meta) throw new Usage(`'${showPath(opts.check)}' was made without --meta`);
  }
  return { sum };
}

function checkFileError(file: string, err: unknown): Usage {
  if (err instanceof SumFileError) return new Usage(`'${showPath(file)}' is not a valid sum file: ${err.message}`);
  return new Usage(`cannot read '${showPath(file)}': ${causeOf(err)}`);
}

/**
 * Rank 0: read and verify the whole --check file into an ordered table (a stream, one
 * pass; the other ranks do not read it). Every rank learns the verdict: '' or the error.
 */
async function readCheckFile(rt: Job['rt'], file: string, sum: SumCheck): Promise<string> {
  let error = '';
  if (rt.rank === 0) {
    const table = new RecordTable({ ordered: true });
    try {
      await readSumFile(file, (x) => table.add(x));
      sum.table = table;
    } catch (err) {
      table.close();
      error = checkFileError(file, err).message;
    }
  }
  return rt.collectives.bcast<string>(rt.rank === 0 ? error : null, (x): x is string => typeof x === 'string');
}

async function main(argv: string[]): Promise<void> {
  const launch = detectLauncher();
  const speaks = launch.rank === 0; // only one rank prints usage errors
  const cmd = buildCommand();
  parseOrExit(cmd, argv, speaks, (reason) => (argv.includes('--json') ? sumJson({}, ending(EXIT.USAGE, reason)) : null));
  const opts = cmd.opts<Opts>();
  // --json: rank 0 prints a summary on every exit from here on, however the job ends.
  const jsonOut = opts.json && speaks ? new JsonOnExit<Record<string, unknown>>(sumJson) : null;
  const usage = (msg: string): never => {
    if (speaks) process.stderr.write(`fsum: ${msg}\n`);
    jsonOut?.ended(msg);
    process.exit(EXIT.USAGE);
  };
  const npError = npRefused('fsum', opts.np, opts.forceNp);
  if (npError) usage(npError.replace(/^fsum: /, ''));
  if (speaks && opts.memLimit < MIN_FULL_BUDGET) {
    const b = budgets(opts.memLimit);
    process.stderr.write(`fsum: --mem-limit ${formatBytes(opts.memLimit)} is below ${formatBytes(MIN_FULL_BUDGET)}: each rank still keeps up to ${b.queueItems} work items and ${b.listEntries} list entries in memory\n`);
  }
  const paths = cmd.processedArgs[0] as string[];
  if (opts.jobId) process.env.FCP_JOB_ID = opts.jobId;

  let sum: SumCheck | null;
  try {
    ({ sum } = await validate(opts, paths));
  } catch (err) {
    if (err instanceof Usage) usage(err.message);
    throw err;
  }
  await initHashing();

  const job = await startJob({
    tool: 'fsum',
    np: opts.np,
    rendezvous: opts.rendezvous,
    besidePath: resolve(paths[0]!),
    bind: opts.bind,
    startupTimeoutMs: opts.startupTimeout * 1000,
    heartbeatTimeoutMs: opts.heartbeatTimeout * 1000,
    delayWorkMs: opts.testDelayWorkMs || undefined,
    exchangeRound: opts.testExchangeRound || undefined,
    queueInMemory: budgets(opts.memLimit).queueItems,
    onStartupFailure: (reason) => jsonOut?.ended(reason),
  });
  const { rt } = job;
  rt.addAbortHook((reason) => jsonOut?.ended(reason));
  if (opts.check && sum) {
    const error = await readCheckFile(rt, opts.check, sum);
    if (error) {
      if (rt.rank === 0) process.stderr.write(`fsum: ${error}\n`);
      jsonOut?.ended(error);
      await endJob(job, EXIT.USAGE);
    }
  }
  // Rank 0's view of the roots and settings is the job's.
  type Plan = { roots: Buffer[]; chunk: number; meta: boolean };
  const isPlan = (x: unknown): x is Plan => {
    const p = x as Plan;
    return typeof x === 'object' && x !== null && Array.isArray(p.roots) && p.roots.every(isBuf) && Number.isSafeInteger(p.chunk) && p.chunk > 0 && p.chunk % LEAF === 0 && typeof p.meta === 'boolean';
  };
  const mine: Plan = {
    roots: paths.map((p) => Buffer.from(resolve(p))),
    chunk: sum ? sum.head.chunk : opts.chunkSize ?? DEFAULT_SUM_CHUNK,
    meta: sum ? sum.head.meta : opts.meta,
  };
  const plan = await rt.collectives.bcast<Plan>(rt.rank === 0 ? mine : null, isPlan);
  const roots = plan.roots.map((r) => Buffer.from(r));

  const res = await runSumJob(rt, {
    // no progress line under --json either (as fcp): launchers give ranks a terminal, and the JSON must stay clean
    roots, chunkSize: plan.chunk, meta: plan.meta, quiet: opts.quiet || opts.json,
    digestRoot: opts.compare ? () => 0 : undefined,
    gather: Boolean(opts.output || opts.check || opts.compare),
    listBudget: budgets(opts.memLimit).listEntries,
    // test hook: every file through the thread pool, as on a slow file system
    syncSmall: !opts.testAsyncReads,
  });
  let exitCode = res.exitCode;
  try {
    if (rt.rank === 0) {
      const r = await report(opts, paths, res.summary, res.records, sum);
      exitCode = Math.max(exitCode, r.code);
      jsonOut?.finished(r.json, exitCode);
    }
  } finally {
    res.records?.close();
    sum?.table?.close();
  }
  await endJob(job, exitCode);
}

/** Rank 0: write the sum file, compare, print. Returns the exit code it adds and the --json summary. */
async function report(opts: Opts, paths: string[], s: SumSummary, records: RecordTable | null, sum: SumCheck | null): Promise<{ code: number; json: Record<string, unknown> }> {
  const out = (line: string) => process.stdout.write(line);
  const given = paths.map((p) => Buffer.from(p));
  let code = 0;
  const json: Record<string, unknown> = { ...s, paths };

  if (opts.output && records) {
    try {
      const n = await writeSumFileFrom(opts.output, {
        chunk: s.chunkSize, meta: s.meta, rootPaths: given, signature: s.signature,
        entries: records.count({ readable: true }), records: records.sorted({ readable: true }),
      });
      json.sumFile = opts.output;
      json.sumFileEntries = n;
    } catch (err) {
      process.stderr.write(`fsum: cannot write '${showPath(opts.output)}': ${causeOf(err)}\n`);
      json.errors = s.errors + 1;
      code = 1;
    }
  }

  // Both sides in (root, path) order, so the differences come out in that order too.
  let diffs: Iterable<Difference> | null = null;
  let shown: (r: number, p: Buffer) => Buffer = (r, p) => joinPath(given[r]!, p);
  if (opts.check) {
    if (!sum?.table || !records) throw new Error('rank 0 lacks the records to check');
    diffs = diffSorted(sum.table.sorted(), records.sorted());
    json.check = opts.check;
    json.expectedSignature = sum.head.signature;
  } else if (opts.compare && records) {
    diffs = diffSorted(records.sorted({ root: 0 }), records.sorted({ root: 1, as: 0 }));
    shown = (_r, p) => joinPath(given[1]!, p);
    json.signature = s.rootSignatures[0];
    json.signatures = s.rootSignatures;
  }

  if (diffs) {
    if (!opts.json && !opts.quiet && opts.compare) out(`fsum: comparing '${showPath(paths[0]!)}' (reference) with '${showPath(paths[1]!)}'\n`);
    // printed as they come; only the first 1000 are kept for --json
    const n = { missing: 0, extra: 0, differs: 0, unreadable: 0 };
    const kept: { kind: string; path: string; what: string[]; ranges: [number, number][] }[] = [];
    let count = 0;
    for (const d of diffs) {
      out(`${formatDifference(d, shown)}\n`);
      n[d.kind]++;
      count++;
      if (kept.length < 1000) kept.push({ kind: d.kind, path: showPath(shown(d.r, d.p)), what: d.what, ranges: d.ranges });
    }
    json.differences = count;
    Object.assign(json, n);
    json.diffs = kept;
    if (count > 0) code = 1;
    if (!opts.json && !opts.quiet) {
      out(summaryLine(s));
      const what = opts.check ? `'${paths.map((p) => showPath(p)).join(' ')}' against '${showPath(opts.check)}'` : `'${showPath(paths[0]!)}' and '${showPath(paths[1]!)}'`;
      if (count === 0) out(`fsum: ${what}: no differences (signature ${opts.compare ? s.rootSignatures[0] : s.signature})\n`);
      else out(`fsum: ${what}: ${count} difference${count === 1 ? '' : 's'} (${n.missing} missing, ${n.extra} extra, ${n.differs} differing, ${n.unreadable} unreadable)\n`);
    }
  } else if (!opts.json) {
    out(`${s.signature}  ${paths.map((p) => showPath(p)).join(' ')}\n`);
    if (!opts.quiet) out(summaryLine(s));
  }
  return { code, json };
}

/** fsum's --json object: the summary (what is known of it), then how the job ended (see json-on-exit.ts). */
function sumJson(known: Partial<Record<string, unknown>>, end: Ending): object {
  const early = { signature: null, files: 0, dirs: 0, symlinks: 0, specials: 0, bytes: 0, errors: 0, seconds: performance.now() / 1000 };
  return { ...(ranToEnd(end.exitCode) ? {} : early), ...known, ...end };
}

/** Run fsum with the command line `argv` (the arguments after the script). */
export function runCli(argv: string[]): void {
  runToolMain('fsum', () => main(argv));
}

/** Run once while a startup snapshot is built (see warmUpTool), never in a job. */
export function warmUp(): void {
  warmUpTool(buildCommand(), ['/src']);
}

// The program runs when loaded; a startup snapshot (bin/snapshot.js) is built from these
// modules without running them, and its main function calls runCli in each rank it starts.
if (!buildingSnapshot()) runCli(process.argv.slice(2));
