/**
 * Phases with nothing to do anywhere are skipped, with their collectives (phases/
 * walk-phase.ts leftAfterWalk), and the copy is as exact as when they ran: real rank
 * processes, real files. FCP_TRACE_PHASES=1 (the named debug switch) makes rank 0 say how
 * many engine phases and collectives the job ran.
 */
import { chmodSync, linkSync, lstatSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { lastJson, repoRoot, run, scratch } from '../helpers/run.js';
import { envWith, fcp, treecmp } from '../helpers/trees.js';

interface Trace { phases: number; collectives: number }

function traceOf(stderr: string): Trace {
  const m = /^\[phase\] exit at [\d.]+ ms \(engine phases (\d+), collectives (\d+)\)$/m.exec(stderr);
  expect(m, stderr).not.toBeNull();
  return { phases: Number(m![1]), collectives: Number(m![2]) };
}

/** Three levels of directories with small files; directory modes and times the copy must set last, deepest first. */
function plainTree(root: string): void {
  let dir = root;
  mkdirSync(dir, { recursive: true });
  for (let level = 0; level < 3; level++) {
    for (let i = 0; i < 30; i++) writeFileSync(join(dir, `f${i}`), `level ${level} file ${i}\n`);
    const sub = join(dir, `d${level}`);
    mkdirSync(sub);
    dir = sub;
  }
  writeFileSync(join(dir, 'last'), 'deepest\n');
  // Read-only and dated directories: their metadata comes after what is inside them.
  chmodSync(join(root, 'd0', 'd1'), 0o555);
  utimesSync(join(root, 'd0', 'd1'), 1_000_000, 1_000_000);
  utimesSync(join(root, 'd0'), 2_000_000, 2_000_000);
}

describe('phases with nothing to do are skipped', () => {
  let s: { dir: string; cleanup: () => void };
  beforeAll(() => {
    s = scratch('phase-skips');
  });
  afterAll(() => s?.cleanup());

  const copy = async (src: string, dst: string, np: string, extra: string[] = []) => {
    const r = await fcp([src, dst, '-np', np, '--json', ...extra], { env: envWith({ FCP_TRACE_PHASES: '1' }) });
    expect(r.code, r.stderr).toBe(0);
    return { trace: traceOf(r.stderr), summary: lastJson<{ files: number; filesCopied: number; filesUpToDate: number; signature: string | null }>(r.stdout) };
  };

  it('small plain files only: one engine phase (the walk copies them), the copy exact, directory metadata set deepest first', async () => {
    const src = join(s.dir, 'plain');
    plainTree(src);
    for (const np of ['1', '3']) {
      const dst = join(s.dir, `plain-${np}`);
      const { trace, summary } = await copy(src, dst, np);
      expect(summary.filesCopied).toBe(91);
      expect(trace.phases).toBe(1);
      const cmp = await treecmp(src, dst);
      expect(cmp.code, cmp.output).toBe(0);
    }
  }, 120_000);

  it('a hard link, a symlink and a FIFO: the copy and link phases still run, and the copy is exact', async () => {
    const src = join(s.dir, 'mixed');
    plainTree(src);
    linkSync(join(src, 'f1'), join(src, 'd0', 'f1-link'));
    symlinkSync('f2', join(src, 'd0', 'to-f2'));
    expect(spawnSync('mkfifo', [join(src, 'd0', 'd1', 'fifo')]).status).toBe(0);
    const dst = join(s.dir, 'mixed-3');
    const { trace } = await copy(src, dst, '3');
    // the walk and the copy phase (the hard-linked file, the symlink, the FIFO); mkdir is skipped (the walk made every directory)
    expect(trace.phases).toBe(2);
    const cmp = await treecmp(src, dst);
    expect(cmp.code, cmp.output).toBe(0);
    expect(lstatSync(join(dst, 'd0', 'f1-link')).ino).toBe(lstatSync(join(dst, 'f1')).ino);
  }, 120_000);

  it('fewer collectives than when every phase ran, and the same signature as fsum at -np 1 and 3', async () => {
    const src = join(s.dir, 'sig');
    plainTree(src);
    linkSync(join(src, 'f1'), join(src, 'f1-link'));
    const ref = await run(process.execPath, [join(repoRoot, 'bin', 'fsum.js'), src, '--json'], { timeoutMs: 60_000 });
    expect(ref.code, ref.stderr).toBe(0);
    const want = lastJson<{ signature: string }>(ref.stdout).signature;
    const seen: Trace[] = [];
    for (const np of ['1', '3']) {
      const { trace, summary } = await copy(src, join(s.dir, `sig-${np}`), np, ['--signature']);
      expect(summary.signature).toBe(want);
      seen.push(trace);
    }
    // A plain tree at -np 3 needs fewer collectives than one with a hard link (its plan exchanges and its phase).
    const { trace: plain } = await copy(join(s.dir, 'plain'), join(s.dir, 'plain-again'), '3');
    expect(plain.collectives).toBeLessThan(seen[1]!.collectives);
  }, 120_000);

  it('--update over a finished copy: nothing copied, no copy nor mkdir phase, DST unchanged; with --report, mkdir says each directory is up to date', async () => {
    const src = join(s.dir, 'plain');
    const dst = join(s.dir, 'plain-3');
    const { trace, summary } = await copy(src, dst, '3', ['--update']);
    expect(summary.filesUpToDate).toBe(91);
    expect(summary.filesCopied).toBe(0);
    // the walk only: it found every file up to date and every directory in DST
    expect(trace.phases).toBe(1);
    const cmp = await treecmp(src, dst);
    expect(cmp.code, cmp.output).toBe(0);
    // A directory DST lacks brings the mkdir phase back, and it is made.
    mkdirSync(join(src, 'd0', 'new'));
    const again = await copy(src, dst, '3', ['--update']);
    expect(again.trace.phases).toBe(2);
    expect((await treecmp(src, dst)).code).toBe(0);
    const report = join(s.dir, 'update-report');
    const rep = await copy(src, dst, '3', ['--update', '--report', report]);
    expect(rep.trace.phases).toBe(2);
    const lines = readFileSync(report, 'utf8').split('\n').filter((l) => l.length > 0);
    expect(lines.filter((l) => /^= (\.|d0|d0\/d1|d0\/d1\/d2|d0\/new)$/.test(l)).sort()).toEqual(['= .', '= d0', '= d0/d1', '= d0/d1/d2', '= d0/new']);
  }, 120_000);
});
