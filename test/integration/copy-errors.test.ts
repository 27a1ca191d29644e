/**
 * fcp when entries fail: each failure is one stderr line `fcp: cannot <op> '<path>':
 * <cause> (<CODE>)`, the job goes on, everything else is copied, exit status 1.
 * And usage errors: exit 2, one line, nothing written anywhere.
 *
 * Permission cases run fcp as an unprivileged user (nobody, through setpriv, when the
 * tests run as root, as in CI), on trees built for that user in the test's scratch dir.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRoot, lastJson, run, scratch, sleep, start, type RunResult } from '../helpers/run.js';
import { entryDiffs, entryErrors, envWith, failureLines, fcp, fcpBin, makeTree, stderrLines, treecmp, unprivileged, walk } from '../helpers/trees.js';

interface Summary { files: number; bytes: number; errors: number; ranks: unknown[] }

/** A scratch dir that user nobody can use: world-traversable, with a nobody-owned work dir. */
function userScratch(prefix: string): { dir: string; work: string; cleanup: () => void; giveAway: () => void } {
  const s = scratch(prefix);
  chmodSync(s.dir, 0o755);
  const work = join(s.dir, 'w');
  mkdirSync(work);
  return {
    dir: s.dir,
    work,
    cleanup: s.cleanup,
    // Everything in work/ to nobody (only root can; as anyone else the tree is ours already).
    giveAway: () => {
      if (isRoot) expect(spawnSync('chown', ['-R', 'nobody:nogroup', work]).status).toBe(0);
    },
  };
}

/** fcp as the unprivileged user. */
function fcpAsUser(args: string[]): Promise<RunResult> {
  const [cmd, argv] = unprivileged(process.execPath, [fcpBin, ...args]);
  return run(cmd, argv, { timeoutMs: 120_000, env: envWith() });
}

/** treecmp SRC DST must find differences only under `allowed` (relative paths); returns them. */
async function diffsOnlyUnder(src: string, dst: string, allowed: (rel: string) => boolean): Promise<string[]> {
  const cmp = await treecmp(src, dst, ['--max', '100000']);
  const rels = cmp.lines.map((l) => l.slice(0, l.indexOf(': ')));
  expect(rels.filter((r) => !allowed(r)), cmp.output).toEqual([]);
  expect(cmp.lines.length).toBe(cmp.differences);
  return cmp.lines;
}

