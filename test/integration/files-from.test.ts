/**
 * fcp --files-from: copy only the listed paths, as rsync -a --files-from does (the
 * expected trees are made by rsync itself, then compared with treecmp). Real rank
 * processes, real files.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, scratch, sleep, start } from '../helpers/run.js';
import { mountLatfs, unmountAll } from '../helpers/latfs.js';
import { entryErrors, fcp, fcpBin, treecmp } from '../helpers/trees.js';

interface Summary { files: number; dirs: number; symlinks: number; errors: number; filesCopied: number; filesSkipped: number; bytesSkipped: number }

let work: { dir: string; cleanup: () => void };
let src: string;
const BAD = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe]); // 'bad\xff\xfe': not UTF-8
const b = (...parts: (string | Buffer)[]) => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));

/** rsync -a --files-from LIST SRC/ DST/ (the reference); exit 0, or 23 when some listed paths are missing. */
function rsyncList(list: string, dst: string, extra: string[] = []): number | null {
  const r = spawnSync('rsync', ['-a', ...extra, `--files-from=${list}`, `${src}/`, `${dst}/`], { encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 23) throw new Error(`rsync failed (${r.status}): ${r.stderr}`);
  dirTimesFrom(src, dst);
  return r.status;
}

/**
 * rsync writes into an implied directory after it has set its times (seen with many files
 * per directory): the reference's directories get their source times back here, as
 * fcp gives them (set last).
 */
function dirTimesFrom(srcRoot: string, dstRoot: string): void {
  const r = spawnSync('python3', ['-c', `
import os, sys
s, d = sys.argv[1].encode(), sys.argv[2].encode()
for root, dirs, files in os.walk(d):
    st = os.lstat(s + root[len(d):])
    os.utime(root, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)`, srcRoot, dstRoot], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
}

beforeAll(() => {
  work = scratch('filesfrom');
  src = join(work.dir, 'src');
  // a/b/c/f1 is listed, a/ and a/b/ and a/b/c/ are not: they are created with their own
  // modes and times; a/b/sibling is not listed and must not appear.
  mkdirSync(join(src, 'a/b/c'), { recursive: true });
  writeFileSync(join(src, 'a/b/c/f1'), 'one\n');
  writeFileSync(join(src, 'a/b/sibling'), 'not listed\n');
  mkdirSync(join(src, 'd/sub'), { recursive: true });
  writeFileSync(join(src, 'd/f3'), 'three\n');
  writeFileSync(join(src, 'd/sub/f4'), 'four\n');
  writeFileSync(join(src, 'top'), 'top\n');
  writeFileSync(b(src, '/', BAD), 'not utf-8\n');
  mkdirSync(join(src, 'nl\nname'));
  writeFileSync(join(src, 'nl\nname', 'f'), 'newline\n');
  chmodSync(join(src, 'a'), 0o750);
  chmodSync(join(src, 'a/b'), 0o705);
  const old = new Date('2020-02-02T02:02:02Z');
  for (const p of ['a/b/c', 'a/b', 'a', 'd']) utimesSync(join(src, p), old, old);
});

afterAll(() => work?.cleanup());

/** The list of the main test: nested, duplicate, missing, '..', blank, non-UTF-8, leading '/' and './'. */
function mainList(): { fcpList: string; rsyncList: string } {
  const lines = [b('a/b/c/f1'), b(''), b('/top'), b('./d'), b('missing/file'), b('x/../top'), b('a/b/c/f1'), b(BAD), b('//a/b/c/./f1'), b('')];
  const fcpList = join(work.dir, 'list-main');
  writeFileSync(fcpList, b(...lines.flatMap((l) => [l, '\n'])));
  // rsync takes 'x/../top' as 'top' (fcp refuses it: the reference list leaves it out),
  // and cuts the implied directories at a '/./' (fcp drops a '.' component).
  const ref = join(work.dir, 'list-main-rsync');
  const forRsync = lines.filter((l) => !l.equals(b('x/../top'))).map((l) => (l.equals(b('//a/b/c/./f1')) ? b('//a/b/c/f1') : l));
  writeFileSync(ref, b(...forRsync.flatMap((l) => [l, '\n'])));
  return { fcpList, rsyncList: ref };
}

describe('fcp --files-from', () => {
  it.each([1, 3])('copies the listed paths and the directories leading to them, names each missing path and each .. line, exit 1 (-np %i)', async (np) => {
    const { fcpList, rsyncList: ref } = mainList();
    const expected = join(work.dir, `expected-main-${np}`);
    expect(rsyncList(ref, expected)).toBe(23); // rsync also misses missing/file
    const dst = join(work.dir, `dst-main-${np}`);
    const r = await fcp(['--files-from', fcpList, src, dst, '-np', String(np), '--json']);
    expect(r.code, r.stderr).toBe(1);
    const errs = entryErrors(r.stderr);
    expect(errs.map((e) => e.line).sort()).toEqual([
      `fcp: cannot copy list line 6 'x/../top': a '..' component is refused: it could lead out of SRC (EINVAL)`,
      `fcp: cannot stat '${src}/missing/file': No such file or directory (ENOENT)`,
    ]);
    const s = lastJson<Summary>(r.stdout);
    // f1 (listed three times), top, d (a directory: itself only), the non-UTF-8 file
    expect(s.files).toBe(3);
    expect(s.filesCopied).toBe(3);
    // DST, a, a/b, a/b/c, d: each once, however many lines lead through them
    expect(s.dirs).toBe(5);
    expect(s.errors).toBe(2);
    const cmp = await treecmp(expected, dst);
    expect(cmp.lines, cmp.output).toEqual([]);
    expect(cmp.code).toBe(0);
    expect(existsSync(join(dst, 'a/b/sibling'))).toBe(false);
    expect(readdirSync(join(dst, 'd'))).toEqual([]);
  }, 180_000);

  it('--from0 takes NUL-separated names, a newline inside a name included', async () => {
    const list = join(work.dir, 'list0');
    writeFileSync(list, b('nl\nname/f', '\0', 'a/b/c/f1', '\0', 'top'));
    const expected = join(work.dir, 'expected-0');
    expect(rsyncList(list, expected, ['--from0'])).toBe(0);
    const dst = join(work.dir, 'dst-0');
    const r = await fcp(['--files-from', list, '--from0', src, dst, '-np', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson<Summary>(r.stdout).files).toBe(3);
    expect(readFileSync(join(dst, 'nl\nname', 'f'), 'utf8')).toBe('newline\n');
    expect((await treecmp(expected, dst)).code).toBe(0);
  }, 120_000);

  it("'-' reads the list from stdin", async () => {
    const { fcpList, rsyncList: ref } = mainList();
    const expected = join(work.dir, 'expected-stdin');
    rsyncList(ref, expected);
    const dst = join(work.dir, 'dst-stdin');
    // the shell gives fcp the list file as its stdin (the test's own stdin pipe stays out of it)
    const r = await start('sh', ['-c', `exec "${process.execPath}" "${fcpBin}" --files-from - "${src}" "${dst}" -np 3 --json < "${fcpList}"`]).done;
    expect(r.code, r.stderr).toBe(1);
    expect(lastJson<Summary>(r.stdout).files).toBe(3);
    expect(r.stderr).toContain(`cannot stat '${src}/missing/file'`);
    expect((await treecmp(expected, dst)).code).toBe(0);
  }, 120_000);

  it('reads a list from a pipe (bash process substitution) whole', async () => {
    const { fcpList, rsyncList: ref } = mainList();
    const dst = join(work.dir, 'dst-pipe');
    const expected = join(work.dir, 'expected-pipe');
    rsyncList(ref, expected);
    const r = await start('bash', ['-c', `exec "${process.execPath}" "${fcpBin}" --files-from <(cat "${fcpList}") "${src}" "${dst}" -np 2 --json`]).done;
    expect(r.code, r.stderr).toBe(1);
    expect(lastJson<Summary>(r.stdout).files).toBe(3);
    expect((await treecmp(expected, dst)).code).toBe(0);
  }, 120_000);

  it('--recursive-list copies a listed directory whole; a path inside it listed again is copied once', async () => {
    const list = join(work.dir, 'list-rec');
    writeFileSync(list, 'd\nd/sub/f4\na/b/c/f1\n');
    const expected = join(work.dir, 'expected-rec');
    expect(rsyncList(list, expected, ['-r'])).toBe(0);
    const dst = join(work.dir, 'dst-rec');
    const r = await fcp(['--files-from', list, '--recursive-list', src, dst, '-np', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = lastJson<Summary>(r.stdout);
    expect(s.files).toBe(3); // d/f3, d/sub/f4 (once), a/b/c/f1
    expect(s.dirs).toBe(6); // DST, d, d/sub, a, a/b, a/b/c
    expect(readFileSync(join(dst, 'd/sub/f4'), 'utf8')).toBe('four\n');
    expect(existsSync(join(dst, 'a/b/sibling'))).toBe(false);
    expect((await treecmp(expected, dst)).code).toBe(0);
  }, 120_000);

  it('never follows a symlink on the way to a listed path (named, ELOOP; nothing outside SRC is read)', async () => {
    const outside = join(work.dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'outside SRC\n');
    const tree = join(work.dir, 'symlink-src');
    mkdirSync(join(tree, 'real'), { recursive: true });
    writeFileSync(join(tree, 'real', 'f'), 'inside\n');
    symlinkSync(outside, join(tree, 'lnk'));
    const list = join(work.dir, 'list-symlink');
    writeFileSync(list, 'lnk/secret\nreal/f\n');
    const dst = join(work.dir, 'dst-symlink');
    const r = await fcp(['--files-from', list, tree, dst, '-np', '2', '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(entryErrors(r.stderr).map((e) => e.line)).toEqual([`fcp: cannot stat '${tree}/lnk/secret': changed during the copy: a directory became a symlink (ELOOP)`]);
    expect(lastJson<Summary>(r.stdout).files).toBe(1);
    expect(readFileSync(join(dst, 'real', 'f'), 'utf8')).toBe('inside\n');
    expect(lstatSync(join(dst, 'lnk')).isSymbolicLink()).toBe(true); // the implied parent, as it is in SRC
    expect(readdirSync(outside)).toEqual(['secret']);
  }, 120_000);

  it('--recursive-list does not walk a listed directory through a symlink on its way either', async () => {
    const outside = join(work.dir, 'outside-rec');
    mkdirSync(join(outside, 'sub'), { recursive: true });
    writeFileSync(join(outside, 'sub', 'f'), 'outside SRC\n');
    const tree = join(work.dir, 'symlink-rec-src');
    mkdirSync(tree);
    symlinkSync(outside, join(tree, 'lnk'));
    const list = join(work.dir, 'list-symlink-rec');
    writeFileSync(list, 'lnk/sub\n');
    const dst = join(work.dir, 'dst-symlink-rec');
    const r = await fcp(['--files-from', list, '--recursive-list', tree, dst, '-np', '2', '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(entryErrors(r.stderr).map((e) => e.line)).toEqual([`fcp: cannot stat '${tree}/lnk/sub': changed during the copy: a directory became a symlink (ELOOP)`]);
    expect(lastJson<Summary>(r.stdout).files).toBe(0);
    expect(readdirSync(dst)).toEqual(['lnk']);
  }, 120_000);

  it('--recursive-list refuses a directory listed after paths inside it (it would copy them twice): named, the rest copied', async () => {
    const list = join(work.dir, 'list-late');
    writeFileSync(list, 'd/sub/f4\nd\ntop\n');
    const dst = join(work.dir, 'dst-late');
    const r = await fcp(['--files-from', list, '--recursive-list', src, dst, '-np', '2', '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(entryErrors(r.stderr).map((e) => e.line)).toEqual([
      "fcp: cannot copy list line 2 'd': with --recursive-list a directory must be listed before the paths inside it (as find lists them) (EINVAL)",
    ]);
    const s = lastJson<Summary>(r.stdout);
    expect(s.files).toBe(2); // d/sub/f4 and top, once each
    expect(readFileSync(join(dst, 'd/sub/f4'), 'utf8')).toBe('four\n');
    expect(existsSync(join(dst, 'd/f3'))).toBe(false);
  }, 120_000);

  it('refuses, before writing anything, two SRC, --from0 without --files-from, --delete, and a list it cannot read (exit 2)', async () => {
    const list = join(work.dir, 'list-usage');
    writeFileSync(list, 'top\n');
    const dst = join(work.dir, 'dst-usage');
    const cases: [string[], RegExp][] = [
      [['--files-from', list, src, src, dst], /--files-from takes exactly one SRC/],
      [['--from0', src, dst], /--from0 needs --files-from/],
      [['--files-from', list, '--delete', src, dst], /--delete cannot be used with --files-from/],
      [['--files-from', join(work.dir, 'no-such-list'), src, dst], /cannot read --files-from '.*no-such-list': No such file or directory \(ENOENT\)/],
    ];
    for (const [args, msg] of cases) {
      const r = await fcp(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(existsSync(dst)).toBe(false);
    }
  }, 120_000);
});

describe('fcp --files-from and --resume', () => {
  afterAll(unmountAll);

  it('SIGTERM mid-copy exits 4; --resume without the list is refused; with the same list (other -np) it finishes without copying the done files again', async () => {
    const tree = join(work.dir, 'resume-src');
    // 40 directories of 50 files of 64 KiB; every other file listed, in two nested levels
    const lines: string[] = [];
    const data = Buffer.alloc(65536, 0x5a);
    for (let d = 0; d < 40; d++) {
      mkdirSync(join(tree, `top${d}`, 'in'), { recursive: true });
      for (let i = 0; i < 50; i++) {
        writeFileSync(join(tree, `top${d}`, 'in', `f${i}`), data);
        if (i % 2 === 0) lines.push(`top${d}/in/f${i}`);
      }
    }
    const list = join(work.dir, 'list-resume');
    writeFileSync(list, `${lines.join('\n')}\n`);
    const expected = join(work.dir, 'expected-resume');
    spawnSync('rsync', ['-a', `--files-from=${list}`, `${tree}/`, `${expected}/`]);
    dirTimesFrom(tree, expected);
    // SRC read through latfs (2 ms a metadata request): the copy takes seconds, time to stop it
    const { mnt } = await mountLatfs(tree, ['--meta-us', '2000', '--data-us', '500'], 'filesfrom-latfs');
    const dst = join(work.dir, 'dst-resume');
    const args = ['--files-from', list, mnt, dst, '--checkpoint-interval', '0.2'];
    const job = start(process.execPath, [fcpBin, ...args, '-np', '2']);
    // SIGTERM once files are landing in DST, whatever the load
    const landed = () => (existsSync(join(dst, 'top0', 'in')) ? readdirSync(join(dst, 'top0', 'in')).length : 0);
    for (let i = 0; i < 3000 && landed() < 5; i++) await sleep(10);
    await sleep(100);
    job.child.kill('SIGTERM');
    const first = await job.done;
    expect(first.code, first.stderr).toBe(4);
    expect(first.stderr).toMatch(/resume with: fcp --resume --files-from /);
    // Without its list, a resume would copy all of SRC: refused, the checkpoint stays usable.
    const before = countFiles(dst);
    const whole = await fcp(['--resume', mnt, dst, '--checkpoint-interval', '0.2', '-np', '2']);
    expect(whole.code, whole.stderr).toBe(2);
    expect(whole.stderr).toMatch(/is of a copy with --files-from: resume it with --files-from/);
    expect(countFiles(dst)).toBe(before);
    const r = await fcp(['--resume', ...args, '-np', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = lastJson<Summary>(r.stdout);
    expect(s.files).toBe(lines.length);
    expect(s.filesSkipped).toBeGreaterThan(0);
    expect(s.filesCopied + s.filesSkipped).toBe(lines.length);
    const cmp = await treecmp(expected, dst);
    expect(cmp.lines, cmp.output).toEqual([]);
  }, 300_000);
});

describe('fcp --files-from: --resume with a different list', () => {
  it('copies what the new list names, skips what is done, and leaves what only the old list named', async () => {
    const listA = join(work.dir, 'list-a');
    const listB = join(work.dir, 'list-b');
    writeFileSync(listA, 'a/b/c/f1\ntop\n');
    writeFileSync(listB, 'top\nd/f3\n');
    const dst = join(work.dir, 'dst-ab');
    const first = await fcp(['--files-from', listA, src, dst, '--keep-checkpoint', '-np', '2']);
    expect(first.code, first.stderr).toBe(0);
    const r = await fcp(['--resume', '--files-from', listB, src, dst, '-np', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = lastJson<Summary>(r.stdout);
    expect(s.files).toBe(2);
    expect(s.filesSkipped).toBe(1); // top, done by the first run
    expect(s.filesCopied).toBe(1); // d/f3
    expect(readFileSync(join(dst, 'd/f3'), 'utf8')).toBe('three\n');
    expect(readFileSync(join(dst, 'a/b/c/f1'), 'utf8')).toBe('one\n'); // only in the old list: left as it is
  }, 120_000);
});

describe('fcp --files-from at scale', () => {
  let big: string;
  let list: string;
  const N = 200_000;

  beforeAll(() => {
    big = join(work.dir, 'big');
    mkdirSync(big);
    // 200 directories of 1000 empty files: all listed, but in a shuffled order.
    const lines: string[] = [];
    for (let d = 0; d < 200; d++) {
      const dir = `d${String(d).padStart(3, '0')}`;
      mkdirSync(join(big, dir));
      for (let i = 0; i < 1000; i++) {
        writeFileSync(join(big, dir, `f${i}`), '');
        lines.push(`${dir}/f${i}`);
      }
    }
    for (let i = lines.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
    }
    list = join(work.dir, 'list-big');
    writeFileSync(list, `${lines.join('\n')}\n`);
  }, 300_000);

  it(`a list of ${N} lines at --mem-limit 16M: every rank's peak RSS stays well under 200 MiB`, async () => {
    const dst = join(work.dir, 'dst-big');
    const child = spawn(process.execPath, [fcpBin, '--files-from', list, big, dst, '-np', '3', '--mem-limit', '16M', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    // VmHWM is each process's own peak RSS: the last reading before it exits is its peak.
    const peak = new Map<number, number>();
    let finished = false;
    void done.then(() => (finished = true));
    while (!finished) {
      for (const pid of [child.pid!, ...childrenOf(child.pid!)]) {
        const kb = hwmKiB(pid);
        if (kb) peak.set(pid, kb);
      }
      await sleep(100);
    }
    expect(await done, stderr).toBe(0);
    const s = lastJson<Summary>(stdout);
    expect(s.files).toBe(N);
    expect(s.errors).toBe(0);
    expect(peak.size).toBe(3);
    for (const [pid, kb] of peak) expect(kb / 1024, `rank pid ${pid}`).toBeLessThan(200);
    const cmp = await treecmp(big, dst, ['-q']);
    expect(cmp.differences, cmp.output).toBe(0);
  }, 600_000);
});

function countFiles(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function hwmKiB(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
