/**
 * --layout inherit|copy (copy/layout.ts): a file's layout (Lustre's striping, lustre.lov)
 * is never copied with the other xattrs after the data, where Lustre would ignore it; with
 * `copy` it is set when the file is created, before its first byte, and on each directory
 * at mkdir. There is no Lustre here: the hidden test option --layout-xattr names a user.*
 * attribute that stands for the layout on any file system, and strace shows the order of
 * the system calls: create -> set layout -> first write.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, lastJson, run, scratch } from '../helpers/run.js';
import { envWith, fcp, fcpBin, stderrLines, treecmp } from '../helpers/trees.js';
import { loadNative } from '../../src/native/loader.js';

const LAYOUT = 'user.fcp_test_layout';
const native = loadNative();
const B = (s: string) => Buffer.from(s);

/** The test tree: a small file, a large one (chunked with --chunk-size 4M), a directory. */
const ENTRIES = ['', 'a', 'big', 'sub', 'sub/b'];

function makeSource(src: string, withOther = true): void {
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'a'), randomBytes(3000));
  writeFileSync(join(src, 'big'), randomBytes(10 << 20));
  writeFileSync(join(src, 'sub', 'b'), randomBytes(100));
  for (const rel of ENTRIES) {
    const p = B(join(src, rel));
    native!.setXattr(p, B(LAYOUT), B(`layout of /${rel}`));
    if (withOther) native!.setXattr(p, B('user.other'), B('kept'));
  }
}

/** An entry's xattrs as name -> value. */
function xattrs(p: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of native!.listXattrs(B(p))) out[n.toString()] = native!.getXattr(B(p), n).toString();
  return out;
}

interface Call { i: number; pid: number; name: string; args: string; ret: number | null }

/** strace -f output as calls in the order they entered (an unfinished call gets its result from its resumed line). */
function parseStrace(text: string): Call[] {
  const calls: Call[] = [];
  const open = new Map<number, Call>();
  for (const line of text.split('\n')) {
    const m = /^(\d+) +(.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const rest = m[2]!;
    const ret = (s: string) => {
      const r = / = (-?\d+)(?: [A-Z]+.*)?$/.exec(s);
      return r ? Number(r[1]) : null;
    };
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(rest);
    if (resumed) {
      const c = open.get(pid);
      if (c) {
        c.args += resumed[2];
        c.ret = ret(resumed[2]!);
        open.delete(pid);
      }
      continue;
    }
    const call = /^(\w+)\((.*)$/.exec(rest);
    if (!call) continue;
    const c: Call = { i: calls.length, pid, name: call[1]!, args: call[2]!, ret: null };
    if (rest.endsWith('<unfinished ...>')) open.set(pid, c);
    else c.ret = ret(rest);
    calls.push(c);
  }
  return calls;
}

const opensOf = (calls: Call[], path: string) => calls.filter((c) => c.name.startsWith('openat') && c.args.includes(`"${path}"`) && c.ret !== null && c.ret >= 0);
const fdArg = (c: Call) => Number(/^(\d+)/.exec(c.args)?.[1] ?? -1);
/** Which path the fd of a data call was opened as: the latest open before it that returned that fd. */
function pathOfFd(calls: Call[], at: Call, fd: number): string | null {
  for (let i = at.i - 1; i >= 0; i--) {
    const c = calls[i]!;
    if (c.name.startsWith('openat') && c.ret === fd) return /"([^"]*)"/.exec(c.args)?.[1] ?? null;
  }
  return null;
}
const isData = (c: Call) => c.name === 'pwrite64' || c.name === 'write' || c.name === 'copy_file_range';
/** The fd a data call writes to (copy_file_range: its third argument). */
const dataFd = (c: Call) => (c.name === 'copy_file_range' ? Number(c.args.split(', ')[2]) : fdArg(c));

const hasStrace = spawnSync('strace', ['-V']).status === 0;

