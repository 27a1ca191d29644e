/**
 * The checkpoint's schema version: every store file records it (SQLite user_version); a
 * --resume refuses a checkpoint of another version in one line (exit 2, DST untouched,
 * the checkpoint kept), and reads one written before versions were recorded (0) as the
 * current version. Real rank processes, real files, real SQLite.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { lastJson, repoRoot, run, scratch, sleep, start, toolsDir } from '../helpers/run.js';

const fcp = join(repoRoot, 'bin/fcp.js');
let work: { dir: string; cleanup: () => void };
let src: string;

beforeAll(() => {
  work = scratch('errors-ckver');
  src = join(work.dir, 'src');
  const r = spawnSync('python3', [join(toolsDir, 'mktree'), 'small', src, '--files', '600'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
});
afterAll(() => work?.cleanup());

/** Every path under DST with its size and ns mtime: what "nothing written" compares. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p, { bigint: true });
      out.push(`${relative(dir, p)} ${st.size} ${st.mtimeNs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

const storeFiles = (ck: string) => readdirSync(ck).filter((n) => /^(g\d+-r\d+|merged)\.db$/.test(n)).map((n) => join(ck, n));

function userVersion(file: string, set?: number): number {
  const db = new Database(file);
  try {
    if (set !== undefined) db.pragma(`user_version = ${set}`);
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

/** A copy (or with `resume`, a resume) stopped by SIGTERM mid-way (exit 4): its checkpoint in `ck`, part of SRC in `dst`. */
async function interruptedCopy(dst: string, ck: string, resume = false): Promise<void> {
  const files = () => (existsSync(dst) ? snapshot(dst).filter((l) => /\.dat /.test(l)).length : 0);
  const before = files();
  const job = start(process.execPath, [fcp, ...(resume ? ['--resume'] : []), src, dst, '-np', '2', '--checkpoint-dir', ck, '--checkpoint-interval', '0.1', '--test-slow-copy-ms', '1000', '-q']);
  // (a resume copies again files DST already has: its start is its merge and new rank files)
  const landed = () => (resume ? existsSync(join(ck, 'merged.db')) && existsSync(join(ck, 'g2-r1.db')) : files() > before + 20);
  for (let i = 0; i < 3000 && !landed(); i++) await sleep(10);
  await sleep(300); // a few checkpoint intervals record some of it
  job.child.kill('SIGTERM');
  const r = await job.done;
  expect(r.code, r.stderr).toBe(4);
  expect(storeFiles(ck).length).toBeGreaterThan(0);
}

describe('checkpoint schema version', () => {
  it('every store file records the schema version; --resume of a checkpoint of another version is refused in one line, exit 2, DST and the checkpoint untouched', async () => {
    const dst = join(work.dir, 'dst-other');
    const ck = join(work.dir, 'ck-other');
    await interruptedCopy(dst, ck);
    const files = storeFiles(ck);
    for (const f of files) expect(userVersion(f), f).toBe(1);
    userVersion(files[files.length - 1]!, 7); // as a later fcp (schema 7) would have written it
    const before = snapshot(dst);
    const r = await run(process.execPath, [fcp, '--resume', src, dst, '-np', '2', '--checkpoint-dir', ck], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toBe(`fcp: the checkpoint in '${ck}' was written by another version of fcp (schema 7, this fcp reads 1): finish it with that version, or remove '${ck}' and copy again (--update skips what is done)\n`);
    expect(r.stdout).toBe('');
    expect(snapshot(dst)).toEqual(before);
    // Not merged, not removed: the other version can still finish it.
    expect(storeFiles(ck).sort()).toEqual([...files].sort());
    expect(existsSync(join(ck, 'merged.db'))).toBe(false);
    // --json: the one summary line says why.
    const j = await run(process.execPath, [fcp, '--resume', src, dst, '-np', '2', '--checkpoint-dir', ck, '--json'], { timeoutMs: 60_000 });
    expect(j.code).toBe(2);
    expect(lastJson<{ exitCode: number; reason: string }>(j.stdout)).toMatchObject({ exitCode: 2, reason: expect.stringMatching(/schema 7, this fcp reads 1/) });
    expect(snapshot(dst)).toEqual(before);
  }, 120_000);

  it('merged.db records the version too; one of another version is refused the same way', async () => {
    const dst = join(work.dir, 'dst-merged');
    const ck = join(work.dir, 'ck-merged');
    await interruptedCopy(dst, ck);
    await interruptedCopy(dst, ck, true); // the resume merged the first run's files into merged.db
    const merged = join(ck, 'merged.db');
    expect(existsSync(merged)).toBe(true);
    expect(userVersion(merged)).toBe(1);
    userVersion(merged, 2);
    const before = snapshot(dst);
    const r = await run(process.execPath, [fcp, '--resume', src, dst, '-np', '2', '--checkpoint-dir', ck], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^fcp: the checkpoint in '.*' was written by another version of fcp \(schema 2, this fcp reads 1\): finish it with that version, or remove '.*' and copy again \(--update skips what is done\)\n$/);
    expect(snapshot(dst)).toEqual(before);
    expect(userVersion(merged)).toBe(2);
  }, 180_000);

  it('a checkpoint written before versions were recorded (user_version 0) is read as the current version: --resume finishes the copy', async () => {
    const dst = join(work.dir, 'dst-legacy');
    const ck = join(work.dir, 'ck-legacy');
    await interruptedCopy(dst, ck);
    for (const f of storeFiles(ck)) expect(userVersion(f, 0)).toBe(0); // as fcp before this change wrote them
    const r = await run(process.execPath, [fcp, '--resume', src, dst, '-np', '3', '--checkpoint-dir', ck, '--json'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const s = lastJson<{ filesSkipped: number; filesCopied: number; errors: number }>(r.stdout);
    expect(s.filesSkipped).toBeGreaterThan(0); // its records were read
    expect(s.filesSkipped + s.filesCopied).toBe(600);
    expect(spawnSync('python3', [join(toolsDir, 'treecmp'), src, dst]).status).toBe(0);
    expect(existsSync(ck)).toBe(false); // removed after success
  }, 180_000);
});
