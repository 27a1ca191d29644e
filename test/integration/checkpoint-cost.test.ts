/**
 * What the checkpoint costs a job that is over before its first interval, and what it
 * still keeps. A rank's database is created by its first flush (the first interval's
 * commit, a stop), not at start: a short job that ends well never creates it nor loads
 * SQLite (seen with strace on the real rank processes). A short job whose checkpoint is
 * kept (--keep-checkpoint, failed entries) writes its records at the end, so --resume
 * skips what it did; a job longer than one interval has its file from the first interval
 * on, so a kill -9 after it loses only what came later.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { isRoot, lastJson, run, scratch, sleep, startGroup, until, type RunResult } from '../helpers/run.js';
import { envWith, failureLines, fcp, fcpBin, treecmp, unprivileged } from '../helpers/trees.js';

interface Summary { files: number; errors: number; filesCopied: number; filesSkipped: number; bytesSkipped: number }

const hasStrace = spawnSync('sh', ['-c', 'command -v strace']).status === 0;

/** FILES small files in two directories. */
function smallSrc(dir: string, files: number): string {
  const src = join(dir, 'src');
  for (let i = 0; i < files; i++) {
    const d = join(src, `d${i % 2}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}`), `file ${i}\n`.repeat(1 + (i % 5)));
  }
  return src;
}

