/**
 * --bwlimit, --max-ops and --limits-file: a job-wide rate shared by the ranks, measured
 * on real copies by real rank processes on tmpfs. Each limited copy is checked against an
 * unlimited copy of the same tree, which must take well under its time (< 30%): the limit,
 * not the (shared, busy) machine, is what sets the pace measured.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, repoRoot, type RunResult } from '../helpers/run.js';
import { treecmp } from '../helpers/trees.js';

const fcpJs = join(repoRoot, 'bin/fcp.js');
const MiB = 1024 * 1024;

interface Summary { bytesCopied: number; filesCopied: number; dirs: number; seconds: number; exitCode: number }
interface Progress { progress: string; bytes?: number; totalBytes?: number; elapsed: number }

let work: string;

beforeAll(() => {
  work = mkdtempSync('/dev/shm/fcp-test-limits-');
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** fcp run to its end; `onLine` sees each stdout line as it arrives (with the time since start). */
function fcp(args: string[], onLine?: (line: string, ms: number) => void, timeoutMs = 90_000): Promise<RunResult> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [fcpJs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) onLine?.(l, Date.now() - t0);
  });
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((r) => child.on('close', (code, signal) => {
    clearTimeout(timer);
    r({ code, signal, stdout, stderr, ms: Date.now() - t0 });
  }));
}

/** `large` files of `largeMiB` MiB (cut into chunks) and `small` files of 1 MiB (copied in batches). */
function dataTree(name: string, large: number, largeMiB: number, small: number): string {
  const src = join(work, name);
  mkdirSync(join(src, 'big'), { recursive: true });
  mkdirSync(join(src, 'small'), { recursive: true });
  const block = randomBytes(MiB);
  for (let i = 0; i < large; i++) {
    const b = Buffer.alloc(largeMiB * MiB);
    for (let o = 0; o < b.length; o += MiB) block.copy(b, o);
    b.writeUInt32LE(i, 0); // no two files alike
    writeFileSync(join(src, 'big', `f${i}`), b);
  }
  for (let i = 0; i < small; i++) {
    block.writeUInt32LE(i, 0);
    writeFileSync(join(src, 'small', `f${i}`), block);
  }
  return src;
}

/**
 * A copy with its --json summary and how long its ranks took to start: on this shared,
 * loaded machine starting three ranks takes up to 2-3 s, which no limit paces, so the
 * rate is measured from when the job began (the first --progress json line arrives
 * `elapsed` seconds after the job began) to the summary's end.
 */
async function timedCopy(args: string[]): Promise<{ s: Summary; startup: number; stderr: string }> {
  let startup = -1;
  const r = await fcp([...args, '--progress', 'json', '--json'], (line, ms) => {
    if (startup < 0 && line.startsWith('{"progress"')) startup = ms / 1000 - (JSON.parse(line) as Progress).elapsed;
  });
  expect(r.code, r.stderr).toBe(0);
  expect(startup).toBeGreaterThan(0);
  return { s: lastJson<Summary>(r.stdout), startup, stderr: r.stderr };
}

/** An unlimited copy of src, as the baseline a limited one must be well slower than. */
async function unlimitedMs(src: string, np: number): Promise<number> {
  const dst = join(work, `unlimited-${Date.now()}`);
  const r = await fcp([src, dst, '-np', String(np), '--no-checkpoint', '--json']);
  expect(r.code, r.stderr).toBe(0);
  rmSync(dst, { recursive: true, force: true });
  return lastJson<Summary>(r.stdout).seconds * 1000;
}