describe('copy errors: one line per failed entry, exit 1, the rest copied', () => {
  it('an unreadable file (mode 000)', async () => {
    const s = userScratch('unreadable-file');
    try {
      const src = join(s.work, 'src');
      makeTree('small', src, { files: 400, seed: 11 });
      const secret = join(src, 'd000', 'e00001', 'secret.dat');
      writeFileSync(secret, randomBytes(5000));
      s.giveAway();
      chmodSync(secret, 0o000);
      const dst = join(s.work, 'dst');
      const r = await fcpAsUser([src, dst, '-np', '2', '--json']);
      expect.soft(r.code, r.stderr).toBe(1);
      expect(failureLines(r.stderr), r.stderr).toHaveLength(1);
      expect(entryErrors(r.stderr).map((e) => [e.path, e.cause, e.code]), r.stderr).toEqual([[secret, 'Permission denied', 'EACCES']]);
      expect(lastJson<Summary>(r.stdout).errors).toBe(1);
      const diffs = await diffsOnlyUnder(src, dst, (rel) => rel === 'd000/e00001/secret.dat');
      expect(diffs).toEqual(['d000/e00001/secret.dat: missing in DST']);
      expect(entryDiffs(src, dst)).toEqual([]);
    } finally {
      s.cleanup();
    }
  });

  it('an unreadable file with a non-UTF-8 name is named exactly (bytes as \\xNN)', async () => {
    const s = userScratch('unreadable-bytes');
    try {
      const src = join(s.work, 'src');
      mkdirSync(src);
      writeFileSync(join(src, 'ok.txt'), 'fine');
      const bad = Buffer.concat([Buffer.from(`${src}/na`), Buffer.from([0xff, 0xe9]), Buffer.from('me')]);
      writeFileSync(bad, 'hidden');
      s.giveAway();
      chmodSync(bad, 0o000);
      const dst = join(s.work, 'dst');
      const r = await fcpAsUser([src, dst]);
      expect.soft(r.code, r.stderr).toBe(1);
      expect(failureLines(r.stderr), r.stderr).toHaveLength(1);
      expect(entryErrors(r.stderr).map((e) => [e.path, e.cause, e.code]), r.stderr).toEqual([[`${src}/na\\xff\\xe9me`, 'Permission denied', 'EACCES']]);
      expect(readdirSync(dst)).toEqual(['ok.txt']);
    } finally {
      s.cleanup();
    }
  });

  it('an unreadable directory', async () => {
    const s = userScratch('unreadable-dir');
    try {
      const src = join(s.work, 'src');
      makeTree('small', src, { files: 400, seed: 12 });
      const locked = join(src, 'd000', 'locked');
      mkdirSync(locked);
      for (const n of ['a', 'b', 'c']) writeFileSync(join(locked, n), randomBytes(100));
      s.giveAway();
      chmodSync(locked, 0o000);
      const dst = join(s.work, 'dst');
      const r = await fcpAsUser([src, dst, '-np', '3', '--json']);
      expect.soft(r.code, r.stderr).toBe(1);
      expect(failureLines(r.stderr), r.stderr).toHaveLength(1);
      expect(entryErrors(r.stderr).map((e) => [e.path, e.cause, e.code]), r.stderr).toEqual([[locked, 'Permission denied', 'EACCES']]);
      expect(lastJson<Summary>(r.stdout).errors).toBe(1);
      const diffs = await diffsOnlyUnder(src, dst, (rel) => rel.startsWith('d000/locked/'));
      expect(diffs.sort()).toEqual(['a', 'b', 'c'].map((n) => `d000/locked/${n}: missing in DST`));
    } finally {
      s.cleanup();
    }
  });

  it('permission denied on DST: a read-only directory already in the destination', async () => {
    const s = userScratch('dst-readonly');
    try {
      const src = join(s.work, 'src');
      makeTree('small', src, { files: 300, seed: 13 });
      mkdirSync(join(src, 'ro'));
      writeFileSync(join(src, 'ro', 'x'), randomBytes(1000));
      writeFileSync(join(src, 'ro', 'y'), randomBytes(2000));
      const parent = join(s.work, 'parent');
      mkdirSync(join(parent, 'src', 'ro'), { recursive: true }); // an earlier, partial copy
      s.giveAway();
      chmodSync(join(parent, 'src', 'ro'), 0o555);
      const r = await fcpAsUser([src, parent, '-np', '2', '--json']);
      expect.soft(r.code, r.stderr).toBe(1);
      const errs = entryErrors(r.stderr);
      expect(failureLines(r.stderr), r.stderr).toHaveLength(errs.length); // every failure line well formed
      expect(errs.map((e) => [e.path, e.cause, e.code]).sort()).toEqual(
        ['x', 'y'].map((n) => [join(parent, 'src', 'ro', n), 'Permission denied', 'EACCES']),
      );
      expect(lastJson<Summary>(r.stdout).errors).toBe(2);
      const diffs = await diffsOnlyUnder(src, join(parent, 'src'), (rel) => rel === 'ro/x' || rel === 'ro/y');
      expect(diffs.sort()).toEqual(['ro/x: missing in DST', 'ro/y: missing in DST']);
    } finally {
      s.cleanup();
    }
  });

  it.runIf(isRoot)('no space left on DST (a 20 MiB tmpfs for 27 MB, the checkpoint on it too): the job stops with one line naming it (exit 6), complete files are intact, and a resume after space is freed finishes', async () => {
    // A full destination is a job-level error (README: exit status 5), not one line per
    // file left: every rank stops, the checkpoint (beside DST, on the full disk) keeps
    // what was done thanks to its reserve, and --resume finishes once there is space.
    const s = scratch('enospc');
    const mnt = join(s.dir, 'mnt');
    mkdirSync(mnt);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', mnt]).status).toBe(0);
    try {
      const src = join(s.dir, 'src');
      mkdirSync(join(src, 'small'), { recursive: true });
      mkdirSync(join(src, 'medium'));
      for (let i = 0; i < 30; i++) writeFileSync(join(src, 'small', `s${i}`), randomBytes(2000));
      for (let i = 0; i < 40; i++) writeFileSync(join(src, 'medium', `m${i}`), randomBytes(600 * 1024));
      writeFileSync(join(src, 'large.bin'), randomBytes(3 * 1024 * 1024 + 3)); // chunked below
      const dst = join(mnt, 'dst');
      const r = await fcp([src, dst, '-np', '2', '--chunk-size', '1M', '--json'], { env: envWith() });
      expect(r.code, r.stderr).toBe(6);
      expect(failureLines(r.stderr), 'per-file error lines').toEqual([]);
      const full = stderrLines(r.stderr).filter((l) => l.startsWith('fcp: destination full: '));
      expect(full, r.stderr).toHaveLength(1);
      // It names a file of the copy in DST (not a hidden part file), and the cause.
      const m = /^fcp: destination full: '(.*)' \(ENOSPC\)$/.exec(full[0]!);
      expect(m, full[0]).not.toBeNull();
      expect(m![1]!.startsWith(`${dst}/`) && !m![1]!.includes('.fcp-part'), m![1]).toBe(true);
      expect(r.stderr).toContain('progress is saved');
      // Files that carry the source's mtime (set last) are complete and identical.
      const files = walk(src).filter((e) => e.st.isFile());
      const inDst = new Map(walk(dst).map((e) => [e.rel.toString(), e]));
      let complete = 0;
      for (const f of files) {
        const rel = f.rel.toString();
        const d = inDst.get(rel);
        if (!d || d.st.mtimeNs !== f.st.mtimeNs) continue;
        complete++;
        expect(entryDiffs(join(src, rel), join(dst, rel)), rel).toEqual([]);
      }
      expect(complete).toBeGreaterThan(0);

      expect(spawnSync('mount', ['-o', 'remount,size=100m', mnt]).status).toBe(0);
      const res = await fcp(['--resume', src, dst, '-np', '2', '--chunk-size', '1M', '--json'], { env: envWith() });
      expect(res.code, res.stderr).toBe(0);
      expect(lastJson<Summary & { bytesSkipped: number }>(res.stdout).bytesSkipped).toBeGreaterThan(0);
      expect((await treecmp(src, dst)).differences).toBe(0);
      const left = walk(dst).map((e) => e.rel.toString()).filter((n) => n.split('/').pop()!.startsWith('.fcp-part'));
      expect(left).toEqual([]);
    } finally {
      spawnSync('umount', [mnt]);
      s.cleanup();
    }
  });
});

