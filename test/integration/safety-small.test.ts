/**
 * The small items of the safety issue, each on real processes and real files: a rank that
 * dies while the job starts, -np past the machine, signals during startup, no stack
 * traces, errnos as the system said them, names that cannot forge lines, options that are
 * refused rather than silently changed, a --json summary on every exit, and the good
 * chunks of a large file kept for --resume.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, run, scratch, sleep, start } from '../helpers/run.js';
import { envWith, fcp, fcpBin, stderrLines, treecmp } from '../helpers/trees.js';
import { mountLatfs, unmountAll } from '../helpers/latfs.js';

interface JsonEnd { exitCode: number; aborted: boolean; stopped: boolean; reason: string | null; files: number; bytes: number; bytesSkipped: number; bytesCopied: number; errors: number }

/** A line of a Node stack trace, or an uncaught error's banner. */
const STACK = /^\s+at |ERR_IPC_CHANNEL_CLOSED|Uncaught|node:internal/m;

/** Processes whose command line contains `marker` (a unique path of the test). */
function processesWith(marker: string): number[] {
  const r = spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number).filter((p) => p !== process.pid);
}

/** Wait until `pid` has a child process and return its pid. */
async function firstChild(pid: number, timeoutMs = 10_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const r = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
    const kids = r.stdout.split('\n').filter(Boolean).map(Number);
    if (kids.length > 0) return kids[0]!;
    await sleep(5);
  }
  throw new Error(`process ${pid} started no child within ${timeoutMs} ms`);
}

async function noneLeft(marker: string, timeoutMs = 5000): Promise<number[]> {
  const until = Date.now() + timeoutMs;
  let left = processesWith(marker);
  while (left.length > 0 && Date.now() < until) {
    await sleep(50);
    left = processesWith(marker);
  }
  return left;
}

function smallSource(dir: string): string {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'sub'), { recursive: true });
  for (let i = 0; i < 20; i++) writeFileSync(join(src, `f${i}`), `file ${i}\n`);
  writeFileSync(join(src, 'sub', 'g'), 'g\n');
  return src;
}

