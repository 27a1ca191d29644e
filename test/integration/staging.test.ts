/**
 * Staging workflows: --update, --delete, --exclude/--include, --dry-run, --progress=json,
 * --log-dir. Real rank processes on real trees.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, repoRoot, run, scratch, toolsDir } from '../helpers/run.js';

const fcp = join(repoRoot, 'bin/fcp.js');
let work: { dir: string; cleanup: () => void };

interface Summary { filesRead: number; filesUpToDate: number; filesCopied: number; deleted: number; excluded: number; errors: number; files: number; seconds: number }

const mktree = (profile: string, dir: string, ...extra: string[]) => {
  const r = spawnSync('python3', [join(toolsDir, 'mktree'), profile, dir, ...extra], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
};
const treecmp = (a: string, b: string, ...opts: string[]) => spawnSync('python3', [join(toolsDir, 'treecmp'), ...opts, a, b], { encoding: 'utf8' });
const copy = async (args: string[]) => {
  const r = await run(process.execPath, [fcp, ...args], { timeoutMs: 120_000 });
  return { ...r, s: r.code === 0 || r.code === 1 ? lastJson<Summary>(r.stdout) : null };
};

/** A listing of every entry with its type, size, mode and ns mtime, and every file's bytes. */
function snapshot(dir: string): string {
  return spawnSync('sh', ['-c', `cd '${dir}' && find . -printf '%y %s %m %T@ %p\\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r cat | md5sum`], { encoding: 'utf8' }).stdout;
}

beforeAll(() => {
  work = scratch('staging');
}, 60_000);
afterAll(() => work?.cleanup());

