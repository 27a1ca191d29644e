/**
 * --retries: an entry that fails with a transient error (ESTALE, EIO, ... see
 * src/io/retry.ts) is tried again after a backoff and named only when its last try
 * fails; a permanent error (EACCES) is named at once, tried once.
 *
 * The transient fault is real: SRC is a latfs mount that fails opens (ESTALE) and reads
 * (EIO) of some entries; once the test sees the first fault in latfs's counts, it mounts
 * the same directory again without faults on top of the first mount, so every later try
 * reaches the healed mount (fcp resolves each path from the directory holding the mount
 * point: nothing of it is held open across the backoff).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, lastJson, repoRoot, sleep, type RunResult } from '../helpers/run.js';
import { failureLines, treecmp } from '../helpers/trees.js';
import { latfsStats, mountLatfs, mountOver, unmountAll, type LatfsMount } from '../helpers/latfs.js';

const fcpJs = join(repoRoot, 'bin/fcp.js');
const canMount = isRoot && spawnSync('fusermount3', ['-V']).status === 0;

interface Summary { errors: number; retried: number; retries: number; files: number; filesCopied: number; exitCode: number }
interface Faults { fail_open: number; fail_read: number }

let work: string;

beforeAll(() => {
  work = mkdtempSync('/dev/shm/fcp-test-retries-');
});

afterEach(async () => {
  await unmountAll();
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** A source: plain files in two directories, flaky1..3 beside them, a directory flakydir, and a 3 MiB file big. */
function makeSource(back: string): void {
  for (const d of ['a', 'b']) {
    mkdirSync(join(back, d), { recursive: true });
    for (let f = 0; f < 20; f++) writeFileSync(join(back, d, `f${f}`), randomBytes(2000));
  }
  for (let f = 1; f <= 3; f++) writeFileSync(join(back, `flaky${f}`), randomBytes(3000));
  mkdirSync(join(back, 'flakydir'));
  writeFileSync(join(back, 'flakydir', 'inner'), randomBytes(500));
  writeFileSync(join(back, 'big'), randomBytes(3 << 20));
  writeFileSync(join(back, 'denied'), 'no\n');
}