describe('--layout', () => {
  let s: { dir: string; cleanup: () => void };
  beforeAll(() => {
    s = scratch('layout');
  });
  afterAll(() => s.cleanup());

  it.runIf(hasStrace && native !== null)('copy: each new file gets its layout after its create and before its first write; directories at mkdir (strace)', async () => {
    const src = join(s.dir, 'order-src');
    const dst = join(s.dir, 'order-dst');
    makeSource(src);
    const trace = join(s.dir, 'order.strace');
    const r = await run('strace', ['-f', '-qq', '-s', '256', '-o', trace, '-e', 'trace=openat,openat2,fsetxattr,setxattr,ftruncate,write,pwrite64,copy_file_range',
      process.execPath, fcpBin, '--chunk-size', '4M', '--layout', 'copy', '--layout-xattr', LAYOUT, src, dst], { timeoutMs: 120_000, env: envWith() });
    expect(r.code, r.stderr).toBe(0);
    for (const rel of ENTRIES) expect(xattrs(join(dst, rel)), rel).toEqual({ [LAYOUT]: `layout of /${rel}`, 'user.other': 'kept' });
    expect((await treecmp(src, dst)).code).toBe(0);
    const calls = parseStrace(readFileSync(trace, 'utf8'));

    // A small file (the native batch): open(O_CREAT | O_LOV_DELAY_CREATE) -> fsetxattr(layout) -> pwrite64, on one thread.
    // (the batch opens a file's directory once and the file by its name beneath it)
    const create = [...opensOf(calls, 'order-dst/a'), ...opensOf(calls, 'a')].find((c) => c.args.includes('O_CREAT'));
    expect(create, 'the create of a').toBeDefined();
    expect(create!.args).toMatch(/O_NOCTTY/); // O_LOV_DELAY_CREATE = O_NOCTTY | FASYNC
    expect(create!.args).toMatch(/FASYNC/);
    const fd = create!.ret!;
    // (until the fd number is reused by a later open)
    const reuse = calls.find((c) => c.i > create!.i && c.name.startsWith('openat') && c.ret === fd)?.i ?? calls.length;
    const onFd = calls.filter((c) => c.i > create!.i && c.i < reuse && c.pid === create!.pid && (isData(c) ? dataFd(c) === fd : c.name === 'fsetxattr' && fdArg(c) === fd));
    expect(onFd.map((c) => c.name).slice(0, 2)).toEqual(['fsetxattr', 'pwrite64']);
    expect(onFd[0]!.args).toContain(`"${LAYOUT}", "layout of /a"`);
    // ...and the layout is set once: not again with the other xattrs after the data.
    expect(onFd.filter((c) => c.name === 'fsetxattr' && c.args.includes(LAYOUT))).toHaveLength(1);
    expect(onFd.some((c) => c.name === 'fsetxattr' && c.args.includes('"user.other"') && c.i > onFd[1]!.i)).toBe(true);

    // A large file: its part file is created, given the layout, then sized and written by chunks.
    const partCreate = calls.find((c) => c.name.startsWith('openat') && /order-dst\/\.fcp-part\.[0-9a-f]+"/.test(c.args) && c.args.includes('O_CREAT'));
    expect(partCreate, 'the create of the part file').toBeDefined();
    expect(partCreate!.args).toMatch(/O_NOCTTY.*FASYNC|FASYNC.*O_NOCTTY/);
    const part = /"([^"]*)"/.exec(partCreate!.args)![1]!;
    const setLayout = calls.filter((c) => c.name === 'setxattr' && c.args.includes(`"${LAYOUT}", "layout of /big"`));
    expect(setLayout).toHaveLength(1);
    const firstTruncate = calls.find((c) => c.name === 'ftruncate' && fdArg(c) === partCreate!.ret && c.i > partCreate!.i);
    const partWrites = calls.filter((c) => isData(c) && pathOfFd(calls, c, dataFd(c)) === part);
    expect(partWrites.length).toBeGreaterThan(0);
    expect(setLayout[0]!.i).toBeGreaterThan(partCreate!.i);
    expect(firstTruncate && setLayout[0]!.i < firstTruncate.i).toBe(true);
    expect(setLayout[0]!.i).toBeLessThan(partWrites[0]!.i);

    // A directory's default layout is set before anything is created in it.
    const dirLayout = calls.find((c) => c.name === 'setxattr' && c.args.includes(`"${LAYOUT}", "layout of /sub"`));
    const childCreate = [...opensOf(calls, 'order-dst/sub/b'), ...opensOf(calls, 'b')].find((c) => c.args.includes('O_CREAT'));
    expect(dirLayout && childCreate && dirLayout.i < childCreate.i).toBe(true);
  }, 180_000);

  it.runIf(native !== null)('inherit (the default): no layout attribute is set on any file or directory; the other xattrs are', async () => {
    const src = join(s.dir, 'inherit-src');
    const dst = join(s.dir, 'inherit-dst');
    makeSource(src);
    const r = await fcp(['--chunk-size', '4M', '--layout-xattr', LAYOUT, '--json', src, dst], { env: envWith() });
    expect(r.code, r.stderr).toBe(0);
    expect(stderrLines(r.stderr)).toEqual([]);
    for (const rel of ENTRIES) expect(xattrs(join(dst, rel)), rel).toEqual({ 'user.other': 'kept' });
    expect(readFileSync(join(dst, 'big')).equals(readFileSync(join(src, 'big')))).toBe(true);
  }, 120_000);

  it.runIf(native !== null)('copy through the per-file path (--update=checksum) sets the layout too', async () => {
    const src = join(s.dir, 'perfile-src');
    const dst = join(s.dir, 'perfile-dst');
    makeSource(src);
    const r = await fcp(['--chunk-size', '4M', '--layout', 'copy', '--layout-xattr', LAYOUT, '--update=checksum', src, dst], { env: envWith() });
    expect(r.code, r.stderr).toBe(0);
    for (const rel of ENTRIES) expect(xattrs(join(dst, rel))[LAYOUT], rel).toBe(`layout of /${rel}`);
  }, 120_000);

  it('copy on a destination that is not Lustre: one line says so, the copy is whole, exit 0', async () => {
    const src = join(s.dir, 'plain-src');
    const dst = join(s.dir, 'plain-dst');
    mkdirSync(join(src, 'd'), { recursive: true });
    writeFileSync(join(src, 'd', 'f'), randomBytes(5000));
    const r = await fcp(['--layout', 'copy', '-np', '2', src, dst], { env: envWith() });
    expect(r.code, r.stderr).toBe(0);
    expect(stderrLines(r.stderr)).toEqual([
      `fcp: --layout copy: '${dst}' is not on Lustre (file system type 0x1021994): files and directories get the destination's default layout`,
    ]);
    expect((await treecmp(src, dst)).code).toBe(0);
  }, 120_000);

  it('a --layout other than inherit or copy is a usage error', async () => {
    const dst = join(s.dir, 'bad-dst');
    const r = await fcp(['--layout', 'stripe', join(s.dir), dst], { env: envWith() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--layout.*stripe/);
  });

  it.runIf(isRoot && native !== null)('copy onto a file system that refuses the layout: each entry named once, its data copied with the default layout, exit 1; --resume does not copy them again', async () => {
    const src = join(s.dir, 'refused-src');
    makeSource(src, false); // ramfs takes no xattrs at all: only the layout attribute, to see its refusal alone
    const mnt = mkdtempSync('/tmp/layout-ramfs-');
    execFileSync('mount', ['-t', 'ramfs', 'ramfs', mnt]);
    try {
      const dst = join(mnt, 'dst');
      const args = ['--chunk-size', '4M', '--layout', 'copy', '--layout-xattr', LAYOUT, '--json', src, dst];
      const r = await fcp(args, { env: envWith() });
      expect(r.code, r.stderr).toBe(1);
      const lines = stderrLines(r.stderr).filter((l) => l.startsWith('fcp: cannot '));
      expect(lines.sort()).toEqual(ENTRIES.map((rel) => `fcp: cannot set layout of '${rel ? join(dst, rel) : dst}': Operation not supported (ENOTSUP)`).sort());
      for (const rel of ['a', 'big', 'sub/b']) expect(readFileSync(join(dst, rel)).equals(readFileSync(join(src, rel))), rel).toBe(true);
      expect(lastJson<{ errors: number; filesCopied: number }>(r.stdout)).toMatchObject({ errors: 5, filesCopied: 3 });
      // The files are done: a resume copies none of them again (the directories' layouts are tried again).
      const again = await fcp(['--resume', ...args], { env: envWith() });
      expect(lastJson<{ filesCopied: number; filesSkipped: number }>(again.stdout)).toMatchObject({ filesCopied: 0, filesSkipped: 3 });
      expect(stderrLines(again.stderr).filter((l) => l.startsWith('fcp: cannot ')).sort()).toEqual([
        `fcp: cannot set layout of '${dst}': Operation not supported (ENOTSUP)`,
        `fcp: cannot set layout of '${join(dst, 'sub')}': Operation not supported (ENOTSUP)`,
      ]);
    } finally {
      execFileSync('umount', [mnt]);
      rmdirSync(mnt);
    }
  }, 180_000);
});
