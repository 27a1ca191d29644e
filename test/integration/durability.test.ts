/**
 * Durability before "done": the data of what a rank's checkpoint records as finished is
 * on stable storage before the transaction that records it. Shown with strace on real
 * copies: each file's last data write, then a sync that covers it (syncfs of DST's file
 * system; without the addon an fsync of the file), then the first write to the rank's
 * SQLite WAL that holds the file's path (its done record). And --no-sync syncs nothing.
 * On a local disk file system (ext4 on a loop device) small files are also written back
 * early, by syncs on fds of their own that never count as covering a record.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, repoRoot, scratch, toolsDir } from '../helpers/run.js';

const fcp = join(repoRoot, 'bin/fcp.js');

interface Call { pid: string; name: string; fd: string; args: string; start: number; end: number; ret: string }

/**
 * strace -f -y output as calls, with the line of their start and of their end (a call
 * another thread interrupted is printed `<unfinished ...>`, then `<... name resumed>`).
 */
function parseStrace(text: string): Call[] {
  const calls: Call[] = [];
  const pending = new Map<string, Call>();
  text.split('\n').forEach((line, i) => {
    const resumed = /^(\d+)\s+<\.\.\. (\w+) resumed>.*\)\s+= (.+)$/.exec(line);
    if (resumed) {
      const c = pending.get(resumed[1]!);
      if (c) {
        c.end = i;
        c.ret = resumed[3]!;
        pending.delete(resumed[1]!);
      }
      return;
    }
    const m = /^(\d+)\s+(\w+)\((.*)$/.exec(line);
    if (!m) return;
    const [, pid, name, rest] = m as unknown as [string, string, string, string];
    const c: Call = { pid, name, fd: /^\d+<([^>]*)>/.exec(rest)?.[1] ?? '', args: rest, start: i, end: i, ret: '' };
    if (rest.endsWith('<unfinished ...>')) pending.set(pid, c);
    else c.ret = /\)\s+= (.+)$/.exec(rest)?.[1] ?? '';
    calls.push(c);
  });
  return calls;
}

function strace(out: string, calls: string, args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stderr: string; stdout: string; calls: Call[] } {
  const r = spawnSync('strace', ['-f', '-y', '-s', '65536', '-e', `trace=${calls}`, '-o', out, process.execPath, fcp, ...args], {
    encoding: 'utf8', env: { ...process.env, ...env }, timeout: 180_000,
  });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout, calls: parseStrace(readFileSync(out, 'latin1')) };
}

/** The fd (a number) a call was made on (strace -y: `5</path>`). */
const fdNumber = (c: Call): string => /^(\d+)</.exec(c.args)?.[1] ?? '';

/** The last two numbers of a call's arguments: pwrite64's length and offset, sync_file_range's offset and length (before its flags). */
function lastNumbers(c: Call): [number, number] {
  const m = /(\d+), (\d+)(?:, SYNC_FILE_RANGE_\w+)?\)\s+=/.exec(c.args) ?? /(\d+), (\d+)(?:, SYNC_FILE_RANGE_\w+)? <unfinished/.exec(c.args);
  return m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
}

/**
 * The fds of the early writeback's own syncs (data-sync.ts, EarlyWriteback): opened
 * through /proc/self/fd. Their syncs cover no record. (Numbers: one rank only.)
 */
function earlyFds(calls: Call[]): Set<string> {
  return new Set(calls.filter((c) => c.name === 'openat' && c.args.includes('"/proc/self/fd/')).map((c) => /^(\d+)</.exec(c.ret)?.[1] ?? '?'));
}

function treecmp(a: string, b: string): number | null {
  return spawnSync('python3', [join(toolsDir, 'treecmp'), '-q', a, b], { encoding: 'utf8' }).status;
}

let work: { dir: string; cleanup: () => void };
let src: string;
let rels: string[];
/** one file of 24 MiB: six chunks of 4 MiB */
let big: string;