describe('startup: deaths and signals', () => {
  it('a rank killed while the job starts stops the job at once, naming it (no 60 s wait), and no rank is left', async () => {
    const s = scratch('small16-death');
    try {
      const src = smallSource(s.dir);
      const dst = join(s.dir, 'dst-death');
      const p = start(process.execPath, [fcpBin, src, dst, '-np', '4', '--json'], { env: envWith() });
      const child = await firstChild(p.child.pid!);
      // Hold rank 0 so the job cannot finish starting, kill a rank, let rank 0 go on.
      process.kill(p.child.pid!, 'SIGSTOP');
      await sleep(200);
      process.kill(child, 'SIGKILL');
      process.kill(p.child.pid!, 'SIGCONT');
      const r = await p.done;
      expect(r.code, r.stderr).toBe(3);
      expect(r.ms).toBeLessThan(15_000);
      expect(r.stderr).toMatch(new RegExp(`fcp: rank \\d+ \\(pid ${child}\\) was killed by SIGKILL during startup`));
      expect(r.stderr).not.toMatch(/never showed up/);
      expect(r.stderr).not.toMatch(STACK);
      const end = lastJson<JsonEnd>(r.stdout);
      expect(end).toMatchObject({ exitCode: 3, aborted: true, stopped: false });
      expect(end.reason).toMatch(/killed by SIGKILL during startup/);
      expect(await noneLeft(dst)).toEqual([]);
    } finally {
      s.cleanup();
    }
  });

  it('under a launcher, a rank that never comes is named as "died or never started" after --startup-timeout', async () => {
    const s = scratch('small16-launcher');
    try {
      const src = smallSource(s.dir);
      const env = { ...envWith(), SLURM_PROCID: '0', SLURM_NTASKS: '2', SLURM_JOB_ID: `small16-${process.pid}`, SLURM_STEP_ID: '0', SLURM_NNODES: '1' };
      const r = await fcp([src, join(s.dir, 'dst'), '--startup-timeout', '1', '--json'], { env });
      expect(r.code, r.stderr).toBe(3);
      const lines = stderrLines(r.stderr);
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^fcp: rank 1 never showed up in .* within 1 s: it died or never started$/);
      expect(lastJson<JsonEnd>(r.stdout)).toMatchObject({ exitCode: 3, aborted: true, reason: expect.stringMatching(/rank 1 .*died or never started/) });
    } finally {
      s.cleanup();
    }
  });

  it('-np above the machine limit is refused at once, nothing spawned; --force-np is mentioned', async () => {
    const s = scratch('small16-np');
    try {
      const src = smallSource(s.dir);
      const dst = join(s.dir, 'dst-np-limit');
      const p = start(process.execPath, [fcpBin, src, dst, '-np', '100000'], { env: envWith() });
      await sleep(100);
      const during = processesWith(dst).filter((pid) => pid !== p.child.pid);
      const r = await p.done;
      expect(r.code, r.stderr).toBe(2);
      expect(during).toEqual([]);
      const lines = stderrLines(r.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^fcp: -np 100000 is more than .*at most \d+.*--force-np/);
      expect(r.ms).toBeLessThan(10_000);
      expect(existsSync(dst)).toBe(false);
      expect(await noneLeft(dst)).toEqual([]);
    } finally {
      s.cleanup();
    }
  });

  it('SIGTERM to rank 0 while its ranks start takes them along: exit 4, one line, no orphans, no stack traces', async () => {
    const s = scratch('small16-term');
    try {
      const src = smallSource(s.dir);
      const dst = join(s.dir, 'dst-term');
      const p = start(process.execPath, [fcpBin, src, dst, '-np', '12'], { env: envWith() });
      await firstChild(p.child.pid!);
      process.kill(p.child.pid!, 'SIGTERM');
      // 'close' waits for every holder of the pipes: the ranks inherit rank 0's stderr.
      const r = await p.done;
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).not.toMatch(STACK);
      expect(stderrLines(r.stderr), r.stderr).toEqual(['fcp: stopped by SIGTERM while the ranks were starting']);
      expect(await noneLeft(dst)).toEqual([]);
    } finally {
      s.cleanup();
    }
  });

  for (const delayMs of [0, 150]) {
    it(`rank 0 killed outright at startup (after ${delayMs} ms): the other ranks leave quietly, no stack traces`, async () => {
      const s = scratch('small16-kill0');
      try {
        const src = smallSource(s.dir);
        const dst = join(s.dir, 'dst-kill0');
        const p = start(process.execPath, [fcpBin, src, dst, '-np', '6'], { env: envWith() });
        await firstChild(p.child.pid!);
        await sleep(delayMs);
        process.kill(p.child.pid!, 'SIGKILL');
        const r = await p.done; // resolves once every rank has closed the shared stderr
        expect(r.signal).toBe('SIGKILL');
        expect(r.stderr).not.toMatch(STACK);
        expect(r.stderr).toBe('');
        expect(await noneLeft(dst)).toEqual([]);
      } finally {
        s.cleanup();
      }
    });
  }
});

describe('errno as the system said it', () => {
  it('a read-only destination is EROFS, not ENOENT', async () => {
    const s = scratch('small16-rofs');
    const ro = join(s.dir, 'ro');
    try {
      const src = smallSource(s.dir);
      mkdirSync(join(s.dir, 'backing'));
      mkdirSync(ro);
      execFileSync('mount', ['--bind', join(s.dir, 'backing'), ro]);
      execFileSync('mount', ['-o', 'remount,bind,ro', ro]);
      // The checkpoint beside DST cannot be made: said with EROFS, exit 2.
      const r1 = await fcp([src, join(ro, 'copy')], { env: envWith() });
      expect(r1.code, r1.stderr).toBe(2);
      expect(r1.stderr).toMatch(/cannot use checkpoint directory '.*': Read-only file system \(EROFS\)/);
      expect(r1.stderr).not.toMatch(/ENOENT/);
      // With the checkpoint elsewhere: the directories fail with EROFS.
      const r2 = await fcp([src, join(ro, 'copy'), '--checkpoint-dir', join(s.dir, 'ck'), '-np', '2'], { env: envWith() });
      expect(r2.code, r2.stderr).toBe(1);
      const mk = stderrLines(r2.stderr).filter((l) => l.startsWith('fcp: cannot create directory'));
      expect(mk.length, r2.stderr).toBeGreaterThan(0);
      for (const l of mk) expect(l).toMatch(/Read-only file system \(EROFS\)$/);
      // A file straight into the read-only directory: the open says EROFS.
      const r3 = await fcp([join(src, 'f1'), join(ro, 'f1'), '--checkpoint-dir', join(s.dir, 'ck3')], { env: envWith() });
      expect(r3.code, r3.stderr).toBe(1);
      expect(r3.stderr).toMatch(/fcp: cannot \w+ '.*\/ro\/f1': Read-only file system \(EROFS\)/);
      expect(r3.stderr).not.toMatch(/ENOENT/);
    } finally {
      spawnSync('umount', [ro]);
      s.cleanup();
    }
  });
});

