/**
 * Requests per small file: a file the create already gave the source's owner and mode gets
 * no fchown and no fchmod (each a round trip or two on a parallel file system), and one
 * that did not get them still does, whatever decided otherwise (the owner, a setgid
 * parent, a mode the create cannot give). Counted with strace -c on real rank processes;
 * treecmp checks that nothing was skipped that was needed.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, run, scratch } from '../helpers/run.js';
import { envWith, failureLines, fcpBin, treecmp, unprivileged } from '../helpers/trees.js';
import { mountLatfs, unmountAll } from '../helpers/latfs.js';

const hasStrace = spawnSync('sh', ['-c', 'command -v strace']).status === 0;
const hasFuse = spawnSync('sh', ['-c', 'command -v fusermount3']).status === 0;
const DIRS = 4;
const PER_DIR = 50;
const N = DIRS * PER_DIR;
/** Modes the create gives exactly at umask 0 ((mode & 0777) | 0200 is the mode itself). */
const EXACT = [0o644, 0o664, 0o600, 0o755, 0o775, 0o666];

/** N small files in DIRS directories, modes from `modeOf(i)`, owned by uid:gid. */
function smallTree(root: string, uid: number, gid: number, modeOf: (i: number) => number): void {
  mkdirSync(root);
  for (let d = 0; d < DIRS; d++) {
    const dir = join(root, `d${d}`);
    mkdirSync(dir);
    for (let f = 0; f < PER_DIR; f++) {
      const i = d * PER_DIR + f;
      const p = join(dir, `f${f}`);
      writeFileSync(p, `file ${i}\n`.repeat(1 + (i % 7)));
      chownSync(p, uid, gid); // before the chmod: a chown clears setuid and setgid
      chmodSync(p, modeOf(i));
    }
    chownSync(dir, uid, gid);
  }
  chownSync(root, uid, gid);
}

/**
 * fcp SRC DST under strace -f: exit 0, no failures, treecmp exact (SRC against `copyAt`:
 * DST, or DST/NAME when DST existed); the fchown and fchmod calls made on files in DST (SQLite, as root, also fchowns its own journal files).
 */
async function countedCopy(src: string, dst: string, dir: string, copyAt = dst): Promise<{ fchown: number; fchmod: number }> {
  const out = join(dir, `strace-${Date.now()}.txt`);
  const r = await run('strace', ['-f', '-y', '-qq', '-o', out, '-e', 'trace=fchown,fchmod', process.execPath, fcpBin, src, dst, '-np', '2', '--quiet'], {
    env: envWith(), timeoutMs: 120_000,
  });
  expect(r.code, r.stderr).toBe(0);
  expect(failureLines(r.stderr), r.stderr).toEqual([]);
  const cmp = await treecmp(src, copyAt);
  expect(cmp.lines, cmp.output).toEqual([]);
  expect(cmp.code).toBe(0);
  // "PID fchown(FD</path>, ..." (-y names the fd's file); an interrupted call starts a line just the same
  const calls = { fchown: 0, fchmod: 0 };
  const inDst = `<${dst}/`;
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const m = /^\d+\s+(fchown|fchmod)\(\d+(<[^>]*>)/.exec(line);
    if (m && m[2]!.startsWith(inDst)) calls[m[1] as 'fchown' | 'fchmod']++;
  }
  return calls;
}