describe('rate limits', () => {
  it('--bwlimit 8M at -np 3: 96 MiB of large and small files take about 12 s (the rate within 20%)', async () => {
    const src = dataTree('bw', 2, 24, 48);
    const dst = join(work, 'bw-dst');
    const { s, startup } = await timedCopy([src, dst, '-np', '3', '--bwlimit', '8M']);
    expect(s.bytesCopied).toBe(96 * MiB);
    const rate = s.bytesCopied / (s.seconds - startup);
    const show = `${(rate / MiB).toFixed(2)} MiB/s over ${s.seconds.toFixed(1)} s less ${startup.toFixed(1)} s of startup`;
    expect(rate / (8 * MiB), show).toBeGreaterThan(0.8);
    expect(rate / (8 * MiB), show).toBeLessThan(1.2);
    expect((await treecmp(src, dst)).differences).toBe(0);
    // The limit set the pace, not the machine.
    expect(await unlimitedMs(src, 3)).toBeLessThan(0.3 * s.seconds * 1000);
  }, 120_000);

  it('--max-ops 400 at -np 3: 2000 small files in 40 directories, about 4000 operations, take about 10 s (operations per second within 20%)', async () => {
    const src = join(work, 'ops');
    for (let d = 0; d < 40; d++) {
      mkdirSync(join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 50; f++) writeFileSync(join(src, `d${d}`, `f${f}`), `file ${d}/${f}\n`);
    }
    const dst = join(work, 'ops-dst');
    const { s, startup } = await timedCopy([src, dst, '-np', '3', '--max-ops', '400']);
    expect(s.filesCopied).toBe(2000);
    // What counts (README, Limits): the walk's lstat of each entry below the root and read of
    // each directory; a directory made; a file copied; a directory's metadata set.
    const ops = (s.filesCopied + s.dirs - 1) + s.dirs + s.dirs + s.filesCopied + s.dirs;
    expect(ops).toBe(4163);
    const rate = ops / (s.seconds - startup);
    const show = `${rate.toFixed(0)} ops/s over ${s.seconds.toFixed(1)} s less ${startup.toFixed(1)} s of startup`;
    expect(rate / 400, show).toBeGreaterThan(0.8);
    expect(rate / 400, show).toBeLessThan(1.2);
    expect((await treecmp(src, dst)).differences).toBe(0);
    expect(await unlimitedMs(src, 3)).toBeLessThan(0.3 * s.seconds * 1000);
  }, 120_000);

  it('a --limits-file raised from 4M to 16M during the copy speeds it up; its bad line is named once and ignored', async () => {
    const src = dataTree('file', 2, 32, 32);
    const dst = join(work, 'file-dst');
    const limits = join(work, 'limits.conf');
    writeFileSync(limits, '# fcp limits\nbwlimit=4M\nspeed=fast\n');
    const seen: { ms: number; bytes: number }[] = [];
    let changedAt = 0;
    const r = await fcp([src, dst, '-np', '2', '--limits-file', limits, '--progress', 'json', '--json'], (line, ms) => {
      if (!line.startsWith('{"progress":"copy"')) return;
      const p = JSON.parse(line) as Progress;
      seen.push({ ms, bytes: p.bytes! });
      // After about 4 s of copying, the operator raises the limit (the bad line stays).
      if (changedAt === 0 && seen.length >= 2 && ms - seen[0]!.ms >= 4000) {
        writeFileSync(limits, '# fcp limits\nbwlimit=16M\nspeed=fast\n');
        changedAt = ms;
      }
    });
    expect(r.code, r.stderr).toBe(0);
    expect(changedAt).toBeGreaterThan(0);
    expect((await treecmp(src, dst)).differences).toBe(0);
    // The bad line: named once (the file was read twice), with the path, line and cause.
    const bad = r.stderr.split('\n').filter((l) => l.includes('speed=fast'));
    expect(bad).toEqual([`fcp: --limits-file '${limits}' line 3 ('speed=fast'): unknown key 'speed' (bwlimit, max-ops); line ignored`]);
    expect(r.stderr).toContain(`fcp: limits now bwlimit 16.0 MiB/s, max-ops unlimited (from '${limits}')`);
    // Bytes per second from the progress lines: before the change, and from 3 s after it
    // (the file is looked at every 2 s) to the end of the copy.
    const slope = (a: { ms: number; bytes: number }, b: { ms: number; bytes: number }) => (b.bytes - a.bytes) / ((b.ms - a.ms) / 1000);
    const before = seen.filter((p) => p.ms <= changedAt);
    const after = seen.filter((p) => p.ms >= changedAt + 3000 && p.bytes < 96 * MiB);
    const last = seen.find((p) => p.bytes === 96 * MiB) ?? seen[seen.length - 1]!;
    const slow = slope(before[0]!, before[before.length - 1]!);
    const fast = slope(after[0] ?? last, last);
    const show = `before ${(slow / MiB).toFixed(1)} MiB/s, after ${(fast / MiB).toFixed(1)} MiB/s; lines ${JSON.stringify(seen)}, changed at ${changedAt}`;
    expect(after.length, show).toBeGreaterThan(0);
    expect(slow / (4 * MiB), show).toBeLessThan(1.3);
    expect(fast / slow, show).toBeGreaterThan(2);
  }, 120_000);

  it('waiting for a turn is no stall (--stall-timeout 1 with 4 s waits), and SIGTERM stops a paced job at once, resumable', async () => {
    const src = dataTree('wait', 0, 0, 8); // one batch of 8 MiB: 4 s at 2 MiB/s
    const paced = await fcp([src, join(work, 'wait-dst'), '--bwlimit', '2M', '--stall-timeout', '1', '--json']);
    expect(paced.code, paced.stderr).toBe(0);
    expect(lastJson<Summary>(paced.stdout).seconds).toBeGreaterThan(3.2);
    expect(paced.stderr).not.toContain('has not returned');

    const dst = join(work, 'term-dst');
    const ck = join(work, 'term-ck');
    const child = spawn(process.execPath, [fcpJs, src, dst, '-np', '2', '--bwlimit', '512K', '--checkpoint-dir', ck], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    await new Promise((r) => setTimeout(r, 3000));
    const t0 = Date.now();
    child.kill('SIGTERM');
    expect(await exited, stderr).toBe(4);
    expect(Date.now() - t0).toBeLessThan(3000);
    const res = await fcp(['--resume', src, dst, '--checkpoint-dir', ck, '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect((await treecmp(src, dst)).differences).toBe(0);
  }, 60_000);

  it('a bad --bwlimit or --max-ops, or a --limits-file that cannot be read, is a usage error naming it (exit 2)', async () => {
    const src = join(work, 'usage');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'a'), 'a');
    const cases: [string[], RegExp][] = [
      [['--bwlimit', 'fast'], /^fcp: option '--bwlimit <rate>' argument 'fast' is invalid\. --bwlimit: not a size: 'fast'/],
      [['--max-ops', '-5'], /^fcp: option '--max-ops <rate>' argument '-5' is invalid\. --max-ops: not a number/],
      [['--limits-file', join(work, 'no-such-file')], new RegExp(`^fcp: cannot read --limits-file '${join(work, 'no-such-file')}': No such file or directory \\(ENOENT\\)$`)],
      [['--limits-file', work], new RegExp(`^fcp: cannot read --limits-file '${work}': Is a directory \\(EISDIR\\)$`)],
    ];
    for (const [args, line] of cases) {
      const r = await fcp([src, join(work, 'usage-dst'), ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')[0], args.join(' ')).toMatch(line);
    }
  }, 60_000);

  it('0 and none mean unlimited; a limits file that names no limit leaves the options in force; --update is paced by what it copies', async () => {
    const src = dataTree('none', 0, 0, 8);
    const limits = join(work, 'empty-limits');
    writeFileSync(limits, '# nothing here\n');
    const r = await fcp([src, join(work, 'none-dst'), '--bwlimit', 'none', '--max-ops', '0', '--json']);
    expect(r.code, r.stderr).toBe(0);
    // 2 MiB/s from the command line, for 8 MiB: about 4 s, the file changes nothing.
    const t = await fcp([src, join(work, 'none-dst2'), '--bwlimit', '2M', '--limits-file', limits, '--json']);
    expect(t.code, t.stderr).toBe(0);
    const limited = lastJson<Summary>(t.stdout).seconds;
    expect(limited).toBeGreaterThan(3.2);
    expect(lastJson<Summary>(r.stdout).seconds).toBeLessThan(0.6 * limited);
    // --update re-run: the files DST already has move no bytes, so they are not paced as if they did.
    const u = await fcp([src, join(work, 'none-dst2'), '--update', '--bwlimit', '2M', '--json']);
    expect(u.code, u.stderr).toBe(0);
    expect(lastJson<Summary & { filesUpToDate: number }>(u.stdout).filesUpToDate).toBe(8);
    expect(lastJson<Summary>(u.stdout).seconds).toBeLessThan(0.6 * limited);
  }, 60_000);
});