beforeAll(() => {
  work = scratch('durability');
  src = join(work.dir, 'src');
  const r = spawnSync('python3', [join(toolsDir, 'mktree'), 'small', src, '--files', '600'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  rels = spawnSync('find', ['.', '-type', 'f', '-printf', '%P\\n'], { cwd: src, encoding: 'utf8' }).stdout.trim().split('\n');
  expect(rels.length).toBe(600);
  big = join(work.dir, 'big-src');
  mkdirSync(big);
  writeFileSync(join(big, 'data.bin'), Buffer.alloc(24 << 20, 7));
}, 120_000);

afterAll(() => work?.cleanup());

/**
 * For every file with a data write: the first WAL write holding its relative path (its
 * done record: the walk's listings keep a directory and its names apart, so the whole
 * path appears only there) comes after a sync that started after the file's last data
 * write ended. Returns how many files were checked and at how many distinct commits.
 */
function checkSyncBeforeCommit(calls: Call[], dst: string, covers: (c: Call, file: string) => boolean): { checked: number; commits: number } {
  const lastWrite = new Map<string, number>();
  for (const c of calls) {
    if ((c.name === 'pwrite64' || c.name === 'write') && c.fd.startsWith(`${dst}/`)) lastWrite.set(c.fd.slice(dst.length + 1), c.end);
  }
  const wal = calls.filter((c) => c.name === 'pwrite64' && c.fd.endsWith('.db-wal'));
  const syncs = calls.filter((c) => ['syncfs', 'fsync', 'fdatasync'].includes(c.name) && c.ret === '0');
  let checked = 0;
  const commits = new Set<number>();
  for (const rel of rels) {
    const written = lastWrite.get(rel);
    if (written === undefined) continue; // an empty or all-zero file: nothing written
    const commit = wal.find((w) => w.args.includes(rel));
    // A record split over two pages is not found whole; the others must be enough.
    if (!commit) continue;
    const sync = syncs.find((s) => s.start > written && s.end < commit.start && covers(s, rel));
    expect(sync, `${rel}: last data write at line ${written + 1}, recorded by the WAL write at line ${commit.start + 1}, no sync between`).toBeDefined();
    checked++;
    commits.add(commit.start);
  }
  return { checked, commits: commits.size };
}

describe('durability before done', () => {
  it('a rank syncs (syncfs) the files its checkpoint records as done before the commit that records them, interval after interval', () => {
    const dst = join(work.dir, 'dst-syncfs');
    const r = strace(join(work.dir, 'trace-syncfs'), 'syncfs,fsync,fdatasync,pwrite64,write,openat',
      // (a rank runs 12 items of ~40 files at once, so a delay per item alone ends them together:
      // --max-ops spreads them over several intervals)
      [src, dst, '-np', '1', '--checkpoint-interval', '0.1', '--keep-checkpoint', '--json', '--test-slow-copy-ms', '120', '--max-ops', '400']);
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson<{ files: number; errors: number }>(r.stdout)).toMatchObject({ files: 600, errors: 0 });
    expect(treecmp(src, dst)).toBe(0);
    const { checked, commits } = checkSyncBeforeCommit(r.calls, dst, (s) => s.name === 'syncfs');
    expect(checked).toBeGreaterThan(400);
    // Several intervals' commits, not only the one at the end.
    expect(commits).toBeGreaterThan(2);
    // tmpfs has nothing to write back: no early writeback there.
    expect(earlyFds(r.calls).size).toBe(0);
  }, 200_000);

  it('without the addon, each file recorded as done was fsync\'ed (and its directory) before the commit that records it', () => {
    const dst = join(work.dir, 'dst-fsync');
    const r = strace(join(work.dir, 'trace-fsync'), 'syncfs,fsync,fdatasync,pwrite64,write',
      [src, dst, '-np', '1', '--checkpoint-interval', '0.1', '--keep-checkpoint', '--json', '--unsafe-paths', '--test-slow-copy-ms', '120'], { FCP_NO_NATIVE: '1' });
    expect(r.code, r.stderr).toBe(0);
    // (treecmp would see the fallback's µs times: compare content)
    expect(spawnSync('diff', ['-r', src, dst]).status).toBe(0);
    const { checked, commits } = checkSyncBeforeCommit(r.calls, dst, (s, rel) => s.name === 'fsync' && s.fd === `${dst}/${rel}`);
    expect(checked).toBeGreaterThan(400);
    expect(commits).toBeGreaterThan(2);
    const dirSyncs = new Set(r.calls.filter((c) => c.name === 'fsync' && c.ret === '0').map((c) => c.fd));
    for (const rel of rels) expect(dirSyncs.has(join(dst, rel, '..')), `directory of ${rel}`).toBe(true);
  }, 200_000);

  it('a large file\'s chunks are written back as they come, its part file fdatasync\'ed before its rename into place, and the rename synced before success', () => {
    const dst = join(work.dir, 'big-dst');
    const r = strace(join(work.dir, 'trace-big'), 'syncfs,fsync,fdatasync,rename,renameat,renameat2,sync_file_range', [big, dst, '-np', '2', '--chunk-size', '4M']);
    expect(r.code, r.stderr).toBe(0);
    expect(treecmp(big, dst)).toBe(0);
    // renameat on the resolved directory's fd (beneath DST's anchor), with the last names
    const rename = r.calls.find((c) => c.name.startsWith('rename') && c.args.includes('.fcp-part.') && c.args.includes(`${dst}>, "data.bin"`));
    expect(rename, 'the part file renamed into place').toBeDefined();
    const datasync = r.calls.find((c) => c.name === 'fdatasync' && c.fd.includes('.fcp-part.') && c.ret === '0');
    expect(datasync).toBeDefined();
    expect(datasync!.end).toBeLessThan(rename!.start);
    expect(r.calls.some((c) => c.name === 'syncfs' && c.ret === '0' && c.start > rename!.end)).toBe(true);
    // Each chunk's writeback was started as it was written (so the syncs find little left).
    expect(r.calls.filter((c) => c.name === 'sync_file_range' && c.fd.includes('.fcp-part.')).length).toBe(6);
  }, 200_000);

  it('a chunk is handed to writeback every 8 MiB as it is written, not only at its end', () => {
    const dst = join(work.dir, 'big-dst-16');
    // 24 MiB in chunks of 16 MiB: one chunk of 16 MiB, one of 8 MiB
    const r = strace(join(work.dir, 'trace-big-16'), 'pwrite64,sync_file_range', [big, dst, '-np', '1', '--chunk-size', '16M']);
    expect(r.code, r.stderr).toBe(0);
    expect(treecmp(big, dst)).toBe(0);
    const onPart = r.calls.filter((c) => c.fd.includes('.fcp-part.'));
    const ranges = onPart.filter((c) => c.name === 'sync_file_range').map((c) => lastNumbers(c).join('+'));
    // each 8 MiB as written, then each chunk's whole range
    expect(ranges.sort()).toEqual([`0+${8 << 20}`, `0+${16 << 20}`, `${8 << 20}+${8 << 20}`, `${16 << 20}+${8 << 20}`, `${16 << 20}+${8 << 20}`].sort());
    // The first 8 MiB went to writeback before the rest of its chunk was written.
    const first = onPart.find((c) => c.name === 'sync_file_range' && lastNumbers(c).join('+') === `0+${8 << 20}`)!;
    const later = onPart.filter((c) => c.name === 'pwrite64' && c.pid === first.pid && lastNumbers(c)[1] >= 8 << 20 && lastNumbers(c)[1] < 16 << 20);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((w) => w.start > first.end)).toBe(true);
  }, 200_000);

  it('--no-sync makes no syncfs, fsync or fdatasync of copied data (the default does)', () => {
    const inDst = (dst: string) => (c: Call) => c.name === 'syncfs' || (['fsync', 'fdatasync'].includes(c.name) && (c.fd === dst || c.fd.startsWith(`${dst}/`)));
    // Small files and a chunked one, into an existing directory.
    const dst = join(work.dir, 'dst-nosync');
    mkdirSync(dst);
    const off = strace(join(work.dir, 'trace-nosync'), 'syncfs,fsync,fdatasync', [src, big, dst, '-np', '2', '--no-sync', '--chunk-size', '4M']);
    expect(off.code, off.stderr).toBe(0);
    expect(treecmp(src, join(dst, 'src'))).toBe(0);
    expect(treecmp(big, join(dst, 'big-src'))).toBe(0);
    expect(off.calls.filter(inDst(dst)).map((c) => `${c.name} ${c.fd}`)).toEqual([]);
    const dst2 = join(work.dir, 'dst-sync');
    mkdirSync(dst2);
    const on = strace(join(work.dir, 'trace-sync'), 'syncfs,fsync,fdatasync', [src, big, dst2, '-np', '2', '--chunk-size', '4M']);
    expect(on.code, on.stderr).toBe(0);
    expect(on.calls.filter(inDst(dst2)).length).toBeGreaterThan(0);
  }, 200_000);
});

