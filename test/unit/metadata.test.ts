import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMeta, copyXattrs, readMeta } from '../../src/copy/metadata.js';
import { metaFromBigStats, splitNs, type EntryMeta } from '../../src/model/meta.js';
import { loadNative, type NativeAddon } from '../../src/native/loader.js';

// /dev/shm is tmpfs, which supports user.* and trusted.* xattrs on current kernels.
const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const native = loadNative({ reload: true });
const isRoot = process.getuid?.() === 0;
let dir: Buffer;
let seq = 0;

beforeAll(() => {
  dir = Buffer.from(fs.mkdtempSync(path.join(base, 'fcp-meta-')));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A fresh path in the temp dir whose last name contains non-UTF-8 bytes. */
function tmp(tag: string): Buffer {
  return Buffer.concat([dir, Buffer.from(`/${seq++}-${tag}-`), Buffer.from([0x66, 0xff, 0xfe])]);
}

function nsOf(p: Buffer): { m: bigint; a: bigint } {
  const st = fs.lstatSync(p, { bigint: true });
  return { m: st.mtimeNs, a: st.atimeNs };
}

describe('splitNs / readMeta', () => {
  it('splits bigint nanoseconds with nsec in [0, 1e9)', () => {
    expect(splitNs(0n)).toEqual([0, 0]);
    expect(splitNs(1_700_000_000_123_456_789n)).toEqual([1_700_000_000, 123_456_789]);
    expect(splitNs(-1n)).toEqual([-1, 999_999_999]);
    expect(splitNs(-1_000_000_000n)).toEqual([-1, 0]);
    expect(splitNs(-1_500_000_000n)).toEqual([-2, 500_000_000]);
  });

  it('reads lstat metadata exactly (non-UTF-8 name, symlink not followed)', async () => {
    const f = tmp('read');
    fs.writeFileSync(f, 'hello');
    fs.chmodSync(f, 0o640);
    const m = await readMeta(f);
    const st = fs.lstatSync(f, { bigint: true });
    expect(m).toEqual(metaFromBigStats(st));
    expect(m.mode).toBe(fs.constants.S_IFREG | 0o640);
    expect(m.size).toBe(5);
    expect(BigInt(m.mtime[0]) * 1_000_000_000n + BigInt(m.mtime[1])).toBe(st.mtimeNs);
    expect(m.nlink).toBe(1);
    expect(m.ino).toBe(Number(st.ino));
    const l = tmp('readlink');
    fs.symlinkSync(f, l);
    const lm = await readMeta(l);
    expect(lm.mode & fs.constants.S_IFMT).toBe(fs.constants.S_IFLNK);
    await expect(readMeta(tmp('missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

const modes: Array<{ name: string; native: NativeAddon | null }> = [{ name: 'fallback', native: null }];
if (native) modes.unshift({ name: 'native', native });

function metaFor(mode: number, mtime: [number, number], extra: Partial<EntryMeta> = {}): EntryMeta {
  return {
    mode,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    atime: [1_500_000_000, 987_654_321],
    mtime,
    size: 0,
    ino: 0,
    dev: 0,
    nlink: 1,
    ...extra,
  };
}

describe.each(modes)('applyMeta ($name)', ({ native: nat }) => {
  const exact = !!nat;
  const expectTime = (got: bigint, [s, ns]: [number, number]) => {
    const want = BigInt(s) * 1_000_000_000n + BigInt(ns);
    if (exact) expect(got).toBe(want);
    else expect(Number(got - want)).toBeGreaterThan(-2000); // fallback: ~1 µs
    if (!exact) expect(Number(got - want)).toBeLessThan(2000);
  };

  it.each([0o4755, 0o2755, 0o6711, 0o1777, 0o0400, 0o0000])('sets mode %o and ns times on a file', async (perm) => {
    const f = tmp('file');
    fs.writeFileSync(f, 'x');
    const mtime: [number, number] = [1_600_000_000, 123_456_789];
    await applyMeta(f, metaFor(fs.constants.S_IFREG | perm, mtime), { native: nat, chown: false, xattrs: false });
    expect(fs.lstatSync(f).mode & 0o7777).toBe(perm);
    const t = nsOf(f);
    expectTime(t.m, mtime);
    expectTime(t.a, [1_500_000_000, 987_654_321]);
  });

  it('sets sticky directory mode 0o1777 and negative (pre-1970) times', async () => {
    const d = tmp('dir');
    fs.mkdirSync(d);
    const mtime: [number, number] = [-2, 500_000_000];
    await applyMeta(d, metaFor(fs.constants.S_IFDIR | 0o1777, mtime), { native: nat, chown: false, xattrs: false });
    expect(fs.lstatSync(d).mode & 0o7777).toBe(0o1777);
    expectTime(nsOf(d).m, mtime);
  });

  it.skipIf(!isRoot)('with `have`, chowns and chmods only what differs (and chmods after any chown)', async () => {
    const d = tmp('have');
    fs.mkdirSync(d, 0o755);
    const meta = metaFor(fs.constants.S_IFDIR | 0o755, [1_234_567_890, 5], { uid: 1234, gid: 5678 });
    // told it already has the owner and mode: neither is set (the times still are)
    await applyMeta(d, meta, { native: nat, chown: true, xattrs: false, have: { mode: 0o40755, uid: 1234, gid: 5678 } });
    expect([fs.lstatSync(d).uid, fs.lstatSync(d).gid]).toEqual([0, 0]);
    expectTime(nsOf(d).m, [1_234_567_890, 5]);
    // the owner differs: chown, and the mode is set after it even though `have` says it is right
    fs.chmodSync(d, 0o700);
    await applyMeta(d, meta, { native: nat, chown: true, xattrs: false, have: { mode: 0o40755, uid: 0, gid: 0 } });
    expect([fs.lstatSync(d).uid, fs.lstatSync(d).gid, fs.lstatSync(d).mode & 0o7777]).toEqual([1234, 5678, 0o755]);
    // only the mode differs
    fs.chmodSync(d, 0o711);
    await applyMeta(d, { ...meta, mode: fs.constants.S_IFDIR | 0o2750 }, { native: nat, chown: true, xattrs: false, have: { mode: 0o40711, uid: 1234, gid: 5678 } });
    expect(fs.lstatSync(d).mode & 0o7777).toBe(0o2750);
  });

  it.skipIf(!isRoot)('chowns before chmod so setuid/setgid survive', async () => {
    const f = tmp('own');
    fs.writeFileSync(f, 'x');
    const meta = metaFor(fs.constants.S_IFREG | 0o6755, [1_234_567_890, 1], { uid: 1234, gid: 5678 });
    await applyMeta(f, meta, { native: nat, chown: true, xattrs: false });
    const st = fs.lstatSync(f);
    expect([st.uid, st.gid]).toEqual([1234, 5678]);
    expect(st.mode & 0o7777).toBe(0o6755);
  });

  it('sets symlink owner and times without following it', async () => {
    const target = tmp('target');
    fs.writeFileSync(target, 'x');
    const before = nsOf(target);
    const targetSt = fs.lstatSync(target);
    const l = tmp('link');
    fs.symlinkSync(target, l);
    const mtime: [number, number] = [1_400_000_000, 42];
    const meta = metaFor(fs.constants.S_IFLNK | 0o777, mtime, isRoot ? { uid: 4321, gid: 8765 } : {});
    await applyMeta(l, meta, { native: nat, chown: isRoot, xattrs: false });
    expectTime(nsOf(l).m, mtime);
    expect(nsOf(target)).toEqual(before);
    if (isRoot) {
      const st = fs.lstatSync(l);
      expect([st.uid, st.gid]).toEqual([4321, 8765]);
      expect(fs.lstatSync(target).uid).toBe(targetSt.uid);
    }
  });

  it('throws a coded error with the path on failure', async () => {
    const missing = tmp('missing');
    await expect(
      applyMeta(missing, metaFor(fs.constants.S_IFREG | 0o644, [1, 0]), { native: nat, chown: isRoot, xattrs: false }),
    ).rejects.toMatchObject({ code: 'ENOENT', path: expect.any(String), syscall: expect.any(String) });
  });

  it('copies xattrs through applyMeta (xattrSrc) when native, else leaves none', async () => {
    const src = tmp('xsrc');
    const dst = tmp('xdst');
    fs.writeFileSync(src, 'x');
    fs.writeFileSync(dst, 'x');
    if (!native) return;
    native.setXattr(src, Buffer.from('user.k'), Buffer.from([0xff, 0x00, 0x80]));
    // mode 0o400 after applyMeta: xattrs must be set before chmod for non-root to succeed
    await applyMeta(dst, metaFor(fs.constants.S_IFREG | 0o400, [1_700_000_000, 5]), {
      native: nat,
      chown: false,
      xattrs: true,
      xattrSrc: src,
    });
    const names = native.listXattrs(dst).map(String);
    if (nat) {
      expect(names).toEqual(['user.k']);
      expect(native.getXattr(dst, Buffer.from('user.k')).equals(Buffer.from([0xff, 0x00, 0x80]))).toBe(true);
    } else {
      expect(names).toEqual([]);
    }
    expectTime(nsOf(dst).m, [1_700_000_000, 5]); // times still last
  });
});

describe.skipIf(!native)('copyXattrs', () => {
  const n = native!;

  it('copies user.* (binary names and values) and, as root, trusted.*', () => {
    const src = tmp('src');
    const dst = tmp('dst');
    fs.writeFileSync(src, 'x');
    fs.writeFileSync(dst, 'y');
    const attrs: Array<[Buffer, Buffer]> = [
      [Buffer.from('user.plain'), Buffer.from('value')],
      [Buffer.from('user.empty'), Buffer.alloc(0)],
      [Buffer.concat([Buffer.from('user.'), Buffer.from([0xff, 0xfe, 0x01])]), Buffer.from([0x00, 0xff, 0xc3, 0x28])],
      [Buffer.from('user.big'), Buffer.alloc(2000, 0x5a)],
    ];
    if (isRoot) attrs.push([Buffer.from('trusted.t'), Buffer.from([0x80, 0x81])]);
    for (const [k, v] of attrs) n.setXattr(src, k, v);
    copyXattrs(src, dst, n, false);
    const hex = (bs: Buffer[]) => bs.map((b) => b.toString('hex')).sort();
    expect(hex(n.listXattrs(dst))).toEqual(hex(attrs.map(([k]) => k)));
    for (const [k, v] of attrs) expect(n.getXattr(dst, k).equals(v)).toBe(true);
  });

  it('is a no-op without native', () => {
    const src = tmp('src');
    const dst = tmp('dst');
    fs.writeFileSync(src, 'x');
    fs.writeFileSync(dst, 'y');
    n.setXattr(src, Buffer.from('user.a'), Buffer.from('b'));
    copyXattrs(src, dst, null, false);
    expect(n.listXattrs(dst)).toEqual([]);
  });

  it('skips user.* on symlinks, copies trusted.* there as root, never follows', () => {
    const target = tmp('t');
    fs.writeFileSync(target, 'x');
    n.setXattr(target, Buffer.from('user.onTarget'), Buffer.from('1'));
    const src = tmp('ls');
    const dst = tmp('ld');
    fs.symlinkSync(target, src);
    fs.symlinkSync(target, dst);
    if (isRoot) n.setXattr(src, Buffer.from('trusted.l'), Buffer.from('2'));
    copyXattrs(src, dst, n, true);
    expect(n.listXattrs(dst).map(String)).toEqual(isRoot ? ['trusted.l'] : []);
    expect(n.listXattrs(target).map(String)).toEqual(['user.onTarget']);
  });

  it('propagates user.* failures', () => {
    const src = tmp('src');
    fs.writeFileSync(src, 'x');
    n.setXattr(src, Buffer.from('user.a'), Buffer.from('b'));
    expect(() => copyXattrs(src, tmp('missing'), n, false)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
