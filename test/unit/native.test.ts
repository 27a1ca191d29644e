import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NATIVE_ADDON_PATH, loadNative, nativeLoadError, nativeSkips } from '../../src/native/loader.js';

const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
let dir: string;
let dirB: Buffer;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(base, 'fcp-native-'));
  dirB = Buffer.from(dir);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function p(...names: (string | Buffer)[]): Buffer {
  return Buffer.concat([dirB, ...names.flatMap((n) => [Buffer.from('/'), Buffer.from(n)])]);
}

describe('loader', () => {
  it('loads the addon when it is built', () => {
    const addon = loadNative({ reload: true });
    if (process.env.FCP_NO_NATIVE === '1') {
      expect(addon).toBeNull();
    } else if (fs.existsSync(NATIVE_ADDON_PATH)) {
      expect(nativeLoadError()).toBeNull();
      expect(addon).not.toBeNull();
      expect(nativeSkips()).toEqual([]);
    } else {
      expect(addon).toBeNull();
      expect(nativeLoadError()).toMatch(/not found/);
    }
  });

  it('FCP_NO_NATIVE=1 disables it', () => {
    const saved = process.env.FCP_NO_NATIVE;
    process.env.FCP_NO_NATIVE = '1';
    try {
      expect(loadNative({ reload: true })).toBeNull();
      expect(loadNative()).toBeNull(); // cached
      expect(nativeLoadError()).toMatch(/FCP_NO_NATIVE/);
      expect(nativeSkips().join('\n')).toMatch(/zero/);
      expect(nativeSkips().join('\n')).toMatch(/xattr|extended attributes/);
    } finally {
      if (saved === undefined) delete process.env.FCP_NO_NATIVE;
      else process.env.FCP_NO_NATIVE = saved;
      loadNative({ reload: true });
    }
  });
});

const native = loadNative({ reload: true });