describe.runIf(isRoot && hasStrace)('requests per small file', () => {
  let s: { dir: string; cleanup: () => void };
  beforeAll(() => {
    s = scratch('fewerreq');
  });
  afterAll(() => s?.cleanup());

  it(`root copying ${N} root-owned files whose modes the create gives: no fchown, no fchmod`, async () => {
    const src = join(s.dir, 'root-src');
    smallTree(src, 0, 0, (i) => EXACT[i % EXACT.length]!);
    const calls = await countedCopy(src, join(s.dir, 'root-dst'), s.dir);
    expect(calls.fchown).toBe(0);
    expect(calls.fchmod).toBe(0);
  });

  it(`${N} files owned by another user: every one chowned, none chmodded`, async () => {
    const src = join(s.dir, 'user-src');
    smallTree(src, 4321, 4321, (i) => EXACT[i % EXACT.length]!);
    const calls = await countedCopy(src, join(s.dir, 'user-dst'), s.dir);
    expect(calls.fchown).toBe(N);
    expect(calls.fchmod).toBe(0);
  });

  it('modes the create cannot give (no owner write, setuid, setgid, sticky) are still set', async () => {
    const special = [0o444, 0o4755, 0o2755, 0o1777, 0o555];
    const src = join(s.dir, 'mode-src');
    // every fifth file has one of them
    smallTree(src, 0, 0, (i) => (i % 5 === 0 ? special[(i / 5) % special.length]! : EXACT[i % EXACT.length]!));
    const calls = await countedCopy(src, join(s.dir, 'mode-dst'), s.dir);
    expect(calls.fchmod).toBe(N / 5);
    expect(calls.fchown).toBe(0);
  });

  it('root-owned files copied into an existing setgid directory of another group: the group is set back', async () => {
    const src = join(s.dir, 'sgid-src');
    smallTree(src, 0, 0, (i) => EXACT[i % EXACT.length]!);
    // DST exists, setgid, group 4321: the copy, DST/sgid-src, is created in it and its
    // directories inherit the bit, so every file gets group 4321 from the kernel, not root's.
    const dst = join(s.dir, 'sgid-dst');
    mkdirSync(dst);
    chownSync(dst, 0, 4321);
    chmodSync(dst, 0o2775);
    const calls = await countedCopy(src, dst, s.dir, join(dst, 'sgid-src'));
    expect(calls.fchown).toBe(N);
    expect(calls.fchmod).toBe(0);
  });

  it('at umask 027 what fcp makes outside DST keeps that umask (the copy itself runs at umask 0)', async () => {
    const src = join(s.dir, 'umask-src');
    smallTree(src, 0, 0, (i) => EXACT[i % EXACT.length]!);
    const dst = join(s.dir, 'umask-dst');
    const logs = join(s.dir, 'umask-logs', 'deeper');
    const report = join(s.dir, 'umask-report.txt');
    const r = await run('sh', ['-c', 'umask 027 && exec "$@"', 'sh', process.execPath, fcpBin, src, dst, '-np', '2', '--quiet', '--log-dir', logs, '--report', report], { env: envWith() });
    expect(r.code, r.stderr).toBe(0);
    expect((await treecmp(src, dst)).code).toBe(0);
    expect(statSync(report).mode & 0o777).toBe(0o640);
    expect(statSync(logs).mode & 0o777).toBe(0o750);
    expect(statSync(join(s.dir, 'umask-logs')).mode & 0o777).toBe(0o750);
    const logFiles = readdirSync(logs);
    expect(logFiles.length).toBeGreaterThan(0);
    for (const f of logFiles) expect(statSync(join(logs, f)).mode & 0o777, f).toBe(0o640);
  });
});

/**
 * The same through a file system that counts its requests (latfs, as the latency bench
 * runs it, but without the sleeps): what a small file costs fcp on a parallel file system.
 * Names stay cached for the whole copy (--entry-timeout 3600), as under a Lustre or GPFS
 * client's locks: then the copy finds the source names the walk looked up, and what is
 * left per file is the protocol's floor (one lookup each side, the destination's failing
 * as it does not exist yet; create, open, read, write, times, the source's xattr list,
 * and a flush and a release per descriptor). The checkpoint goes outside the mount, so
 * its requests are not counted here (the bench counts them).
 */
interface LatfsStats {
  total_requests: number; getxattr_security_capability: number; ops: Record<string, number>; errors: Record<string, number>;
  setattr: { chmod: number; chown: number; utimens: number };
}