describe('checkpoint of a job shorter than one interval', () => {
  it.runIf(hasStrace)('that ends well: no rank database is created and SQLite is never loaded (strace -f), the copy is exact and the checkpoint directory is gone', async () => {
    const s = scratch('ckpt-short');
    try {
      const src = smallSrc(s.dir, 40);
      const dst = join(s.dir, 'dst');
      const ck = join(s.dir, 'ck');
      const out = join(s.dir, 'strace.txt');
      const r = await run('strace', ['-f', '-qq', '-o', out, '-e', 'trace=openat,openat2', process.execPath, fcpBin, src, dst, '-np', '2', '--quiet', '--checkpoint-dir', ck], {
        env: envWith(), timeoutMs: 120_000,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(failureLines(r.stderr)).toEqual([]);
      expect((await treecmp(src, dst)).differences).toBe(0);
      const opened = readFileSync(out, 'utf8').split('\n').filter((l) => /openat2?\(/.test(l));
      // The trace did see the ranks at work (the lock, the files created in DST, beneath its anchor)...
      expect(opened.some((l) => l.includes(`${ck}/lock`))).toBe(true);
      expect(opened.some((l) => /"f0", \{flags=O_WRONLY\|O_CREAT/.test(l))).toBe(true);
      // ...and neither a rank's database nor the SQLite binding.
      expect(opened.filter((l) => /\.db(-wal|-shm)?"/.test(l))).toEqual([]);
      expect(opened.filter((l) => l.includes('better_sqlite3'))).toEqual([]);
      expect(existsSync(ck)).toBe(false);
    } finally {
      s.cleanup();
    }
  });

  it.runIf(hasStrace)('of 24,000 files at -np 2 (more than 8,192 a rank): its records stay buffered within --mem-limit\'s share, no SQLite; with --mem-limit 16M they are written', async () => {
    const s = scratch('ckpt-buffer');
    try {
      const src = smallSrc(s.dir, 24_000);
      const dbOpens = async (name: string, extra: string[]) => {
        const out = join(s.dir, `strace-${name}.txt`);
        const dst = join(s.dir, `dst-${name}`);
        const r = await run('strace', ['-f', '-qq', '-o', out, '-e', 'trace=openat,openat2', process.execPath, fcpBin, src, dst, '-np', '2', '--quiet',
          '--checkpoint-interval', '600', '--checkpoint-dir', join(s.dir, `ck-${name}`), ...extra], { env: envWith(), timeoutMs: 300_000 });
        expect(r.code, r.stderr).toBe(0);
        expect((await treecmp(src, dst)).differences).toBe(0);
        return readFileSync(out, 'utf8').split('\n').filter((l) => /openat2?\(/.test(l) && /\.db"|better_sqlite3/.test(l)).length;
      };
      // Default --mem-limit (128M): 32,768 records a rank before a write.
      expect(await dbOpens('default', [])).toBe(0);
      // 16M: 8,192, so each rank's ~12,000 listed files make it write (and load SQLite).
      expect(await dbOpens('small', ['--mem-limit', '16M'])).toBeGreaterThan(0);
    } finally {
      s.cleanup();
    }
  }, 300_000);

  it('with --keep-checkpoint: the records are written at the end, and --resume copies nothing again', async () => {
    const s = scratch('ckpt-keep');
    try {
      const src = smallSrc(s.dir, 30);
      const dst = join(s.dir, 'dst');
      const ck = join(s.dir, 'ck');
      const first = await fcp([src, dst, '-np', '2', '--quiet', '--keep-checkpoint', '--checkpoint-dir', ck], { env: envWith() });
      expect(first.code, first.stderr).toBe(0);
      expect(readdirSync(ck).filter((n) => /^g1-r\d+\.db$/.test(n)).sort()).toEqual(['g1-r0.db', 'g1-r1.db']);
      // Each rank's file says whose job it is and how files were cut (whichever survives a kill).
      for (const f of ['g1-r0.db', 'g1-r1.db']) {
        const db = new Database(join(ck, f), { readonly: true });
        try {
          expect((db.prepare('SELECT k FROM meta ORDER BY k').pluck().all() as string[]), f).toEqual(['chunkSize', 'roots']);
        } finally {
          db.close();
        }
      }
      const r = await fcp(['--resume', src, dst, '-np', '3', '--json', '--checkpoint-dir', ck], { env: envWith() });
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson<Summary>(r.stdout)).toMatchObject({ files: 30, filesCopied: 0, filesSkipped: 30 });
      expect((await treecmp(src, dst)).differences).toBe(0);
      expect(existsSync(ck)).toBe(false);
    } finally {
      s.cleanup();
    }
  });

  it.runIf(isRoot)('with a failed entry: the checkpoint is kept with the records of what was done; --resume after the fix copies only that file', async () => {
    const s = scratch('ckpt-failed');
    try {
      chmodSync(s.dir, 0o755);
      const work = join(s.dir, 'w');
      mkdirSync(work);
      const src = smallSrc(work, 20);
      const secret = join(src, 'd1', 'f1');
      const dst = join(work, 'dst');
      const ck = join(work, 'ck');
      expect(spawnSync('chown', ['-R', 'nobody:nogroup', work]).status).toBe(0);
      chmodSync(secret, 0o000);
      const asUser = (args: string[]): Promise<RunResult> => {
        const [cmd, argv] = unprivileged(process.execPath, [fcpBin, ...args, '--checkpoint-dir', ck]);
        return run(cmd, argv, { timeoutMs: 120_000, env: envWith() });
      };
      const first = await asUser([src, dst, '-np', '2', '--json']);
      expect(first.code, first.stderr).toBe(1);
      expect(lastJson<Summary>(first.stdout).errors).toBe(1);
      expect(first.stderr).toMatch(/checkpoint kept in /);
      chmodSync(secret, 0o644);
      const r = await asUser(['--resume', src, dst, '-np', '2', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson<Summary>(r.stdout)).toMatchObject({ files: 20, filesCopied: 1, filesSkipped: 19, errors: 0 });
      expect((await treecmp(src, dst)).differences).toBe(0);
    } finally {
      s.cleanup();
    }
  });
});

describe('checkpoint of a job longer than one interval', () => {
  it('its rank databases exist from the first interval on: kill -9 after it, and --resume skips what was recorded', async () => {
    const s = scratch('ckpt-long');
    try {
      const src = smallSrc(s.dir, 240);
      const dst = join(s.dir, 'dst');
      const ck = join(s.dir, 'ck');
      // Slow copy items (400 ms each, 12 in flight per rank): some 4 s of copying.
      const job = startGroup(process.execPath, [fcpBin, src, dst, '-np', '2', '--quiet', '--checkpoint-interval', '0.2', '--checkpoint-dir', ck, '--test-slow-copy-ms', '400'], { env: envWith() });
      const dbs = () => (existsSync(ck) ? readdirSync(ck).filter((n) => /^g1-r\d+\.db$/.test(n)) : []);
      await until(() => dbs().length >= 2);
      expect(dbs().sort()).toEqual(['g1-r0.db', 'g1-r1.db']);
      // Until an interval's commit recorded finished files (the copy is slow: whatever the load).
      const recorded = () => dbs().some((f) => {
        try {
          const db = new Database(join(ck, f), { readonly: true });
          try {
            return (db.prepare('SELECT (SELECT count(*) FROM done) + (SELECT count(*) FROM done_batches)').pluck().get() as number) > 0;
          } finally {
            db.close();
          }
        } catch {
          return false; // being written: look again
        }
      });
      await until(recorded);
      expect(recorded()).toBe(true);
      job.kill();
      await job.exited;
      const r = await fcp(['--resume', src, dst, '-np', '2', '--json', '--checkpoint-dir', ck], { env: envWith() });
      expect(r.code, r.stderr).toBe(0);
      const sum = lastJson<Summary>(r.stdout);
      expect(sum.filesSkipped).toBeGreaterThan(0);
      expect(sum.filesSkipped + sum.filesCopied).toBe(240);
      expect((await treecmp(src, dst)).differences).toBe(0);
    } finally {
      s.cleanup();
    }
  }, 120_000);
});

describe('a job killed before its first flush', () => {
  it('left only its lock: a plain fcp is refused (twice: the mark stays), --resume copies everything exactly', async () => {
    const s = scratch('ckpt-early-kill');
    try {
      const src = smallSrc(s.dir, 120);
      const dst = join(s.dir, 'dst');
      const ck = join(s.dir, 'ck');
      // A long interval: nothing is flushed before the kill.
      const job = startGroup(process.execPath, [fcpBin, src, dst, '-np', '2', '--quiet', '--checkpoint-interval', '600', '--checkpoint-dir', ck, '--test-slow-copy-ms', '400'], { env: envWith() });
      await until(() => existsSync(dst) && readdirSync(dst).length > 0);
      await sleep(300);
      job.kill();
      await job.exited;
      expect(readdirSync(ck).filter((n) => n.endsWith('.db'))).toEqual([]);
      expect(existsSync(join(ck, 'lock'))).toBe(true);
      for (let i = 0; i < 2; i++) {
        const plain = await fcp([src, dst, '-np', '2', '--checkpoint-dir', ck], { env: envWith() });
        expect(plain.code, plain.stderr).toBe(2);
        expect(plain.stderr).toMatch(/an unfinished job left a checkpoint in '.*': add --resume to finish it/);
      }
      const r = await fcp(['--resume', src, dst, '-np', '2', '--json', '--checkpoint-dir', ck], { env: envWith() });
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson<Summary>(r.stdout)).toMatchObject({ files: 120, errors: 0 });
      expect((await treecmp(src, dst)).differences).toBe(0);
      expect(existsSync(ck)).toBe(false);
    } finally {
      s.cleanup();
    }
  }, 120_000);

  it('after it made part files of large files: they are on record, and --resume at another -np (another chunk size had it chosen afresh) leaves none behind', async () => {
    const s = scratch('ckpt-early-parts');
    try {
      // 4 files of 10 MiB and 12 of 8 MiB (136 MiB): at -np 4 the chunk size is 4 MiB, so all
      // are cut in part files; at -np 1 it would be 16 MiB and they would go whole.
      const src = join(s.dir, 'src');
      mkdirSync(join(src, 'big'), { recursive: true });
      for (let i = 0; i < 4; i++) writeFileSync(join(src, 'big', `b${i}`), Buffer.alloc(10 << 20, i + 1));
      for (let i = 0; i < 12; i++) writeFileSync(join(src, `m${i}`), Buffer.alloc(8 << 20, 100 + i));
      const dst = join(s.dir, 'dst');
      const ck = join(s.dir, 'ck');
      const job = startGroup(process.execPath, [fcpBin, src, dst, '-np', '4', '--quiet', '--checkpoint-interval', '600', '--checkpoint-dir', ck, '--test-slow-copy-ms', '3000'], { env: envWith() });
      const parts = () => (existsSync(join(dst, 'big')) ? readdirSync(join(dst, 'big')).filter((n) => n.startsWith('.fcp-part.')) : []);
      await until(() => parts().length > 0);
      expect(parts().length, 'part files were made before the kill').toBeGreaterThan(0);
      job.kill();
      await job.exited;
      // The ranks that made part files created their databases first, with the chunk size.
      const dbs = readdirSync(ck).filter((n) => n.endsWith('.db'));
      expect(dbs.length).toBeGreaterThan(0);
      const sizes = dbs.map((n) => {
        const db = new Database(join(ck, n), { readonly: true });
        try {
          return (db.prepare("SELECT v FROM meta WHERE k = 'chunkSize'").get() as { v: string } | undefined)?.v;
        } finally {
          db.close();
        }
      });
      expect(sizes).toEqual(dbs.map(() => String(4 << 20)));
      const r = await fcp(['--resume', src, dst, '-np', '1', '--json', '--checkpoint-dir', ck], { env: envWith() });
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson<Summary>(r.stdout)).toMatchObject({ files: 16, errors: 0 });
      expect((await treecmp(src, dst)).differences).toBe(0); // (a part file left behind is an extra entry)
      expect(parts()).toEqual([]);
    } finally {
      s.cleanup();
    }
  }, 120_000);
});
