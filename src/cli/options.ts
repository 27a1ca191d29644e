/** Command-line helpers shared by fcp and fsum. */
import { InvalidArgumentError } from 'commander';

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

export function seconds(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number of seconds, not '${v}'`);
    return n;
  };
}