describe.skipIf(!native)('addon', () => {
  const n = native!;

  it('seekData / seekHole walk a sparse file and return -1 on ENXIO', () => {
    const f = p('sparse');
    const fd = fs.openSync(f, 'w+');
    try {
      fs.ftruncateSync(fd, 8 * 1024 * 1024);
      fs.writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 0);
      fs.writeSync(fd, Buffer.alloc(4096, 2), 0, 4096, 4 * 1024 * 1024);
      expect(n.seekData(fd, 0)).toBe(0);
      const h = n.seekHole(fd, 0);
      expect(h).toBeGreaterThanOrEqual(4096);
      expect(h).toBeLessThanOrEqual(4 * 1024 * 1024);
      expect(n.seekData(fd, h)).toBe(4 * 1024 * 1024);
      const h2 = n.seekHole(fd, 4 * 1024 * 1024);
      expect(n.seekData(fd, h2)).toBe(-1); // trailing hole: no more data
      expect(n.seekData(fd, 9 * 1024 * 1024)).toBe(-1); // beyond EOF
      expect(n.seekHole(fd, 9 * 1024 * 1024)).toBe(-1);
      expect(n.seekHole(fd, h2)).toBe(h2);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('throws Node-style errors', () => {
    let err: NodeJS.ErrnoException | undefined;
    try {
      n.seekData(987654, 0);
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err!.code).toBe('EBADF');
    expect(err!.errno).toBe(-os.constants.errno.EBADF);
    expect(err!.syscall).toBe('lseek');
    expect(err!.message).toMatch(/^EBADF: /);

    const missing = p(Buffer.from([0x6e, 0xff]));
    try {
      n.getXattr(missing, Buffer.from('user.x'));
      expect.unreachable();
    } catch (e) {
      const er = e as NodeJS.ErrnoException;
      expect(er.code).toBe('ENOENT');
      expect(er.syscall).toBe('lgetxattr');
      expect(typeof er.path).toBe('string');
    }
    expect(() => n.fadvise(0, 0, 0, 'bogus' as never)).toThrow(/advice/);
    expect(() => n.seekData(-1 as number, 0)).toThrow(RangeError);
    expect(() => n.listXattrs(Buffer.from('a\0b'))).toThrow(/null bytes/);
  });

  it('copyFileRange copies at explicit offsets, resolves 0 at EOF, rejects with code', async () => {
    const src = p('cfr-src');
    const dst = p('cfr-dst');
    const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7) & 0xff));
    fs.writeFileSync(src, data);
    const a = fs.openSync(src, 'r');
    const b = fs.openSync(dst, 'w+');
    try {
      expect(await n.copyFileRange(a, 1000, b, 5000, 50_000)).toBe(50_000);
      const got = fs.readFileSync(dst);
      expect(got.length).toBe(55_000);
      expect(got.subarray(5000).equals(data.subarray(1000, 51_000))).toBe(true);
      expect(await n.copyFileRange(a, 100_000, b, 0, 10)).toBe(0);
      await expect(n.copyFileRange(a, 0, 987654, 0, 10)).rejects.toMatchObject({
        code: 'EBADF',
        errno: -os.constants.errno.EBADF,
        syscall: 'copy_file_range',
      });
    } finally {
      fs.closeSync(a);
      fs.closeSync(b);
    }
  });

  it('xattrs: list/get/set with binary names, values and non-UTF-8 paths', () => {
    const f = p(Buffer.from([0x66, 0xff, 0xfe]));
    fs.writeFileSync(f, 'x');
    expect(n.listXattrs(f)).toEqual([]);
    const name = Buffer.concat([Buffer.from('user.'), Buffer.from([0xc3, 0x28, 0x80])]);
    const value = Buffer.from([0xff, 0x00, 0xfe, 0x00]);
    n.setXattr(f, name, value);
    n.setXattr(f, Buffer.from('user.empty'), Buffer.alloc(0));
    const big = Buffer.alloc(3000, 0xab);
    n.setXattr(f, Buffer.from('user.big'), big);
    const names = n.listXattrs(f).map((b) => b.toString('hex')).sort();
    expect(names).toEqual([name, Buffer.from('user.empty'), Buffer.from('user.big')].map((b) => b.toString('hex')).sort());
    expect(n.getXattr(f, name).equals(value)).toBe(true);
    expect(n.getXattr(f, Buffer.from('user.empty')).length).toBe(0);
    expect(n.getXattr(f, Buffer.from('user.big')).equals(big)).toBe(true);
    expect(() => n.getXattr(f, Buffer.from('user.none'))).toThrow(expect.objectContaining({ code: 'ENODATA' }));
  });

  it('utimens sets nanoseconds, with and without following symlinks', () => {
    const f = p('times');
    const l = p('times-link');
    fs.writeFileSync(f, '');
    fs.symlinkSync('times', l);
    n.utimens(f, 1_000_000_000, 1, 1_600_000_000, 123_456_789, true);
    let st = fs.lstatSync(f, { bigint: true });
    expect(st.mtimeNs).toBe(1_600_000_000_123_456_789n);
    expect(st.atimeNs).toBe(1_000_000_000_000_000_001n);
    n.utimens(l, 5, 6, 7, 8, false);
    expect(fs.lstatSync(l, { bigint: true }).mtimeNs).toBe(7_000_000_008n);
    expect(fs.lstatSync(f, { bigint: true }).mtimeNs).toBe(1_600_000_000_123_456_789n);
    n.utimens(l, 1, 0, -2, 500_000_000, true); // follows to the target; negative seconds
    st = fs.lstatSync(f, { bigint: true });
    expect(st.mtimeNs).toBe(-1_500_000_000n);
    expect(() => n.utimens(f, 0, 1e9, 0, 0, true)).toThrow(RangeError);
  });

  it('mkfifo creates a FIFO and reports EEXIST', () => {
    const f = p('fifo');
    n.mkfifo(f, 0o640);
    const st = fs.lstatSync(f);
    expect(st.isFIFO()).toBe(true);
    expect(() => n.mkfifo(f, 0o640)).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'mkfifo' }));
  });

  it('fadvise accepts all advice values', () => {
    const f = p('adv');
    fs.writeFileSync(f, Buffer.alloc(10000));
    const fd = fs.openSync(f, 'r');
    try {
      for (const a of ['normal', 'sequential', 'random', 'willneed', 'dontneed', 'noreuse'] as const) {
        n.fadvise(fd, 0, 0, a);
      }
    } finally {
      fs.closeSync(fd);
    }
  });

  it('sha256 (used for the batch digests) equals node:crypto, across block and padding boundaries', () => {
    const ref = (b: Uint8Array) => createHash('sha256').update(b).digest();
    expect(n.sha256(Buffer.alloc(0)).toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(n.sha256(Buffer.from('abc')).toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    // every length around the 55/56/64-byte padding cases, then 1000 random lengths
    const lengths = [...Array.from({ length: 200 }, (_, i) => i), ...Array.from({ length: 1000 }, () => Math.floor(Math.random() * 5000))];
    for (const len of lengths) {
      const b = randomBytes(len);
      expect(n.sha256(b).equals(ref(b)), `length ${len}`).toBe(true);
    }
    const big = randomBytes(3 * 1024 * 1024 + 7);
    expect(n.sha256(big.subarray(3)).equals(ref(big.subarray(3)))).toBe(true); // unaligned view
    expect(() => n.sha256('abc' as unknown as Uint8Array)).toThrow(TypeError);
  });
});
