/**
 * fcp's command line: every option, its parser and its help text (fcp --help), and the
 * parsed options' type. Validation across options is fcp-validate.ts's.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from '../util/cjs-deps.js';
import { addLaunchOptions, collect, countOption, duration, positiveInt, rateOption, seconds, sizeOption } from './options.js';
import { MAX_RETRIES } from '../io/retry.js';
import { DEFAULT_MEM_LIMIT } from './mem-budget.js';
import { parseMaxDelete, type MaxDelete } from '../copy/delete-guards.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** fcp's options as commander parsed them. */
export interface FcpOptions {
  np: number; forceNp: boolean; chunkSize?: number; json: boolean; quiet: boolean; rendezvous?: string; bind?: string; jobId?: string;
  startupTimeout: number; heartbeatTimeout: number; resume: boolean; checkpointDir?: string; checkpointInterval: number;
  keepCheckpoint: boolean; checkpoint: boolean; memLimit: number; hash: boolean; verify: boolean; signature: boolean;
  update: boolean; updateMode?: 'time' | 'checksum'; delete: boolean; maxDelete?: MaxDelete; deleteFromEmpty: boolean; dryRun: boolean; progress: 'auto' | 'line' | 'json' | 'none'; logDir?: string;
  stallTimeout: number; timeLimit?: number; retries: number;
  layout: 'inherit' | 'copy'; layoutXattr?: string; testCorruptBeforeVerify?: string; testDelayWorkMs?: number; testDelayAbortMs?: number; testSlowCopyMs?: number; testExchangeRound?: number;
  unsafePaths: boolean;
  filesFrom?: string; from0: boolean; recursiveList: boolean;
  sync: boolean;
  report?: string; reportFormat: 'text' | 'json';
  bwlimit?: number; maxOps?: number; limitsFile?: string;
}

function maxDeleteArg(v: string): MaxDelete {
  try {
    return parseMaxDelete(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function buildCommand(): Command {
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
    .addOption(new Option('--mem-limit <size>', 'memory budget per rank for work queues, file lists and checkpoint records, at least 1M; beyond it they go to SQLite (e.g. 512M)').argParser(sizeOption('--mem-limit', 2 ** 20)).default(DEFAULT_MEM_LIMIT, '128M'))
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
