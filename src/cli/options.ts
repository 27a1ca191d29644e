/** Command-line helpers shared by fcp and fsum. */
import { CommanderError, InvalidArgumentError, Option, type Command } from '../util/cjs-deps.js';
import { EXIT } from '../errors.js';
import { npLimit } from '../launch/self-launch.cjs';
import { parseSize } from '../util/parse-size.js';
import { parseDuration } from './duration.js';
import { parseBwlimit, parseMaxOps } from '../limits/rates.js';

export { parseDuration };

/**
 * Accept the MPI-style `-np N` (and `-np=N`) that HPC users type, as `--np N`, and
 * `--update=MODE` as `--update --update-mode MODE` (a plain `--update` must not take the
 * next argument, SRC, as its value).
 */
export function normalizeArgv(argv: string[]): string[] {
  const out: string[] = [];
  for (const a of argv) {
    if (a === '-np') out.push('--np');
    else if (a.startsWith('-np=')) out.push(`--np=${a.slice(4)}`);
    else if (a.startsWith('--update=')) out.push('--update', '--update-mode', a.slice('--update='.length));
    else out.push(a);
  }
  return out;
}

/**
 * Parse `argv` with `cmd`, as every rank does; only rank 0 (`speaks`) prints. A usage
 * error exits 2 (--help and --version exit 0), on rank 0 after the line `usageJson` gives
 * for it, if any: --json promises a last line on every exit, also when the rest of the
 * command line did not parse.
 */
export function parseOrExit(cmd: Command, argv: string[], speaks: boolean, usageJson: (reason: string) => object | null): void {
  if (!speaks) cmd.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  try {
    cmd.parse(normalizeArgv(argv), { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    const line = err.exitCode !== 0 && speaks ? usageJson(err.message.replace(/^error: /, '')) : null;
    if (line) process.stdout.write(`${JSON.stringify(line)}\n`);
    process.exit(err.exitCode === 0 ? 0 : EXIT.USAGE);
  }
}

/** Repeatable option: collect every value. */
export const collect = (v: string, prev: string[]) => [...prev, v];

/** --exclude / --include / --exclude-from in command-line order (the order decides, see walk/filter.ts). */
export function filterArgs(argv: string[]): { include: boolean; pattern?: string; file?: string }[] {
  const out: { include: boolean; pattern?: string; file?: string }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    for (const [flag, include, isFile] of [['--exclude', false, false], ['--include', true, false], ['--exclude-from', false, true]] as const) {
      let v: string | undefined;
      if (a === flag) v = argv[++i];
      else if (a.startsWith(`${flag}=`)) v = a.slice(flag.length + 1);
      if (v !== undefined) out.push(isFile ? { include, file: v } : { include, pattern: v });
    }
  }
  return out;
}

export function positiveInt(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError(`${name} must be a positive integer, not '${v}'`);
    return Number(v);
  };
}

/** A count that may be 0 (--retries 0: none), at most `max`. */
export function countOption(name: string, max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) > max) throw new InvalidArgumentError(`${name} must be an integer from 0 to ${max}, not '${v}'`);
    return Number(v);
  };
}

/** The longest a Node timer waits (2^31-1 ms); a longer one would fire at once. */
const MAX_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

export function seconds(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > MAX_SECONDS) throw new InvalidArgumentError(`${name} must be a number of seconds above 0 and at most ${MAX_SECONDS}, not '${v}'`);
    return n;
  };
}

export function duration(name: string) {
  return (v: string): number => {
    const s = parseDuration(v);
    if (s === null) throw new InvalidArgumentError(`${name} must be a duration such as 3h50m, 45m or 90s, not '${v}'`);
    return s;
  };
}

/** A size (64M, 1G, 4096) of at least `min` bytes and, if `multiple` is given, a multiple of it. */
export function sizeOption(name: string, min: number, multiple?: number) {
  const show = (n: number) => (n % 2 ** 20 === 0 ? `${n / 2 ** 20}M` : `${n}`);
  return (v: string): number => {
    let n: number;
    try {
      n = parseSize(v);
    } catch (err) {
      throw new InvalidArgumentError(`${name}: ${(err as Error).message}`);
    }
    if (n < min) throw new InvalidArgumentError(`${name} must be at least ${show(min)}, not '${v}'`);
    if (multiple && n % multiple !== 0) throw new InvalidArgumentError(`${name} must be a multiple of ${show(multiple)} (1 MiB hash leaves), not '${v}'`);
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} is too large: '${v}'`);
    return n;
  };
}

/** --bwlimit (bytes/s) and --max-ops (operations/s): 0 or `none` is unlimited. */
export function rateOption(name: '--bwlimit' | '--max-ops') {
  return (v: string): number => {
    try {
      return name === '--bwlimit' ? parseBwlimit(v) : parseMaxOps(v);
    } catch (err) {
      throw new InvalidArgumentError(`${name}: ${(err as Error).message}`);
    }
  };
}

/** -np past the limit (see npLimit) without --force-np: the usage error's text, else null. */
export function npRefused(tool: string, np: number, forceNp: boolean): string | null {
  const limit = npLimit();
  if (np <= limit || forceNp) return null;
  return `${tool}: -np ${np} is more than this machine should start (at most ${limit}: 4 per core, at least 1024); add --force-np to start them anyway`;
}

/**
 * The options every tool has for its ranks to find each other (after the tool's own):
 * rendezvous, bind, job id, timeouts, version, help.
 */
export function addLaunchOptions(cmd: Command, rendezvousDefault: string, version: string): Command {
  // Usage errors in the tools' own shape: "fcp: unknown option '--bogus'".
  cmd.configureOutput({ outputError: (str, write) => write(`${cmd.name()}: ${str.replace(/^error: /, '')}`) });
  return cmd
    .option('--rendezvous <dir>', `directory where ranks started by a launcher publish their endpoints; must be reachable from every node (default: ${rendezvousDefault})`)
    .option('--bind <addr>', 'address or interface name ranks listen on (default: loopback when all ranks are on one host, else the first non-loopback IPv4 address)')
    .option('--job-id <id>', 'job identifier for the rendezvous when the launcher exports none (MPICH without Slurm)')
    .option('--startup-timeout <s>', 'seconds to wait for every rank to show up', seconds('--startup-timeout'), 60)
    .option('--heartbeat-timeout <s>', 'seconds of silence after which a rank is declared dead', seconds('--heartbeat-timeout'), 6)
    .option('--force-np', 'start -np ranks even above 4 per core (and above 1024)', false)
    // For tests only (not in --help): steal replies leave a random 0..MS ms late, so a
    // test can widen the engine's race windows. Injected here, not read from the environment.
    .addOption(new Option('--test-delay-work-ms <ms>', 'for tests: delay steal replies by up to MS ms').argParser(countOption('--test-delay-work-ms', 60_000)).hideHelp())
    // For tests only: abort messages (and requests for one) leave MS ms late, as on a
    // loaded machine, so a test can show a reason is printed once however slow delivery is.
    .addOption(new Option('--test-delay-abort-ms <ms>', 'for tests: delay abort messages by MS ms').argParser(countOption('--test-delay-abort-ms', 60_000)).hideHelp())
    // For tests only: rounds of N records in the routed exchanges (hard links, fsum's
    // records), so a small tree goes through many rounds.
    .addOption(new Option('--test-exchange-round <n>', 'for tests: records per exchange round').argParser(countOption('--test-exchange-round', 1_000_000)).hideHelp())
    .version(version, '-V, --version')
    .helpOption('-h, --help', 'show this help');
}
