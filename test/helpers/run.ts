/** Run real processes from tests: the project's commands and the shared tools. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const toolsDir = process.env.FCP_TOOLS_DIR ? resolve(process.env.FCP_TOOLS_DIR) : resolve(repoRoot, '../shared/tools');
export const dist = (p: string) => join(repoRoot, 'dist', p);
/** A test program (test/fixtures/*.ts, built into dist-test/fixtures by test/helpers/build-fixtures.ts). */
export const fixture = (p: string) => join(repoRoot, 'dist-test', 'fixtures', p);
export const isRoot = process.getuid?.() === 0;

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

export function run(cmd: string, args: string[], opts: SpawnOptions & { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
    // A command that exits before reading its input (fusermount3) closes the pipe first.
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${opts.timeoutMs} ms: ${cmd} ${args.join(' ')}\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`));
    }, opts.timeoutMs ?? 100_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

/** Start without waiting (for kill tests); collect output as it comes. */
export function start(cmd: string, args: string[], opts: SpawnOptions = {}): { child: ChildProcess; done: Promise<RunResult> } {
  const t0 = Date.now();
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  const done = new Promise<RunResult>((r) => child.on('close', (code, signal) => r({ code, signal, stdout, stderr, ms: Date.now() - t0 })));
  return { child, done };
}

/**
 * `cmd` in a process group of its own, with every rank it starts, so that a test can stop
 * the whole job at once as a node crash or a batch system would (kill). stdout is
 * ignored; stderr is kept; `exited` resolves with the exit code (null: a signal).
 */
export function startGroup(cmd: string, args: string[], opts: SpawnOptions = {}): {
  pid: number; stderr: () => string; exited: Promise<number | null>; ended: () => boolean; kill: (sig?: NodeJS.Signals) => void;
} {
  const child = spawn(cmd, args, { ...opts, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let ended = false;
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => {
    ended = true;
    r(code);
  }));
  const kill = (sig: NodeJS.Signals = 'SIGKILL') => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // the job had ended already
    }
  };
  return { pid: child.pid!, stderr: () => stderr, exited, ended: () => ended, kill };
}

/** Look at `ok` every `stepMs` until it holds or `ms` have passed; whether it held. */
export async function until(ok: () => boolean, ms = 30_000, stepMs = 10): Promise<boolean> {
  for (const end = Date.now() + ms; !ok(); await sleep(stepMs)) if (Date.now() > end) return false;
  return true;
}

/** The last line of stdout parsed as JSON (the tools' --json contract). */
export function lastJson<T = Record<string, unknown>>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

/** A scratch directory on tmpfs (fast, and what the benchmarks use too). */
export function scratch(prefix: string): { dir: string; cleanup: () => void } {
  const base = existsSync('/dev/shm') ? '/dev/shm' : '/tmp';
  const dir = mkdtempSync(join(base, `fcp-test-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function node(script: string, args: string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  return run(process.execPath, [isAbsolute(script) ? script : dist(script), ...args], opts);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Is a process still there (EPERM: it is, but not ours)? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