describe('copy errors: a source file that changes size while it is copied', () => {
  // 1 GiB of data (not holes: those are skipped in no time) takes fcp well over a second
  // here; the test changes the file as soon as its part file appears in DST, i.e. after
  // the walk and before the copy can be finished, so the outcome does not depend on luck.
  async function changeDuringCopy(s: { dir: string }, change: (f: string) => void): Promise<{ r: RunResult; big: string; dst: string; src: string }> {
    const src = join(s.dir, 'src');
    mkdirSync(src);
    const big = join(src, 'big.bin');
    const block = randomBytes(1 << 20);
    const fd = openSync(big, 'w');
    for (let i = 0; i < 1024; i++) writeSync(fd, block);
    closeSync(fd);
    writeFileSync(join(src, 'other.txt'), 'other');
    const dst = join(s.dir, 'dst');
    const job = start(process.execPath, [fcpBin, src, dst, '-np', '2', '--chunk-size', '4M', '--json'], { env: envWith() });
    let exited = false;
    void job.done.then(() => (exited = true));
    let changedWhileRunning = false;
    for (;;) {
      let names: string[] = [];
      try {
        names = readdirSync(dst);
      } catch { /* not made yet */ }
      if (names.some((n) => n.startsWith('.fcp-part'))) {
        changedWhileRunning = !exited;
        change(big);
        break;
      }
      if (exited) break;
      await sleep(1);
    }
    const r = await job.done;
    expect(changedWhileRunning, `could not change the file during the copy (fcp ended first): ${r.stderr}`).toBe(true);
    return { r, big, dst, src };
  }

  it('shrinks: one line naming the file ("shrank"), exit 1, no partial copy published', async () => {
    const s = scratch('shrinks');
    try {
      const { r, big, dst } = await changeDuringCopy(s, (f) => truncateSync(f, 100 << 20));
      expect.soft(r.code, r.stderr.slice(0, 2000)).toBe(1);
      const errs = entryErrors(r.stderr);
      expect(errs.length, `one line for the one file, got ${errs.length}:\n${r.stderr.slice(0, 1000)}`).toBe(1);
      expect(errs[0]!.path).toBe(big);
      expect(errs[0]!.line).toMatch(/shrank|changed/);
      expect(lastJson<Summary>(r.stdout).errors).toBe(1);
      expect(readdirSync(dst).sort()).toEqual(['other.txt']); // neither big.bin nor its part file
    } finally {
      s.cleanup();
    }
  });

  it('grows: one line naming the file ("changed"), exit 1, no partial copy published', async () => {
    const s = scratch('grows');
    try {
      const { r, big, dst, src } = await changeDuringCopy(s, (f) => {
        const fd = openSync(f, 'a');
        writeSync(fd, 'more data');
        closeSync(fd);
      });
      expect.soft(r.code, r.stderr.slice(0, 2000)).toBe(1);
      const errs = entryErrors(r.stderr);
      expect(errs.length, r.stderr.slice(0, 1000)).toBe(1);
      expect(errs[0]!.path).toBe(big);
      expect(errs[0]!.line).toMatch(/shrank|changed/);
      expect(lastJson<Summary>(r.stdout).errors).toBe(1);
      expect(readdirSync(dst).sort()).toEqual(['other.txt']);
      expect(entryDiffs(join(src, 'other.txt'), join(dst, 'other.txt'))).toEqual([]);
    } finally {
      s.cleanup();
    }
  });
});