describe.runIf(isRoot && hasFuse)('requests per small file, counted by the file system', () => {
  let s: { dir: string; cleanup: () => void };
  beforeAll(() => {
    s = scratch('fewerreq-latfs');
  });
  afterAll(async () => {
    await unmountAll();
    s?.cleanup();
  });

  /** fcp BACK/SRC BACK/DST through a fresh latfs mount of BACK: exit 0, treecmp exact; latfs's counts. */
  async function countedByLatfs(back: string, name: string, np = 2): Promise<LatfsStats> {
    const stats = join(s.dir, `${name}-stats.json`);
    const m = await mountLatfs(back, ['--meta-us', '0', '--data-us', '0', '--entry-timeout', '3600', '--attr-timeout', '3600', '--stats', stats], 'fewerreq');
    const r = await run(process.execPath, [fcpBin, m.path('src'), m.path('dst'), '-np', String(np), '--quiet', '--checkpoint-dir', join(s.dir, `${name}-ckpt`)], {
      env: envWith(), timeoutMs: 120_000,
    });
    await m.unmount(); // latfs writes its stats at unmount
    expect(r.code, r.stderr).toBe(0);
    expect(failureLines(r.stderr), r.stderr).toEqual([]);
    const cmp = await treecmp(join(back, 'src'), join(back, 'dst'));
    expect(cmp.lines, cmp.output).toEqual([]);
    expect(cmp.code).toBe(0);
    return JSON.parse(readFileSync(stats, 'utf8')) as LatfsStats;
  }

  it(`${N} root-owned files: at most 12 charged requests per entry, none that is not needed`, async () => {
    const back = join(s.dir, 'back');
    mkdirSync(back);
    smallTree(join(back, 'src'), 0, 0, (i) => EXACT[i % EXACT.length]!);
    const st = await countedByLatfs(back, 'small');
    const op = (name: string) => st.ops[name] ?? 0;
    const dirs = DIRS + 1;
    const entries = N + dirs;
    const charged = st.total_requests - st.getxattr_security_capability;
    // Per file: one create, one open, one read, one write, times set once; no getattr,
    // chown, chmod, setxattr or getxattr (the source has no xattrs: its list is empty).
    // Directories (root's, with the owner's rwx) are made with their mode: no chmod either,
    // but for DST's root when a rank's mkdir of a child found it missing and made it
    // owner-only on the way (the mkdir phase is order-free across ranks).
    expect(op('create')).toBe(N);
    expect(op('open')).toBe(N);
    expect(op('read')).toBe(N);
    expect(op('write')).toBe(N);
    expect(st.setattr.utimens).toBe(N + dirs);
    expect(st.setattr.chown).toBe(0);
    expect(st.setattr.chmod).toBeLessThanOrEqual(1);
    expect(op('getxattr') - st.getxattr_security_capability).toBe(0);
    expect(op('setxattr')).toBe(0);
    expect(op('listxattr')).toBeLessThanOrEqual(N + dirs);
    expect(op('getattr')).toBeLessThanOrEqual(dirs);
    // a lookup of each source name (the walk) and of each destination name (failing: a new file)
    expect(st.errors.lookup ?? 0).toBeLessThanOrEqual(N + 2 * dirs);
    expect(op('lookup')).toBeLessThanOrEqual(2 * N + 4 * dirs);
    expect(op('flush')).toBeLessThanOrEqual(2 * N + dirs);
    expect(op('release')).toBeLessThanOrEqual(2 * N + dirs);
    expect(charged / entries).toBeLessThanOrEqual(12);
  });

  it('directories get a chown or chmod only where the mkdir did not already give the source\'s owner and mode', async () => {
    const back = join(s.dir, 'dirs-back');
    const src = join(back, 'src');
    mkdirSync(src, { recursive: true });
    // name: owner, mode; each holds one root-owned file
    const dirs: Array<[string, number, number]> = [
      ['plain', 0, 0o755], ['other-owner', 4321, 0o750], ['read-only', 0, 0o555], ['sticky', 0, 0o1777], ['setgid', 0, 0o2755], ['private', 0, 0o700],
    ];
    for (const [name, owner, mode] of dirs) {
      const d = join(src, name);
      mkdirSync(d);
      writeFileSync(join(d, 'f'), name);
      chmodSync(join(d, 'f'), 0o644);
      chownSync(d, owner, owner);
      chmodSync(d, mode);
    }
    chmodSync(src, 0o755);
    const st = await countedByLatfs(back, 'dirs', 1); // one rank: its one batch of directories is made parents first
    // the other owner's directory: chown, then its mode (made owner-only until then);
    // modes a mkdir cannot give (no owner write, sticky, setgid): chmod
    expect(st.setattr.chown).toBe(1);
    expect(st.setattr.chmod).toBe(4);
  });

  it('not root, copying root\'s directories: each made with its mode, no chmod but where the mkdir cannot give it', async () => {
    const back = join(s.dir, 'user-back');
    const src = join(back, 'src');
    mkdirSync(src, { recursive: true });
    chmodSync(s.dir, 0o755); // nobody must reach the mount point and the checkpoint beside it
    chmodSync(back, 0o777);
    const modes: Array<[string, number]> = [['plain', 0o755], ['group', 0o750], ['read-only', 0o555]];
    for (const [name, mode] of modes) {
      const d = join(src, name);
      mkdirSync(d);
      writeFileSync(join(d, 'f'), name);
      chmodSync(join(d, 'f'), 0o644);
      chmodSync(d, mode);
    }
    chmodSync(src, 0o755);
    const stats = join(s.dir, 'user-stats.json');
    const m = await mountLatfs(back, ['--meta-us', '0', '--data-us', '0', '-o', 'allow_other', '--stats', stats], 'fewerreq');
    chmodSync(dirname(m.mnt), 0o755);
    const [cmd, args] = unprivileged(process.execPath, [fcpBin, m.path('src'), m.path('dst'), '-np', '1', '--quiet', '--checkpoint-dir', join(m.mnt, 'ckpt')]);
    const r = await run(cmd, args, { env: envWith(), timeoutMs: 120_000 });
    await m.unmount();
    expect(r.code, r.stderr).toBe(0);
    for (const [name, mode] of modes) expect(statSync(join(back, 'dst', name)).mode & 0o7777, name).toBe(mode);
    expect(statSync(join(back, 'dst')).mode & 0o7777).toBe(0o755);
    const st = JSON.parse(readFileSync(stats, 'utf8')) as LatfsStats;
    expect(st.setattr.chown).toBe(0);
    // read-only: made 0755 to be filled, then 0555; the checkpoint's files are made with their modes
    expect(st.setattr.chmod).toBe(1);
  });
});