describe('names with control characters', () => {
  it('are escaped as ls -b does on stderr and in --log-dir files: a name cannot forge a line', async () => {
    const s = scratch('small16-names');
    try {
      const src = join(s.dir, 'src');
      mkdirSync(src);
      const evil = Buffer.concat([Buffer.from('evil\nfcp: cannot forge \'etc\': done\t\x01\x7f\\ '), Buffer.from([0xff, 0xc3, 0xa9])]);
      const shown = "evil\\nfcp: cannot forge 'etc': done\\t\\x01\\x7f\\\\ \\xffé";
      writeFileSync(Buffer.concat([Buffer.from(`${src}/`), evil]), 'content');
      writeFileSync(join(src, 'plain'), 'plain');
      // A directory in DST where SRC has that file: the copy of that one entry fails.
      const dst = join(s.dir, 'dst');
      mkdirSync(join(dst, 'src'), { recursive: true });
      mkdirSync(Buffer.concat([Buffer.from(`${dst}/src/`), evil]));
      writeFileSync(Buffer.concat([Buffer.from(`${dst}/src/`), evil, Buffer.from('/inside')]), 'x');
      const logs = join(s.dir, 'logs');
      const r = await fcp([src, dst, '--log-dir', logs, '--checkpoint-dir', join(s.dir, 'ck')], { env: envWith() });
      expect(r.code, r.stderr).toBe(1);
      const lines = stderrLines(r.stderr);
      expect(lines.filter((l) => l.startsWith('fcp: cannot ')), r.stderr).toHaveLength(1);
      expect(lines.some((l) => l.startsWith('fcp: cannot forge'))).toBe(false);
      expect(r.stderr).toContain(`'${dst}/src/${shown}'`);
      const log = readFileSync(join(logs, 'fcp-rank0.log'), 'utf8');
      const logLines = log.split('\n').filter(Boolean);
      expect(logLines, log).toHaveLength(1);
      const fields = logLines[0]!.split('\t');
      expect(fields, log).toHaveLength(4);
      expect(fields[0]).toBe(`${dst}/src/${shown}`);
      expect(readFileSync(join(dst, 'src', 'plain'), 'utf8')).toBe('plain');
    } finally {
      s.cleanup();
    }
  });
});