function startFcp(args: string[], env: NodeJS.ProcessEnv = process.env): { pid: number; done: Promise<RunResult> } {
  const t0 = Date.now();
  const child = spawn(process.execPath, [fcpJs, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return {
    pid: child.pid!,
    done: new Promise<RunResult>((r) => child.on('close', (code, signal) => {
      clearTimeout(timer);
      r({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    })),
  };
}

/** latfs's fault counts now (SIGUSR1 makes it write its --stats file). */
async function faultsOf(m: LatfsMount, stats: string): Promise<Faults> {
  return (await latfsStats<{ faults: Faults }>(m, stats)).faults;
}

/** latfs's final counts, written when it is unmounted. */
async function finalFaults(m: LatfsMount, stats: string): Promise<Faults> {
  await m.unmount();
  return (JSON.parse(readFileSync(stats, 'utf8')) as { faults: Faults }).faults;
}

describe.skipIf(!canMount)('--retries: transient errors are tried again, permanent ones are not', () => {
  /**
   * Copy SRC (a latfs mount of back with `faults`) to a new DST; mount back again without
   * faults on top once `ready` says enough faults were hit (or after 2 s of some).
   */
  async function healedCopy(t: string, back: string, faults: string[], ready: (f: Faults) => boolean, args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
    const stats = join(t, 'stats.json');
    const m = await mountLatfs(back, [...faults, '--stats', stats], 'retries');
    const job = startFcp([m.mnt, join(t, 'dst'), '--json', '--no-checkpoint', ...args], env);
    let healed: LatfsMount | null = null;
    let firstAt = 0;
    for (let i = 0; i < 400 && !healed; i++) {
      const f = await faultsOf(m, stats);
      if (f.fail_open + f.fail_read > 0) firstAt ||= Date.now();
      if (ready(f) || (firstAt > 0 && Date.now() - firstAt > 2000)) healed = await mountOver(m, []);
      else await sleep(20);
    }
    const r = await job.done;
    expect(healed, 'no fault was ever hit').not.toBeNull();
    await healed!.unmount();
    return r;
  }

  for (const np of [1, 3]) {
    it(`-np ${np}: small files (ESTALE on open) and the chunks of a large file (EIO on read) that fail until the fault goes away are copied: exit 0, no error named, each counted as retried`, async () => {
      const t = mkdtempSync(join(work, `heal${np}-`));
      const back = join(t, 'back');
      makeSource(back);
      rmSync(join(back, 'denied'));
      const r = await healedCopy(t, back, ['--fail-open', 'flaky?:ESTALE', '--fail-read', 'big:0:EIO'], (f) => f.fail_open > 0 && f.fail_read > 0,
        ['-np', String(np), '--chunk-size', '1M']);
      expect(r.code, r.stderr).toBe(0);
      expect(failureLines(r.stderr)).toEqual([]);
      const s = lastJson<Summary>(r.stdout);
      expect(s.errors).toBe(0);
      // At least one small file and one of big's three chunks needed a retry.
      expect(s.retried).toBeGreaterThanOrEqual(2);
      expect(s.retries).toBeGreaterThanOrEqual(s.retried);
      expect((await treecmp(back, join(t, 'dst'))).code).toBe(0);
    });
  }

  it('the walk: a directory whose open fails with ESTALE until the fault goes away is read and copied', async () => {
    const t = mkdtempSync(join(work, 'walk-'));
    const back = join(t, 'back');
    makeSource(back);
    rmSync(join(back, 'denied'));
    const r = await healedCopy(t, back, ['--fail-open', 'flakydir:ESTALE'], (f) => f.fail_open > 0, []);
    expect(r.code, r.stderr).toBe(0);
    expect(failureLines(r.stderr)).toEqual([]);
    const s = lastJson<Summary>(r.stdout);
    expect(s.retried).toBe(1);
    expect((await treecmp(back, join(t, 'dst'))).code).toBe(0);
  });

  it('without the native addon: files (ESTALE, which Node does not name) and a directory retried until the fault goes away are copied', async () => {
    const t = mkdtempSync(join(work, 'fallback-'));
    const back = join(t, 'back');
    makeSource(back);
    rmSync(join(back, 'denied'));
    const r = await healedCopy(t, back, ['--fail-open', 'flaky*:ESTALE'], (f) => f.fail_open > 2, ['--unsafe-paths'], { ...process.env, FCP_NO_NATIVE: '1' });
    expect(r.code, r.stderr).toBe(0);
    expect(failureLines(r.stderr)).toEqual([]);
    const s = lastJson<Summary>(r.stdout);
    expect(s.errors).toBe(0);
    expect(s.retried).toBeGreaterThanOrEqual(1);
    expect((await treecmp(back, join(t, 'dst'), ['--no-xattr', '--mtime-s'])).code).toBe(0);
  });

  it('a permanent error (EACCES) is tried once and named once: exit 1, nothing retried', async () => {
    const t = mkdtempSync(join(work, 'perm-'));
    const back = join(t, 'back');
    makeSource(back);
    const stats = join(t, 'stats.json');
    const m = await mountLatfs(back, ['--fail-open', 'denied:EACCES', '--stats', stats], 'retries');
    const r = await startFcp([m.mnt, join(t, 'dst'), '--json', '--no-checkpoint']).done;
    const faults = await finalFaults(m, stats);
    expect(r.code, r.stderr).toBe(1);
    expect(failureLines(r.stderr)).toEqual([`fcp: cannot open '${join(m.mnt, 'denied')}': Permission denied (EACCES)`]);
    expect(faults.fail_open).toBe(1);
    const s = lastJson<Summary>(r.stdout);
    expect(s.errors).toBe(1);
    expect(s.retried).toBe(0);
    expect(s.retries).toBe(0);
  });

  it('a transient error that lasts is named once, after the last of --retries 2 tries again', async () => {
    const t = mkdtempSync(join(work, 'lasts-'));
    const back = join(t, 'back');
    makeSource(back);
    rmSync(join(back, 'denied'));
    const stats = join(t, 'stats.json');
    const m = await mountLatfs(back, ['--fail-read', 'flaky2:0:EIO', '--stats', stats], 'retries');
    const r = await startFcp([m.mnt, join(t, 'dst'), '--retries', '2', '--json', '--no-checkpoint']).done;
    const faults = await finalFaults(m, stats);
    expect(r.code, r.stderr).toBe(1);
    expect(failureLines(r.stderr)).toEqual([`fcp: cannot read '${join(m.mnt, 'flaky2')}': Input/output error (EIO)`]);
    // The first try and two more (a read may be asked again by the kernel: at least that many).
    expect(faults.fail_read).toBeGreaterThanOrEqual(3);
    const s = lastJson<Summary>(r.stdout);
    expect(s.errors).toBe(1);
    expect(s.retried).toBe(1);
    expect(s.retries).toBe(2);
    // Backoffs of 0.5 s and 1 s, each at least 75 % of that.
    expect(r.ms).toBeGreaterThanOrEqual(1100);
  });

  it('--retries 0: a transient error is named at once', async () => {
    const t = mkdtempSync(join(work, 'zero-'));
    const back = join(t, 'back');
    makeSource(back);
    rmSync(join(back, 'denied'));
    const stats = join(t, 'stats.json');
    const m = await mountLatfs(back, ['--fail-read', 'flaky2:0:EIO', '--stats', stats], 'retries');
    const withRetries = await faultsOf(m, stats); // nothing yet: the baseline
    expect(withRetries.fail_read).toBe(0);
    const r = await startFcp([m.mnt, join(t, 'dst'), '--retries', '0', '--json', '--no-checkpoint']).done;
    const faults = await finalFaults(m, stats);
    expect(r.code, r.stderr).toBe(1);
    expect(failureLines(r.stderr)).toEqual([`fcp: cannot read '${join(m.mnt, 'flaky2')}': Input/output error (EIO)`]);
    const s = lastJson<Summary>(r.stdout);
    expect(s.retried).toBe(0);
    expect(s.retries).toBe(0);
    // One try: fewer failed reads than the three of the test above.
    expect(faults.fail_read).toBeLessThan(3);
  });

  it('SIGTERM while a retry waits: exit 4 at once, and --resume copies the file that was waiting', async () => {
    const t = mkdtempSync(join(work, 'term-'));
    const back = join(t, 'back');
    makeSource(back);
    rmSync(join(back, 'denied'));
    const stats = join(t, 'stats.json');
    const m = await mountLatfs(back, ['--fail-open', 'flaky2:ESTALE', '--stats', stats], 'retries');
    const args = [m.mnt, join(t, 'dst'), '--json', '--checkpoint-dir', join(t, 'ck')];
    const job = startFcp([...args, '--retries', '10']);
    for (let i = 0; i < 400 && (await faultsOf(m, stats)).fail_open === 0; i++) await sleep(20);
    const termAt = Date.now();
    process.kill(job.pid, 'SIGTERM');
    const r = await job.done;
    expect(r.code, r.stderr).toBe(4);
    // Not after the retries' backoffs (0.5 + 1 + 2 + ... s): at once.
    expect(Date.now() - termAt).toBeLessThan(3000);
    expect(failureLines(r.stderr)).toEqual([]);
    const healed = await mountOver(m, []);
    const again = await startFcp(['--resume', ...args]).done;
    await healed.unmount();
    expect(again.code, again.stderr).toBe(0);
    // What the first run finished was recorded and is not copied again; flaky2 was not.
    const s = lastJson<Summary & { filesSkipped: number }>(again.stdout);
    expect(s.filesSkipped).toBeGreaterThan(0);
    expect(s.filesCopied).toBeGreaterThanOrEqual(1);
    expect((await treecmp(back, join(t, 'dst'))).code).toBe(0);
  });

  it('--retries takes a count from 0: a negative or non-numeric one is a usage error', async () => {
    const r = await startFcp([work, join(work, 'never'), '--retries', '-1']).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--retries must be an integer from 0 to 100, not '-1'/);
    expect(existsSync(join(work, 'never'))).toBe(false);
  });
});