describe('early writeback on a local disk', () => {
  let mnt = '';
  beforeAll(() => {
    // A real disk file system: ext4 on a loop device (its image on tmpfs).
    const img = join(work.dir, 'ext4.img');
    execFileSync('truncate', ['-s', '256M', img]);
    execFileSync('mkfs.ext4', ['-q', '-F', img]);
    mnt = join(work.dir, 'ext4');
    mkdirSync(mnt);
    execFileSync('mount', ['-o', 'loop', img, mnt]);
  }, 60_000);
  afterAll(() => {
    if (mnt) spawnSync('umount', [mnt]);
  });

  it('small files are written back while the copy runs, by syncs on fds of their own; the done records still wait for a sync on the job\'s fd', () => {
    const dst = join(mnt, 'dst');
    const r = strace(join(work.dir, 'trace-early'), 'syncfs,fsync,fdatasync,pwrite64,write,openat',
      // (the default interval: a commit's sync writes back too, so early syncs wait for none)
      [src, dst, '-np', '1', '--keep-checkpoint', '--json', '--test-slow-copy-ms', '400']);
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson<{ files: number; errors: number }>(r.stdout)).toMatchObject({ files: 600, errors: 0 });
    expect(treecmp(src, dst)).toBe(0);
    const early = earlyFds(r.calls);
    expect(early.size).toBe(1); // one destination file system
    const isEarly = (c: Call) => c.name === 'syncfs' && early.has(fdNumber(c));
    const lastData = Math.max(...r.calls.filter((c) => ['pwrite64', 'write'].includes(c.name) && c.fd.startsWith(`${dst}/`)).map((c) => c.end));
    // Early syncs ran and returned while small files were still being copied (600 files, one every 256 copied,
    // the copy made to last over a second).
    const during = r.calls.filter((c) => isEarly(c) && c.ret === '0' && c.end < lastData);
    expect(during.length).toBeGreaterThanOrEqual(1);
    // None of them is what lets a record be committed.
    const { checked } = checkSyncBeforeCommit(r.calls, dst, (s) => s.name === 'syncfs' && !early.has(fdNumber(s)));
    expect(checked).toBeGreaterThan(400);
  }, 200_000);

  it('small files are not handed to writeback one by one, on a local disk as on tmpfs (a call per file made a durable copy of small files on ext4 ~20 % slower); the early syncs cover them', () => {
    const handedOver = (calls: Call[], dst: string): { written: number; handed: number } => {
      const lastWrite = new Map<string, number>();
      for (const c of calls) if (c.name === 'pwrite64' && c.fd.startsWith(`${dst}/`)) lastWrite.set(c.fd, c.end);
      let handed = 0;
      for (const [file, at] of lastWrite) {
        if (calls.some((c) => c.name === 'sync_file_range' && c.fd === file && c.start > at && c.args.includes(', 0, 0, SYNC_FILE_RANGE_WRITE'))) handed++;
      }
      return { written: lastWrite.size, handed };
    };
    const dst = join(mnt, 'dst-handed');
    const r = strace(join(work.dir, 'trace-handed'), 'pwrite64,sync_file_range', [src, dst, '-np', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(treecmp(src, dst)).toBe(0);
    const disk = handedOver(r.calls, dst);
    expect(disk.written).toBeGreaterThan(500); // (600 files of 0-64 KiB: the empty and all-zero ones have no write)
    expect(disk.handed).toBe(0);
    // tmpfs: the same
    const shm = join(work.dir, 'dst-handed-shm');
    const t = strace(join(work.dir, 'trace-handed-shm'), 'pwrite64,sync_file_range', [src, shm, '-np', '1']);
    expect(t.code, t.stderr).toBe(0);
    expect(treecmp(src, shm)).toBe(0);
    expect(handedOver(t.calls, shm)).toEqual({ written: disk.written, handed: 0 });
  }, 200_000);
});