describe('--json on every exit', () => {
  it('a usage error still ends stdout with the summary: exitCode 2 and the reason', async () => {
    const r = await fcp(['/nonexistent-small16', '/tmp/small16-nowhere', '--json'], { env: envWith() });
    expect(r.code).toBe(2);
    const end = lastJson<JsonEnd>(r.stdout);
    expect(end).toMatchObject({ exitCode: 2, aborted: false, stopped: false, files: 0, bytes: 0 });
    expect(end.reason).toMatch(/cannot stat '\/nonexistent-small16'/);
  });

  it('SIGTERM in the middle of a copy: exit 4, and the summary says stopped, why, and what was counted', async () => {
    const s = scratch('small16-jsonterm');
    const back = join(s.dir, 'back');
    mkdirSync(join(back, 'src'), { recursive: true });
    for (let i = 0; i < 40; i++) writeFileSync(join(back, 'src', `f${i}`), randomBytesOf(1 << 20));
    // Every read of the source takes 100 ms: the copy lasts long enough to be stopped.
    const m = await mountLatfs(back, ['--data-us', '100000'], 'small16-jsonterm-latfs');
    try {
      const dst = join(s.dir, 'dst');
      const p = start(process.execPath, [fcpBin, m.path('src'), dst, '-np', '2', '--json', '--checkpoint-dir', join(s.dir, 'ck')], { env: envWith() });
      let exited = false;
      void p.done.then(() => (exited = true));
      // Stop it once the copy is under way: the first file has landed.
      while (!exited && !(existsSync(dst) && readdirSync(dst).length > 0)) await sleep(10);
      expect(exited, 'the copy ended before it could be stopped').toBe(false);
      process.kill(p.child.pid!, 'SIGTERM');
      const r = await p.done;
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).not.toMatch(STACK);
      const end = lastJson<JsonEnd>(r.stdout);
      expect(end).toMatchObject({ exitCode: 4, stopped: true, aborted: false, reason: 'stopped by SIGTERM', files: 40, bytes: 40 << 20 });
      expect(end.bytesCopied).toBeLessThan(40 << 20);
    } finally {
      await m.unmount();
      s.cleanup();
    }
  });

  it('fsum too: a usage error ends stdout with exitCode 2 and the reason; a finished sum says exitCode 0', async () => {
    const fsumBin = fcpBin.replace(/fcp\.js$/, 'fsum.js');
    const bad = await run(process.execPath, [fsumBin, '/nonexistent-small16', '--json'], { env: envWith() });
    expect(bad.code).toBe(2);
    expect(lastJson<JsonEnd>(bad.stdout)).toMatchObject({ exitCode: 2, aborted: false, stopped: false, reason: expect.stringMatching(/cannot stat/) });
    const s = scratch('small16-fsumjson');
    try {
      const src = smallSource(s.dir);
      const ok = await run(process.execPath, [fsumBin, src, '--json', '-np', '2'], { env: envWith() });
      expect(ok.code, ok.stderr).toBe(0);
      expect(lastJson<JsonEnd & { signature: string }>(ok.stdout)).toMatchObject({ exitCode: 0, aborted: false, stopped: false, reason: null, files: 21, signature: expect.stringMatching(/^[0-9a-f]{32}$/) });
    } finally {
      s.cleanup();
    }
  });

  it('a finished copy says how it ended too: exitCode 0, reason null', async () => {
    const s = scratch('small16-json0');
    try {
      const src = smallSource(s.dir);
      const r = await fcp([src, join(s.dir, 'dst'), '--json', '-np', '2'], { env: envWith() });
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson<JsonEnd>(r.stdout)).toMatchObject({ exitCode: 0, aborted: false, stopped: false, reason: null, files: 21 });
    } finally {
      s.cleanup();
    }
  });
});

describe('a failed chunk does not cost the good ones', () => {
  let s: { dir: string; cleanup: () => void };
  let back: string;
  beforeAll(() => {
    s = scratch('small16-chunks');
    back = join(s.dir, 'back');
    mkdirSync(join(back, 'src'), { recursive: true });
  });
  afterAll(async () => {
    await unmountAll();
    s.cleanup();
  });

  it('an EIO at 40M of a 48M file: exit 1, the part file kept; --resume without the fault copies only the failed chunks', async () => {
    const big = join(back, 'src', 'big');
    writeFileSync(big, randomBytesOf(48 << 20));
    writeFileSync(join(back, 'src', 'small'), 'small\n');
    const dst = join(s.dir, 'dst');
    const ck = join(s.dir, 'ck');
    let m = await mountLatfs(back, ['--fail-read', 'src/big:40M:EIO'], 'small16-chunks-latfs');
    const args = [m.path('src'), dst, '-np', '2', '--chunk-size', '4M', '--json', '--checkpoint-dir', ck];
    // (left mounted for the resume; afterAll unmounts it if an assertion fails first)
    let r = await fcp(args, { env: envWith() });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/fcp: cannot copy '.*\/mnt\/src\/big': Input\/output error \(EIO\)/);
    expect(readdirSync(dst).filter((n) => n.startsWith('.fcp-part.'))).toHaveLength(1);
    expect(existsSync(join(dst, 'big'))).toBe(false);

    // The same mount point without the fault (a resume reads SRC by the same path).
    m = await m.remount([]);
    try {
      r = await fcp(['--resume', ...args], { env: envWith() });
    } finally {
      await m.unmount();
    }
    expect(r.code, r.stderr).toBe(0);
    const end = lastJson<JsonEnd>(r.stdout);
    // The ten good chunks (0-40M) were kept; only 40M-48M is read again.
    expect(end.bytesSkipped).toBeGreaterThanOrEqual(40 << 20);
    expect(end.bytesCopied).toBeLessThanOrEqual(8 << 20);
    expect((await treecmp(join(back, 'src'), dst)).code).toBe(0);
    expect(readdirSync(dst).filter((n) => n.startsWith('.fcp-part.'))).toEqual([]);
  });
});

function randomBytesOf(n: number): Buffer {
  // Incompressible, non-zero content (zero blocks would be written as holes).
  const out = Buffer.allocUnsafe(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out;
}
