/**
 * Checkpoint and resume: kill -9 of every rank at random moments (walk, copy, checkpoint
 * writes), SIGTERM, a source changed between the kill and the resume, the lock.
 * Real rank processes, real files, real SQLite.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, rmSync, utimesSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, repoRoot, run, scratch, sleep, toolsDir } from '../helpers/run.js';

const fcp = join(repoRoot, 'bin/fcp.js');

interface Summary {
  files: number; bytes: number; bytesCopied: number; bytesSkipped: number; filesCopied: number; filesSkipped: number; errors: number;
  ranks: { files: number; bytes: number }[];
}

let work: { dir: string; cleanup: () => void };
let src: string;
let fullSeconds = 0;
let totalBytes = 0;

/** Bytes of SRC files whose copy in DST is complete (same size and ns mtime: set last). */
function bytesComplete(srcDir: string, dstDir: string): number {
  const out = spawnSync('python3', ['-c', `
import os, sys
s, d = sys.argv[1].encode(), sys.argv[2].encode()
total = 0
for root, dirs, files in os.walk(s):
    for f in files:
        p = os.path.join(root, f)
        q = d + p[len(s):]
        try:
            a, b = os.lstat(p), os.lstat(q)
        except OSError:
            continue
        if a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns:
            total += a.st_size
print(total)`, srcDir, dstDir], { encoding: 'utf8' });
  return Number(out.stdout.trim());
}

function treecmp(a: string, b: string): { code: number | null; out: string } {
  const r = spawnSync('python3', [join(toolsDir, 'treecmp'), a, b], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout.split('\n').slice(-4).join('\n') };
}

/** Start fcp in its own process group, so the test can kill every rank at once. */
function startCopy(args: string[]): { pid: number; stderr: () => string; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, [fcp, ...args], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((r) => child.on('close', (code, signal) => r({ code, signal, stderr })));
  return { pid: child.pid!, stderr: () => stderr, done };
}

