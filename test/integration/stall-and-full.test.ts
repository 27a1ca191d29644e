/**
 * Hung and full file systems, and the stop machinery: a file system request that never
 * returns is named within --stall-timeout and the job stops (exit 4, resumable); SIGTERM
 * ends a job within seconds even while a thread is blocked in a hung request; a full
 * destination stops every rank with one line (exit 6) and the resume skips what was
 * done; --time-limit stops a copy as SIGTERM does. Real rank processes on latfs mounts
 * (hangs, ENOSPC, latency) and on a size-limited tmpfs (checkpoint on the full disk).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, lastJson, repoRoot, sleep, type RunResult } from '../helpers/run.js';
import { stderrLines, treecmp } from '../helpers/trees.js';
import { latfsStats, mountLatfs, processesMentioning, unmountAll } from '../helpers/latfs.js';

const fcpJs = join(repoRoot, 'bin/fcp.js');
const canMount = isRoot && spawnSync('fusermount3', ['-V']).status === 0;

interface Summary { files: number; bytes: number; bytesSkipped: number; filesSkipped: number; errors: number }

let work: string;

/** A tree of `dirs` directories with `files` random files of `size` bytes each (plus dir/file1..3). */
function makeSource(root: string, dirs: number, files: number, size: number): void {
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `d${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < files; f++) writeFileSync(join(dir, `f${f}`), randomBytes(size));
  }
  mkdirSync(join(root, 'dir'), { recursive: true });
  for (let f = 1; f <= 3; f++) writeFileSync(join(root, 'dir', `file${f}`), randomBytes(1000));
}

/** fcp started in the background, its output collected. */
function startFcp(args: string[]): { pid: number; done: Promise<RunResult> } {
  const t0 = Date.now();
  const child = spawn(process.execPath, [fcpJs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  const done = new Promise<RunResult>((r) => child.on('close', (code, signal) => r({ code, signal, stdout, stderr, ms: Date.now() - t0 })));
  return { pid: child.pid!, done };
}

/** fcp to the end (stdin closed from the start: a rank may exit at once). */
async function fcp(args: string[], opts: { timeoutMs: number } = { timeoutMs: 60_000 }): Promise<RunResult> {
  const job = startFcp(args);
  const timer = setTimeout(() => process.kill(job.pid, 'SIGKILL'), opts.timeoutMs);
  const r = await job.done;
  clearTimeout(timer);
  return r;
}

/** Every process of the job is gone (ranks found by the job's unique scratch path). */
async function noRankLeft(unique: string): Promise<number[]> {
  const until = Date.now() + 3000;
  // latfs's own command line names the scratch directory too: look for fcp's ranks only.
  const ranks = () => processesMentioning(unique).filter((pid) => processesMentioning('bin/fcp.js').includes(pid));
  let left = ranks();
  while (left.length > 0 && Date.now() < until) {
    await sleep(100);
    left = ranks();
  }
  return left;
}

beforeAll(() => {
  work = mkdtempSync('/dev/shm/fcp-test-stall-');
});

afterEach(async () => {
  await unmountAll();
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!canMount)('hung file systems', () => {
  for (const np of [1, 3]) {
    it(`-np ${np}: a hung source file is named within --stall-timeout, every rank exits 4, and a resume after the hang finishes exactly`, async () => {
      const base = mkdtempSync(join(work, `hang${np}-`));
      const back = join(base, 'back');
      makeSource(join(back, 'src'), 3, 20, 5000);
      const ck = join(base, 'ck');
      const dst = join(base, 'dst');
      let m = await mountLatfs(back, ['--hang', 'src/dir/file*'], 'stall');
      const args = [m.path('src'), dst, '-np', String(np), '--stall-timeout', '3', '--checkpoint-dir', ck, '--progress', 'json'];
      const r = await startFcp(args).done;
      expect(r.code, r.stderr).toBe(4);
      // Named: rank, operation, the path under which the request hangs, seconds.
      expect(r.stderr).toMatch(new RegExp(`^fcp: rank \\d+: [a-z ]+ '${m.path('src')}/dir[^']*' has not returned for [3-9] s \\(stalled file system\\?\\)$`, 'm'));
      expect(r.stderr).toContain(`resume with: fcp --resume ${m.path('src')}`);
      // Within seconds of the timeout, with the thread still blocked (nothing released it).
      expect(r.ms).toBeLessThan(15_000);
      // The progress output says why it stopped (and not "ETA 1 s").
      const last = JSON.parse(r.stdout.trim().split('\n').pop()!) as { progress: string; reason: string };
      expect(last.progress).toBe('stopped');
      expect(last.reason).toContain('has not returned');
      expect(await noRankLeft(base)).toEqual([]);

      m = await m.remount([]); // the hang is released
      const res = await fcp(['--resume', m.path('src'), dst, '-np', String(np), '--stall-timeout', '3', '--checkpoint-dir', ck, '--json'], { timeoutMs: 60_000 });
      expect(res.code, res.stderr).toBe(0);
      expect((await treecmp(m.path('src'), dst)).differences).toBe(0);
    });
  }

  it('a destination file that hangs holds back only itself: the rest of its batch is copied, then the stall stops the job', async () => {
    const base = mkdtempSync(join(work, 'batch-'));
    const src = join(base, 'src');
    // One small batch: the hung file among files of other directories (a create in the
    // hung file's own directory would wait for that directory's lock in the kernel).
    mkdirSync(join(src, 'solo'), { recursive: true });
    writeFileSync(join(src, 'solo', 'x'), 'x');
    for (const d of ['d0', 'd1', 'd2']) {
      mkdirSync(join(src, d));
      for (let f = 0; f < 8; f++) writeFileSync(join(src, d, `f${f}`), randomBytes(3000));
    }
    const back = join(base, 'back');
    let m = await mountLatfs(back, ['--hang', 'dst/solo/x'], 'stall');
    const dst = m.path('dst');
    const ck = join(base, 'ck');
    const r = await fcp([src, dst, '--stall-timeout', '5', '--checkpoint-dir', ck]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/^fcp: rank 0: copy of '.*\/solo\/x' has not returned for [5-9] s \(stalled file system\?\)$/m);
    // Every other file was copied, whatever its place in the batch (read behind latfs's back).
    for (const d of ['d0', 'd1', 'd2']) {
      for (let f = 0; f < 8; f++) expect(readFileSync(join(back, 'dst', d, `f${f}`))).toEqual(readFileSync(join(src, d, `f${f}`)));
    }
    m = await m.remount([]);
    const res = await fcp(['--resume', src, m.path('dst'), '--checkpoint-dir', ck, '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect((await treecmp(src, m.path('dst'))).differences).toBe(0);
  });

  it('SIGTERM while a request hangs: the job exits 4 within seconds, progress saved', async () => {
    const base = mkdtempSync(join(work, 'term-'));
    const back = join(base, 'back');
    makeSource(join(back, 'src'), 2, 10, 5000);
    const stats = join(base, 'stats.json');
    const m = await mountLatfs(back, ['--hang', 'src/dir/file*', '--stats', stats], 'stall');
    // The default --stall-timeout (300 s) is far away: only the signal stops the job.
    const job = startFcp([m.path('src'), join(base, 'dst'), '-np', '2', '--checkpoint-dir', join(base, 'ck')]);
    // Stop it once a request hangs (the ranks are up and copying), however long their
    // startup takes on a loaded machine; then give the copy a moment more.
    const hanging = async () => (await latfsStats<{ faults: { hung_now: number } }>(m, stats)).faults.hung_now > 0;
    for (let i = 0; i < 600 && !(await hanging()); i++) await sleep(50);
    expect(await hanging(), 'no request ever hung').toBe(true);
    await sleep(500);
    const t0 = Date.now();
    process.kill(job.pid, 'SIGTERM');
    const r = await job.done;
    expect(r.code, r.stderr).toBe(4);
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(r.stderr).toContain('fcp: stopped by SIGTERM');
    expect(r.stderr).toContain('progress is saved');
    expect(await noRankLeft(base)).toEqual([]);
  });
});

