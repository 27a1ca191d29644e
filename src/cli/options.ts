/** Command-line helpers shared by fcp and fsum. */
import { InvalidArgumentError } from 'commander';

/** Accept the MPI-style `-np N` (and `-np=N`) that HPC users type, as `--np N`. */
export function normalizeArgv(argv: string[]): string[] {
  return argv.map((a) => (a === '-np' ? '--np' : a.startsWith('-np=') ? `--np=${a.slice(4)}` : a));
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