describe('--update', () => {
  for (const np of ['1', '4']) {
    it(`copies only what changed (content, size or mtime) at -np ${np}`, async () => {
      const src = join(work.dir, `u-src-${np}`);
      const dst = join(work.dir, `u-dst-${np}`);
      mktree('small', src, '--files', '2000');
      const first = await copy([src, dst, '-np', np, '--json']);
      expect(first.code, first.stderr).toBe(0);
      // Change three files: content (same size, new mtime), size, and mtime only.
      const f = (i: number) => join(src, 'd000', `e${String(Math.floor(i / 100)).padStart(5, '0')}`, `f${String(i).padStart(7, '0')}.dat`);
      const c = readFileSync(f(101));
      c[0] = c[0]! ^ 0xff;
      const st = lstatSync(f(101));
      writeFileSync(f(101), c);
      utimesSync(f(101), st.atime, new Date(st.mtimeMs + 3000));
      appendFileSync(f(502), 'longer');
      utimesSync(f(903), new Date(), new Date(lstatSync(f(903)).mtimeMs - 86_400_000));
      const again = await copy(['--update', src, dst, '-np', np, '--json']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.s!.filesCopied).toBe(3);
      expect(again.s!.filesRead).toBe(3);
      expect(again.s!.filesUpToDate).toBe(1997);
      expect(treecmp(src, dst).status).toBe(0);
    });
  }

  it('a second --update of an unchanged 20,000-file tree reads no file content and takes a fraction of the first copy', async () => {
    const src = join(work.dir, 'u20k');
    const dst = join(work.dir, 'u20k-dst');
    mktree('small', src, '--files', '20000');
    const first = await copy([src, dst, '-np', '2', '--json']);
    expect(first.code, first.stderr).toBe(0);
    const again = await copy(['--update', src, dst, '-np', '2', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.s!.filesRead).toBe(0);
    expect(again.s!.filesUpToDate).toBe(20000);
    expect(again.s!.filesCopied).toBe(0);
    expect(treecmp(src, dst).status).toBe(0);
  });

  /**
   * Every read/write-like system call of the job (all ranks: strace -f) on a file inside
   * `roots`, by the path strace -y prints for its descriptor. The checkpoint, beside DST,
   * is not inside it.
   */
  const dataIo = (log: string, roots: string[]) => readFileSync(log, 'utf8').split('\n')
    .filter((l) => /\b(read|pread64|readv|preadv2?|write|pwrite64|writev|pwritev2?|copy_file_range|sendfile|splice)\(/.test(l) && roots.some((r) => l.includes(`<${r}/`)));
  /** Type, size, mode, owner, mtime and ctime of every entry of a tree, without listing a directory twice. */
  const metaSnapshot = (dir: string) => spawnSync('sh', ['-c', `cd '${dir}' && find . -printf '%y %s %m %U:%G %T@ %C@ %p\\n' | sort`], { encoding: 'utf8' }).stdout;
  const traced = async (log: string, args: string[]) => {
    const r = await run('strace', ['-f', '-qq', '-y', '-o', log, '-e', 'trace=read,pread64,readv,preadv,preadv2,write,pwrite64,writev,pwritev,pwritev2,copy_file_range,sendfile,splice', process.execPath, fcp, ...args], { timeoutMs: 120_000 });
    return { ...r, s: r.code === 0 || r.code === 1 ? lastJson<Summary>(r.stdout) : null };
  };

  it('a no-op --update reads and writes no file of SRC or DST and changes nothing in DST, not even a ctime; one changed file among many is copied alone', async () => {
    const src = join(work.dir, 'n-src');
    const dst = join(work.dir, 'n-dst');
    mktree('small', src, '--files', '3000');
    const first = await copy([src, dst, '-np', '2', '--json']);
    expect(first.code, first.stderr).toBe(0);
    const before = metaSnapshot(dst);
    expect(before.split('\n').length).toBeGreaterThan(3000);
    const log = join(work.dir, 'n-strace.log');
    const noop = await traced(log, ['--update', src, dst, '-np', '2', '--json']);
    expect(noop.code, noop.stderr).toBe(0);
    expect(noop.s!.filesUpToDate).toBe(3000);
    expect(noop.s!.filesRead).toBe(0);
    expect(noop.s!.filesCopied).toBe(0);
    // strace saw the job's own I/O (its sockets, the checkpoint), none on SRC's or DST's files.
    expect(readFileSync(log, 'utf8')).toMatch(/\b(write|pwrite64)\(/);
    expect(dataIo(log, [src, dst])).toEqual([]);
    expect(metaSnapshot(dst)).toBe(before);

    // One file changed (content and mtime): it alone is read and written.
    const f = join(src, 'd000', 'e00012', 'f0001234.dat');
    const changed = join(dst, 'd000', 'e00012', 'f0001234.dat');
    writeFileSync(f, 'changed content');
    const one = await traced(log, ['--update', src, dst, '-np', '2', '--json']);
    expect(one.code, one.stderr).toBe(0);
    expect(one.s!.filesCopied).toBe(1);
    expect(one.s!.filesRead).toBe(1);
    expect(one.s!.filesUpToDate).toBe(2999);
    const io = dataIo(log, [src, dst]);
    expect(io.length).toBeGreaterThan(0);
    expect(io.filter((l) => !l.includes(`<${f}>`) && !l.includes(`<${changed}>`))).toEqual([]);
    expect(treecmp(src, dst).status).toBe(0);
    // Only that file moved (rewritten in place: its directory's entries, so its mtime and ctime, stay).
    const moved = (a: string, b: string) => { const old = new Set(a.split('\n')); return b.split('\n').filter((l) => !old.has(l)).map((l) => l.split(' ').pop()); };
    expect(moved(before, metaSnapshot(dst))).toEqual(['./d000/e00012/f0001234.dat']);
  });

  it('files an --update found up to date in its walk are done for a --resume of its checkpoint: only a file changed since is copied', async () => {
    const src = join(work.dir, 'k-src');
    const dst = join(work.dir, 'k-dst');
    mktree('small', src, '--files', '1000');
    expect((await copy([src, dst, '-np', '2', '--json'])).code).toBe(0);
    const noop = await copy(['--update', '--keep-checkpoint', src, dst, '-np', '2', '--json']);
    expect(noop.code, noop.stderr).toBe(0);
    expect(noop.s!.filesUpToDate).toBe(1000);
    appendFileSync(join(src, 'd000', 'e00001', 'f0000150.dat'), 'longer');
    const r = await copy(['--resume', src, dst, '-np', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.s).toMatchObject({ filesCopied: 1, filesRead: 1 });
    expect((r.s as unknown as { filesSkipped: number }).filesSkipped).toBe(999);
    expect(treecmp(src, dst).status).toBe(0);
  });

  it('--update=checksum compares content: a same-size, same-mtime change is found and copied', async () => {
    const src = join(work.dir, 'c-src');
    const dst = join(work.dir, 'c-dst');
    mktree('small', src, '--files', '300');
    expect((await copy([src, dst, '-np', '2', '--json'])).code).toBe(0);
    // Corrupt DST behind fcp's back, keeping size and mtime: the time rule cannot see it.
    const victim = join(dst, 'd000', 'e00001', 'f0000150.dat');
    const ns = lstatSync(victim, { bigint: true }).mtimeNs;
    const b = readFileSync(victim);
    b[b.length >> 1] = b[b.length >> 1]! ^ 1;
    writeFileSync(victim, b);
    // restore the mtime to the nanosecond (JS Dates stop at milliseconds)
    expect(spawnSync('python3', ['-c', 'import os,sys; os.utime(sys.argv[1], ns=(int(sys.argv[2]), int(sys.argv[2])))', victim, String(ns)]).status).toBe(0);
    const byTime = await copy(['--update', src, dst, '-np', '2', '--json']);
    expect(byTime.s!.filesCopied).toBe(0);
    const bySum = await copy(['--update=checksum', src, dst, '-np', '2', '--json']);
    expect(bySum.code, bySum.stderr).toBe(0);
    expect(bySum.s!.filesCopied).toBe(1);
    expect(treecmp(src, dst).status).toBe(0);
  });
});

describe('--delete and --dry-run', () => {
  it('--dry-run writes nothing (DST byte for byte the same) and lists what would change', async () => {
    const src = join(work.dir, 'd-src');
    const dst = join(work.dir, 'd-dst');
    mktree('features', src);
    expect((await copy([src, dst, '-np', '2', '--json'])).code).toBe(0);
    writeFileSync(join(dst, 'plain', 'extra.txt'), 'not in SRC');
    mkdirSync(join(dst, 'extra-dir', 'deeper'), { recursive: true });
    writeFileSync(join(dst, 'extra-dir', 'deeper', 'f'), 'x');
    appendFileSync(join(src, 'plain', 'file01.txt'), 'changed');
    const before = snapshot(dst);
    const entriesBefore = readdirSync(work.dir);
    const r = await run(process.execPath, [fcp, '--dry-run', '--update', '--delete', src, dst, '-np', '3'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(snapshot(dst)).toBe(before);
    expect(readdirSync(work.dir)).toEqual(entriesBefore); // no checkpoint, no lock beside DST
    expect(r.stdout).toContain(`update '${join(dst, 'plain', 'file01.txt')}'`);
    expect(r.stdout).toContain(`would delete '${join(dst, 'plain', 'extra.txt')}'`);
    expect(r.stdout).toContain(`would delete '${join(dst, 'extra-dir')}/'`);
    expect(r.stdout).toMatch(/dry run: would copy 0 entries, update 1 files .* delete 4; .*nothing was written/);
  });

  it('--delete removes exactly the extra entries, nothing outside DST, and then treecmp is clean', async () => {
    const src = join(work.dir, 'x-src');
    const dst = join(work.dir, 'x-dst');
    const outside = join(work.dir, 'x-outside');
    mktree('small', src, '--files', '500');
    expect((await copy([src, dst, '-np', '2', '--json'])).code).toBe(0);
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'outside DST');
    writeFileSync(join(dst, 'd000', 'extra1'), '1');
    mkdirSync(join(dst, 'd000', 'e00001', 'extra-dir'));
    writeFileSync(join(dst, 'd000', 'e00001', 'extra-dir', 'x'), '2');
    // A symlink in DST pointing outside: deleting it must remove the link, not what it points to.
    spawnSync('ln', ['-s', outside, join(dst, 'link-out')]);
    const r = await copy(['--delete', src, dst, '-np', '4', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.s!.deleted).toBe(4); // extra1, extra-dir, extra-dir/x, link-out
    expect(treecmp(src, dst).status).toBe(0);
    expect(readFileSync(join(outside, 'keep'), 'utf8')).toBe('outside DST');
    // without --delete, extras stay
    writeFileSync(join(dst, 'again'), '3');
    expect((await copy([src, dst, '-np', '2', '--update', '--json'])).code).toBe(0);
    expect(existsSync(join(dst, 'again'))).toBe(true);
  });
});

describe('--exclude and --include', () => {
  it('follow the documented order: first matching rule wins, excluded directories are not walked', async () => {
    const src = join(work.dir, 'f-src');
    mkdirSync(join(src, 'data', 'raw'), { recursive: true });
    mkdirSync(join(src, 'scratch'));
    mkdirSync(join(src, 'logs'));
    for (const f of ['data/a.h5', 'data/b.tmp', 'data/keep.tmp', 'data/raw/c.h5', 'scratch/x', 'logs/run.log', 'logs/old.log', 'top.txt']) writeFileSync(join(src, f), f);
    // an excluded directory that cannot even be read: not walked, so no error
    mkdirSync(join(src, 'private'));
    writeFileSync(join(src, 'private', 'secret'), 's');
    const exFile = join(work.dir, 'excludes.txt');
    writeFileSync(exFile, '# no logs but the latest\nold.log\n');
    const dst = join(work.dir, 'f-dst');
    const r = await copy([src, dst, '--include', 'keep.tmp', '--exclude', '*.tmp', '--exclude', 'scratch/', '--exclude', '/data/raw', '--exclude-from', exFile, '--exclude', 'private/', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const got = spawnSync('sh', ['-c', `cd '${dst}' && find . -type f | sort`], { encoding: 'utf8' }).stdout.trim().split('\n');
    expect(got).toEqual(['./data/a.h5', './data/keep.tmp', './logs/run.log', './top.txt']);
    expect(r.s!.excluded).toBe(5); // b.tmp, scratch/, data/raw, old.log, private/
    chmodSync(join(src, 'private'), 0o755);
  });
});

describe('output for batch logs', () => {
  it('--progress=json prints JSON lines with phase, bytes, totals, rate and ETA; --log-dir logs failures one per line', async () => {
    const src = join(work.dir, 'p-src');
    mktree('mixed', src, '--files', '300', '--size', '300000000');
    // a socket: fcp does not copy sockets, so it is one failed entry to log
    const sock = join(src, 'daemon.sock');
    expect(spawnSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', sock]).status).toBe(0);
    const logs = join(work.dir, 'logs');
    const dst = join(work.dir, 'p-dst');
    const r = await run(process.execPath, [fcp, src, dst, '-np', '2', '--progress=json', '--log-dir', logs, '--json'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const progress = lines.filter((l) => 'progress' in l);
    expect(progress.length).toBeGreaterThan(0);
    const copyLines = progress.filter((l) => l.progress === 'copy');
    for (const l of copyLines) {
      for (const k of ['bytes', 'totalBytes', 'files', 'totalFiles', 'rate', 'eta', 'elapsed']) expect(l).toHaveProperty(k);
    }
    expect(lines[lines.length - 1]).toHaveProperty('files'); // the summary stays the last line
    expect(readdirSync(logs).sort()).toEqual(['fcp-rank0.log', 'fcp-rank1.log']);
    const logged = readdirSync(logs).map((f) => readFileSync(join(logs, f), 'utf8')).join('');
    expect(logged.trim().split('\n')).toEqual([`${join(dst, 'daemon.sock')}\tcreate\tENOTSUP\tOperation not supported (ENOTSUP)`]);
  });
});