describe.skipIf(!canMount)('full destination', () => {
  for (const np of [1, 3]) {
    it(`-np ${np}: ENOSPC stops every rank with one line naming it (exit 6), and a resume after space is freed skips the work done`, async () => {
      const base = mkdtempSync(join(work, `full${np}-`));
      const src = join(base, 'src');
      makeSource(src, 3, 100, 100_000); // 30 MB
      const back = join(base, 'back');
      const ck = join(base, 'ck'); // on /dev/shm: another file system than DST
      let m = await mountLatfs(back, ['--enospc-after', '5M'], 'stall');
      const dst = m.path('dst');
      const r = await fcp([src, dst, '-np', String(np), '--checkpoint-dir', ck], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(6);
      const lines = stderrLines(r.stderr);
      expect(lines.length, r.stderr).toBeLessThanOrEqual(5);
      expect(lines.filter((l) => /^fcp: destination full: '.*' \(ENOSPC\)$/.test(l))).toHaveLength(1);
      expect(r.stderr).toContain('progress is saved');
      expect(await noRankLeft(base)).toEqual([]);

      m = await m.remount([]); // the space is back
      const res = await fcp(['--resume', src, m.path('dst'), '-np', String(np), '--checkpoint-dir', ck, '--json'], { timeoutMs: 60_000 });
      expect(res.code, res.stderr).toBe(0);
      const s = lastJson<Summary>(res.stdout);
      // About 5 MB reached the disk before it was full: recorded, not copied again.
      expect(s.bytesSkipped).toBeGreaterThan(2_000_000);
      expect((await treecmp(src, m.path('dst'))).differences).toBe(0);
    });
  }

  it('-np 4, every rank filling up at once while abort messages travel 1 s late: the line is printed once, by rank 0, and every rank stops (exit 6)', async () => {
    // Each rank hits ENOSPC within moments of the others; no rank may speak for the job
    // by itself because an abort is late (a loaded machine), only rank 0 does.
    const base = mkdtempSync(join(work, 'fullslow-'));
    const src = join(base, 'src');
    makeSource(src, 4, 100, 100_000); // 40 MB
    const back = join(base, 'back');
    const m = await mountLatfs(back, ['--enospc-after', '5M'], 'stall');
    const r = await fcp([src, m.path('dst'), '-np', '4', '--checkpoint-dir', join(base, 'ck'), '--test-delay-abort-ms', '1000'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(6);
    const full = stderrLines(r.stderr).filter((l) => l.includes('destination full'));
    expect(full, r.stderr).toHaveLength(1);
    expect(full[0]).toMatch(/^fcp: destination full: '.*' \(ENOSPC\)$/);
    expect(stderrLines(r.stderr).length, r.stderr).toBeLessThanOrEqual(5);
    expect(r.stderr).toContain('progress is saved');
    expect(await noRankLeft(base)).toEqual([]);
  });

  it('the checkpoint on the full file system itself (the default, beside DST) survives: its reserve makes room', async () => {
    const base = mkdtempSync(join(work, 'tmpfs-'));
    const src = join(base, 'src');
    makeSource(src, 4, 100, 100_000); // 40 MB
    const mnt = mkdtempSync('/tmp/stall-tmpfs-');
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=24M', 'stall-tmpfs', mnt]).status).toBe(0);
    try {
      const dst = join(mnt, 'dst');
      const r = await fcp([src, dst, '-np', '2'], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(6);
      expect(stderrLines(r.stderr).length, r.stderr).toBeLessThanOrEqual(5);
      expect(r.stderr).toMatch(/^fcp: destination full: '.*' \(ENOSPC\)$/m);
      expect(stderrLines(r.stderr).filter((l) => l.includes('destination full')), r.stderr).toHaveLength(1);
      expect(r.stderr).not.toContain('checkpoint stopped');
      const ck = readdirSync(mnt).find((n) => n.startsWith('.fcp-checkpoint-'));
      expect(ck).toBeDefined();

      expect(spawnSync('mount', ['-o', 'remount,size=100M', mnt]).status).toBe(0);
      const res = await fcp(['--resume', src, dst, '-np', '2', '--json'], { timeoutMs: 60_000 });
      expect(res.code, res.stderr).toBe(0);
      expect(lastJson<Summary>(res.stdout).bytesSkipped).toBeGreaterThan(5_000_000);
      expect((await treecmp(src, dst)).differences).toBe(0);
    } finally {
      spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!canMount)('--time-limit', () => {
  it('stops a slow copy at the limit like SIGTERM (exit 4, resume command), and the resume finishes it', async () => {
    const base = mkdtempSync(join(work, 'limit-'));
    const back = join(base, 'back');
    makeSource(join(back, 'src'), 4, 250, 20_000);
    const ck = join(base, 'ck');
    const dst = join(base, 'dst');
    // 50 ms per data request: 1,000 files take far longer than the limit (some 8 files in
    // flight at -np 2: about 10 s).
    let m = await mountLatfs(back, ['--data-us', '50000', '--meta-us', '2000'], 'stall');
    const r = await fcp([m.path('src'), dst, '-np', '2', '--time-limit', '3s', '--checkpoint-dir', ck], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/^fcp: time limit of 3(\.0)? s reached$/m);
    expect(r.stderr).toContain('resume with: fcp --resume');
    expect(r.ms).toBeLessThan(10_000);
    m = await m.remount([]);
    const res = await fcp(['--resume', m.path('src'), dst, '-np', '2', '--checkpoint-dir', ck, '--json'], { timeoutMs: 60_000 });
    expect(res.code, res.stderr).toBe(0);
    expect((await treecmp(m.path('src'), dst)).differences).toBe(0);
  });

  it('rejects a duration it cannot read, naming it (exit 2)', async () => {
    const r = await fcp([join(work, 'nowhere'), join(work, 'nowhere2'), '--time-limit', '3x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--time-limit must be a duration such as 3h50m, 45m or 90s, not '3x'");
  });
});