describe('usage errors: exit 2, one line, nothing written', () => {
  /** Every path under dir with its type and size: what "nothing written" is checked on. */
  const snapshot = (dir: string) => walk(dir).map((e) => `${e.rel.toString()} ${e.st.mode} ${e.st.size} ${e.st.mtimeNs}`).sort();

  async function refused(args: (d: string) => string[], message: RegExp, mustNotExist: (d: string) => string[] = () => []) {
    const s = scratch('usage');
    try {
      const d = s.dir;
      mkdirSync(join(d, 'src', 'sub'), { recursive: true });
      writeFileSync(join(d, 'src', 'a.txt'), 'a');
      writeFileSync(join(d, 'src', 'sub', 'b.txt'), 'b');
      writeFileSync(join(d, 'file'), 'a file');
      symlinkSync('src', join(d, 'link-to-src'));
      const before = snapshot(d);
      const r = await fcp(args(d), { env: envWith(), cwd: d });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      // One line; commander-detected errors may add the usual hint line, as cp does.
      const lines = stderrLines(r.stderr).filter((l) => l !== '(run fcp --help for usage)');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(message);
      for (const p of mustNotExist(d)) expect(existsSync(p), `${p} was created`).toBe(false);
      expect(snapshot(d)).toEqual(before);
    } finally {
      s.cleanup();
    }
  }

  it('no arguments', () => refused(() => [], /missing|usage/i));
  it('only one path', () => refused((d) => [join(d, 'src')], /missing destination/));
  it('unknown option', () => refused((d) => ['--frobnicate', join(d, 'src'), join(d, 'dst')], /unknown option '--frobnicate'/, (d) => [join(d, 'dst')]));
  it('missing SRC', () => refused((d) => [join(d, 'nope'), join(d, 'dst')], /cannot stat '.*nope': No such file or directory/, (d) => [join(d, 'dst')]));
  it('missing SRC among several', () => refused((d) => [join(d, 'file'), join(d, 'nope'), join(d, 'src', 'sub')], /nope/, (d) => [join(d, 'src', 'sub', 'file')]));
  it('DST inside SRC', () => refused((d) => [join(d, 'src'), join(d, 'src', 'sub', 'dst')], /into itself/, (d) => [join(d, 'src', 'sub', 'dst')]));
  it('DST inside SRC through a symlink', () => refused((d) => [join(d, 'src'), join(d, 'link-to-src', 'sub', 'dst')], /into itself/, (d) => [join(d, 'src', 'sub', 'dst')]));
  it('SRC equal to DST (a file)', () => refused((d) => [join(d, 'file'), join(d, 'file')], /same file/));
  it('SRC equal to DST (a directory: DST/basename would be inside SRC)', () => refused((d) => [join(d, 'src'), join(d, 'src')], /into itself/, (d) => [join(d, 'src', 'src')]));
  it('several SRC with DST a file', () => refused((d) => [join(d, 'src'), join(d, 'src', 'a.txt'), join(d, 'file')], /not a directory/));
  it('several SRC with DST missing', () => refused((d) => [join(d, 'src'), join(d, 'file'), join(d, 'newdir')], /not a directory/, (d) => [join(d, 'newdir')]));
  it('a directory onto a file', () => refused((d) => [join(d, 'src'), join(d, 'file')], /non-directory/));
  it('DST whose parent does not exist', () => refused((d) => [join(d, 'src'), join(d, 'no', 'such', 'dst')], /does not exist/, (d) => [join(d, 'no')]));
  it('a bad --np', () => refused((d) => ['--np', '0', join(d, 'src'), join(d, 'dst')], /np/, (d) => [join(d, 'dst')]));
  it('a bad --chunk-size', () => refused((d) => ['--chunk-size', '12Q', join(d, 'src'), join(d, 'dst')], /chunk-size|size/, (d) => [join(d, 'dst')]));
  it('-np past the machine (no --force-np)', () => refused((d) => ['-np', '100000', join(d, 'src'), join(d, 'dst')], /-np 100000 .*--force-np/, (d) => [join(d, 'dst')]));
  it('a --chunk-size that is not a multiple of 1M (it was silently rounded up)', () => refused((d) => ['--chunk-size', '4096', join(d, 'src'), join(d, 'dst')], /--chunk-size must be a multiple of 1M/, (d) => [join(d, 'dst')]));
  it('a --mem-limit below 1M (it was silently floored)', () => refused((d) => ['--mem-limit', '1', join(d, 'src'), join(d, 'dst')], /--mem-limit must be at least 1M/, (d) => [join(d, 'dst')]));
  it('a timeout longer than a timer can wait (it fired at once)', () => refused((d) => ['--startup-timeout', '1e300', join(d, 'src'), join(d, 'dst')], /--startup-timeout must be .* at most \d+/, (d) => [join(d, 'dst')]));
  it('a --log-dir that cannot be made', () => refused((d) => ['--log-dir', join(d, 'file', 'logs'), join(d, 'src'), join(d, 'dst')], /cannot use --log-dir '.*': Not a directory \(ENOTDIR\)/, (d) => [join(d, 'dst')]));
});