/** The pid of local rank `rank` of a -np job whose rank 0 is `root` (its child with FCP_RANK=rank), or null. */
function rankPid(root: number, rank: number): number | null {
  let kids: number[] = [];
  try {
    kids = readFileSync(`/proc/${root}/task/${root}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return null;
  }
  for (const k of kids) {
    try {
      if (readFileSync(`/proc/${k}/environ`, 'utf8').split('\0').includes(`FCP_RANK=${rank}`)) return k;
    } catch { /* gone */ }
  }
  return null;
}

beforeAll(async () => {
  work = scratch('resume');
  src = join(work.dir, 'src');
  // Many small files (a walk worth killing) and some large ones (chunks worth resuming).
  for (const [profile, sub, extra] of [['small', 'small', ['--files', '12000']], ['mixed', 'mixed', ['--files', '400', '--size', '400000000']]] as const) {
    const r = spawnSync('python3', [join(toolsDir, 'mktree'), profile, join(src, sub), ...extra], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  }
  const dst = join(work.dir, 'full');
  const t0 = Date.now();
  const r = await run(process.execPath, [fcp, src, dst, '-np', '2', '--json'], { timeoutMs: 120_000 });
  fullSeconds = (Date.now() - t0) / 1000;
  expect(r.code, r.stderr).toBe(0);
  totalBytes = lastJson<Summary>(r.stdout).bytes;
  rmSync(dst, { recursive: true, force: true });
}, 300_000);

afterAll(() => work?.cleanup());

describe('resume after kill -9 of every rank', () => {
  it('20 random kills, each resumed with another -np, end with 0 differences; recopied bytes stay within one checkpoint interval', async () => {
    const interval = 0.3;
    const rate = totalBytes / fullSeconds;
    const report: string[] = [];
    for (let trial = 0; trial < 20; trial++) {
      const dst = join(work.dir, `dst${trial}`);
      const np1 = 1 + (trial % 4);
      const np2 = 1 + ((trial + 1 + (trial % 3)) % 5);
      const resumeNp = np2 === np1 ? np2 + 1 : np2;
      // Spread kills from startup and walk (first 0.6 s) to late copy. The first lands during
      // startup, before anything can be durable (at 0.15 s a -np 1 job that started from
      // a quicker program had sometimes committed its first files already).
      const delay = trial < 5 ? 0.05 + trial * 0.12 : 0.3 + Math.random() * Math.max(0.5, fullSeconds * 1.2);
      const job = startCopy([src, dst, '-np', String(np1), '--checkpoint-interval', String(interval), '--quiet']);
      await sleep(delay * 1000);
      try {
        process.kill(-job.pid, 'SIGKILL');
      } catch {
        // already finished
      }
      const first = await job.done;
      await sleep(100);
      const hadCheckpoint = readdirSync(work.dir).some((n) => n.startsWith('.fcp-checkpoint'));
      const doneAtKill = existsSync(dst) ? bytesComplete(src, dst) : 0;
      const r = await run(process.execPath, [fcp, '--resume', src, dst, '-np', String(resumeNp), '--json'], { timeoutMs: 120_000 });
      expect(r.code, `trial ${trial}: ${r.stderr}`).toBe(0);
      const s = lastJson<Summary>(r.stdout);
      const cmp = treecmp(src, dst);
      expect(cmp.code, `trial ${trial} (kill at ${delay.toFixed(2)} s, np ${np1} -> ${resumeNp}): ${cmp.out}`).toBe(0);
      expect(s.errors).toBe(0);
      expect(s.bytesCopied + s.bytesSkipped).toBeGreaterThanOrEqual(s.bytes);
      const recopied = Math.max(0, doneAtKill - s.bytesSkipped);
      // What a rank finished after its last checkpoint write is done again: at most about one
      // interval of copying, plus what was in flight (a few whole-file batches and chunks).
      const bound = 2 * rate * interval + 4 * np1 * 32 * 2 ** 20;
      // (A job that had finished and removed its checkpoint has nothing to resume.)
      if (hadCheckpoint) expect(recopied, `trial ${trial}: recopied ${recopied} of ${doneAtKill} done`).toBeLessThanOrEqual(bound);
      report.push(`kill ${delay.toFixed(2)}s np ${np1}->${resumeNp}: done ${doneAtKill}, skipped ${s.bytesSkipped}, recopied ${recopied}`);
      rmSync(dst, { recursive: true, force: true });
      for (const n of readdirSync(work.dir)) if (n.startsWith('.fcp-checkpoint')) rmSync(join(work.dir, n), { recursive: true, force: true });
    }
    // The kills really landed at different stages: some runs had nothing durable, some a lot.
    expect(report.some((l) => / skipped 0,/.test(l))).toBe(true);
    expect(report.some((l) => !/ skipped 0,/.test(l))).toBe(true);
  }, 600_000);
});

describe('stop and change', () => {
  it('SIGTERM mid-copy exits 4 (stopped, resumable) naming the resume command; --resume finishes it', async () => {
    const dst = join(work.dir, 'term');
    const job = startCopy([src, dst, '-np', '2', '--checkpoint-interval', '0.3']);
    // SIGTERM once the copy is under way (files are landing in DST), whatever the load.
    for (let i = 0; i < 600 && !(existsSync(join(dst, 'small', 'd000')) && readdirSync(join(dst, 'small', 'd000')).length > 5); i++) await sleep(10);
    await sleep(150);
    process.kill(job.pid, 'SIGTERM');
    const first = await job.done;
    expect(first.code, first.stderr).toBe(4);
    expect(first.stderr).toMatch(/stopped by SIGTERM/);
    expect(first.stderr).toMatch(/resume with: fcp --resume /);
    const r = await run(process.execPath, [fcp, '--resume', src, dst, '-np', '3', '--json'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson<Summary>(r.stdout).bytesSkipped).toBeGreaterThan(0);
    expect(treecmp(src, dst).code).toBe(0);
    expect(readdirSync(work.dir).filter((n) => n.startsWith('.fcp-checkpoint'))).toEqual([]); // removed after success
    rmSync(dst, { recursive: true, force: true });
  }, 180_000);

  it('SIGTERM to one rank other than 0: rank 0 stops the whole job at once (exit 4), naming that rank once, then the resume command; --resume finishes it', async () => {
    const dst = join(work.dir, 'term-one');
    const job = startCopy([src, dst, '-np', '3', '--checkpoint-interval', '0.3']);
    for (let i = 0; i < 600 && !(existsSync(join(dst, 'small', 'd000')) && readdirSync(join(dst, 'small', 'd000')).length > 5); i++) await sleep(10);
    await sleep(150);
    const rank2 = rankPid(job.pid, 2);
    expect(rank2, 'rank 2 is a child of rank 0').not.toBeNull();
    const t0 = performance.now();
    let saidAt = 0;
    const said = setInterval(() => { if (!saidAt && /stopped by SIGTERM/.test(job.stderr())) saidAt = performance.now(); }, 5);
    process.kill(rank2!, 'SIGTERM');
    const first = await job.done;
    clearInterval(said);
    const exitMs = performance.now() - t0;
    expect(first.code, first.stderr).toBe(4);
    const lines = first.stderr.split('\n');
    const stopped = lines.filter((l) => /stopped by SIGTERM/.test(l));
    expect(stopped, first.stderr).toEqual([expect.stringMatching(/^fcp: stopped by SIGTERM on rank 2 \(.*pid \d+\)$/)]);
    const resumeAt = lines.findIndex((l) => /resume with: fcp --resume /.test(l));
    expect(resumeAt, first.stderr).toBeGreaterThan(lines.indexOf(stopped[0]!));
    // Rank 0 answers the request, not the fallback of a rank that hears nothing (SIGNAL_FALLBACK_MS, 2 s).
    expect(saidAt - t0, `said after ${(saidAt - t0).toFixed(0)} ms, exit after ${exitMs.toFixed(0)} ms`).toBeLessThan(2000);
    const r = await run(process.execPath, [fcp, '--resume', src, dst, '-np', '2', '--json'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson<Summary>(r.stdout).bytesSkipped).toBeGreaterThan(0);
    expect(treecmp(src, dst).code).toBe(0);
    rmSync(dst, { recursive: true, force: true });
  }, 180_000);

  it('a file changed in SRC between the kill and the resume is copied again', async () => {
    const own = scratch('resume-change');
    try {
      const s = join(own.dir, 'src');
      spawnSync('python3', [join(toolsDir, 'mktree'), 'small', s, '--files', '3000']);
      const dst = join(own.dir, 'dst');
      // Stop after the copy (a kept checkpoint) as if killed late: everything is recorded done.
      const first = await run(process.execPath, [fcp, s, dst, '-np', '2', '--keep-checkpoint', '--quiet'], { timeoutMs: 60_000 });
      expect(first.code, first.stderr).toBe(0);
      const victim = join(s, 'd000', 'e00005', 'f0000500.dat');
      const before = lstatSync(victim);
      writeFileSync(victim, Buffer.concat([readFileSync(victim), Buffer.from('changed after the copy')]));
      utimesSync(victim, before.atime, new Date(before.mtimeMs + 5000));
      const r = await run(process.execPath, [fcp, '--resume', s, dst, '-np', '3', '--json'], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      const sum = lastJson<Summary>(r.stdout);
      expect(sum.filesCopied).toBe(1);
      expect(sum.filesSkipped).toBe(2999);
      expect(treecmp(s, dst).code).toBe(0);
    } finally {
      own.cleanup();
    }
  }, 120_000);

  it('a second fcp on the same DST is refused while the first runs; a stale lock does not block --resume', async () => {
    const dst = join(work.dir, 'locked');
    const job = startCopy([src, dst, '-np', '2', '--checkpoint-interval', '0.3']);
    // Hold the first job still once it holds the lock (SIGSTOP: alive, but not finishing).
    const lock = () => readdirSync(work.dir).filter((n) => n.startsWith('.fcp-checkpoint')).map((n) => join(work.dir, n, 'lock')).find((p) => existsSync(p));
    for (let i = 0; i < 1000 && !lock(); i++) await sleep(10);
    expect(lock()).toBeDefined();
    process.kill(-job.pid, 'SIGSTOP');
    const second = await run(process.execPath, [fcp, '--resume', src, dst, '-np', '2'], { timeoutMs: 60_000 });
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/another fcp \(pid \d+ on .*\) is copying to this destination/);
    process.kill(-job.pid, 'SIGKILL');
    try { process.kill(-job.pid, 'SIGCONT'); } catch { /* gone already */ }
    await job.done;
    await sleep(100);
    const plain = await run(process.execPath, [fcp, src, dst, '-np', '2'], { timeoutMs: 60_000 });
    if (existsSync(dst)) {
      // DST exists now, so a plain run would copy into DST/src: refused only if it targets
      // the same checkpoint; either way it must not have touched DST's partial copy.
      expect([0, 2]).toContain(plain.code);
    }
    rmSync(join(dst, 'src'), { recursive: true, force: true });
    const r = await run(process.execPath, [fcp, '--resume', src, dst, '-np', '2', '--quiet'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(treecmp(src, dst).code).toBe(0);
    rmSync(dst, { recursive: true, force: true });
  }, 180_000);

  it('a rank file left empty (killed while creating it) or damaged does not stop --resume', async () => {
    const own = scratch('resume-damaged');
    try {
      const s2 = join(own.dir, 'src');
      spawnSync('python3', [join(toolsDir, 'mktree'), 'small', s2, '--files', '300']);
      const ck = join(own.dir, 'ck');
      spawnSync('mkdir', ['-p', ck]);
      writeFileSync(join(ck, 'g1-r0.db'), '');
      writeFileSync(join(ck, 'g1-r1.db'), 'not a database at all');
      const dst = join(own.dir, 'dst');
      const r = await run(process.execPath, [fcp, '--resume', s2, dst, '-np', '2', '--checkpoint-dir', ck, '--json'], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/ignoring unreadable checkpoint file .*g1-r1\.db/);
      expect(treecmp(s2, dst).code).toBe(0);
    } finally {
      own.cleanup();
    }
  });
});
