import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COPY_FLAGS, NATIVE_ADDON_PATH, OP_UP_TO_DATE, loadNative, nativeLoadError, nativeSkips } from '../../src/native/loader.js';
import { LEAF, MASK128, digestOfBuffer, fileDigest, fromHex, initHashing, sizeTerm, toHex } from '../../src/checksum/hasher.js';
import { entryDigest } from '../../src/checksum/entry-digest.js';

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

  it('syncfs resolves for an fd on a file system, rejects EBADF for a closed one', async () => {
    const fd = fs.openSync(dir, 'r');
    await expect(n.syncfs(fd)).resolves.toBeUndefined();
    fs.closeSync(fd);
    await expect(n.syncfs(fd)).rejects.toMatchObject({ code: 'EBADF', syscall: 'syncfs' });
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

describe.skipIf(!native)('batch copy digests', () => {
  const n = native!;
  const MiB = LEAF;
  let r0: { src: Buffer; dst: Buffer };
  let r1: { src: Buffer; dst: Buffer };
  /** rel path (under root 0 unless noted) -> content */
  const files: { root: number; rel: Buffer; data: Buffer }[] = [];
  const hex = (b: Buffer, i: number) => b.toString('hex', 16 * i, 16 * i + 16);
  const numsOf = (list: { root: number; size: number; mtime?: [number, number]; blocks?: number }[]) => {
    const a = new Float64Array(list.length * 10);
    list.forEach((f, i) => a.set([f.root, f.size, 0o100644, 0, 0, 1_600_000_000, 1, ...(f.mtime ?? [1_600_000_000, 2]), f.blocks ?? -1], i * 10));
    return a;
  };
  const rootPairs = () => [r0.src, r0.dst, r1.src, r1.dst];
  const HASH = COPY_FLAGS.HASH | COPY_FLAGS.SPARSE | COPY_FLAGS.XATTRS;

  beforeAll(async () => {
    await initHashing();
    r0 = { src: p('b0-src'), dst: p('b0-dst') };
    // the second root's own names are not UTF-8 either
    r1 = { src: p(Buffer.from([0x62, 0x31, 0xe9, 0x2d, 0x73])), dst: p(Buffer.from([0x62, 0x31, 0xe9, 0x2d, 0x64])) };
    for (const r of [r0, r1]) for (const d of [r.src, r.dst]) fs.mkdirSync(d);
    fs.mkdirSync(Buffer.concat([r0.src, Buffer.from('/sub')]));
    fs.mkdirSync(Buffer.concat([r0.dst, Buffer.from('/sub')]));
    const rand = (k: number) => randomBytes(k);
    for (const size of [0, 1, 4095, MiB - 1, MiB, MiB + 1, 3 * MiB + 5]) files.push({ root: 0, rel: Buffer.from(`sub/f${size}`), data: rand(size) });
    files.push({ root: 1, rel: Buffer.from([0x6e, 0xff, 0xfe, 0x2e, 0x62, 0x69, 0x6e]), data: rand(MiB + 3) });
    for (const f of files) fs.writeFileSync(Buffer.concat([f.root ? r1.src : r0.src, Buffer.from('/'), f.rel]), f.data);
    // sparse: data in leaf 0, a hole over leaves 1-3 (and the start of 4), data again, a trailing hole
    const sparse = Buffer.alloc(7 * MiB + 100);
    sparse.fill(7, 0, 5000);
    sparse.fill(9, 4 * MiB + 8192, 4 * MiB + 8192 + 70_000);
    const sp = Buffer.concat([r0.src, Buffer.from('/sparse')]);
    const fd = fs.openSync(sp, 'w');
    fs.ftruncateSync(fd, sparse.length);
    fs.writeSync(fd, sparse, 0, 5000, 0);
    fs.writeSync(fd, sparse, 4 * MiB + 8192, 70_000, 4 * MiB + 8192);
    fs.closeSync(fd);
    files.push({ root: 0, rel: Buffer.from('sparse'), data: sparse });
  });

  it('content digests and the entry sum equal the JS hasher and entryDigest (sizes around leaves, a hole, a second root, non-UTF-8 names)', async () => {
    const { status, digests, entrySum } = await n.copyFiles(rootPairs(), files.map((f) => f.rel), numsOf(files.map((f) => ({ root: f.root, size: f.data.length }))), HASH);
    let want = 0n;
    files.forEach((f, i) => {
      expect([...status.subarray(i * 3, i * 3 + 2)], f.rel.toString()).toEqual([0, 0]);
      const content = digestOfBuffer(f.data);
      expect(hex(digests, i), `${f.rel} (${f.data.length} bytes)`).toBe(toHex(content));
      want += entryDigest({ root: f.root, path: f.rel, kind: 'f', size: f.data.length, content });
      const copy = fs.readFileSync(Buffer.concat([f.root ? r1.dst : r0.dst, Buffer.from('/'), f.rel]));
      expect(copy.equals(f.data)).toBe(true);
    });
    expect(entrySum.toString('hex')).toBe(toHex(want & MASK128));
    expect(digests.length).toBe(16 * files.length);
    // the hole was skipped (whole leaves by SEEK_DATA, the rest as zero blocks) yet hashed as zeros
    expect(status[(files.length - 1) * 3 + 2]).toBeGreaterThanOrEqual(3 * MiB);
  });

  it('with the walk\'s st_blocks: a sparse file (fewer blocks than bytes) keeps its holes, dense files copy the same', async () => {
    const blocksOf = (f: { root: number; rel: Buffer }) => Number(fs.lstatSync(Buffer.concat([f.root ? r1.src : r0.src, Buffer.from('/'), f.rel]), { bigint: true }).blocks);
    const list = files.map((f) => ({ ...f, blocks: blocksOf(f) }));
    const sparse = list[list.length - 1]!;
    expect(sparse.blocks * 512).toBeLessThan(sparse.data.length);
    for (const f of list) fs.rmSync(Buffer.concat([f.root ? r1.dst : r0.dst, Buffer.from('/'), f.rel]), { force: true });
    const { status, digests } = await n.copyFiles(rootPairs(), list.map((f) => f.rel), numsOf(list.map((f) => ({ root: f.root, size: f.data.length, blocks: f.blocks }))), HASH);
    list.forEach((f, i) => {
      expect([...status.subarray(i * 3, i * 3 + 2)], f.rel.toString()).toEqual([0, 0]);
      expect(hex(digests, i)).toBe(toHex(digestOfBuffer(f.data)));
      expect(fs.readFileSync(Buffer.concat([f.root ? r1.dst : r0.dst, Buffer.from('/'), f.rel])).equals(f.data)).toBe(true);
    });
    const copied = fs.lstatSync(Buffer.concat([r0.dst, Buffer.from('/sparse')]), { bigint: true });
    expect(Number(copied.blocks) * 512).toBeLessThanOrEqual(sparse.blocks * 512 + 8192);
    expect(status[(list.length - 1) * 3 + 2]).toBeGreaterThanOrEqual(3 * MiB);
  });

  it('a root that is itself the file (empty relative path): joined as the root alone, digested with an empty path', async () => {
    const data = randomBytes(10_000);
    const src = p('lone-src');
    const dst = p('lone-dst');
    fs.writeFileSync(src, data);
    const { status, digests, entrySum } = await n.copyFiles([src, dst], [Buffer.alloc(0)], numsOf([{ root: 0, size: data.length }]), HASH);
    expect(status[0]).toBe(0);
    expect(fs.readFileSync(dst).equals(data)).toBe(true);
    const content = digestOfBuffer(data);
    expect(hex(digests, 0)).toBe(toHex(content));
    expect(entrySum.toString('hex')).toBe(toHex(entryDigest({ root: 0, path: Buffer.alloc(0), kind: 'f', size: data.length, content })));
  });

  it('failed and up-to-date files get zero digests and stay out of the entry sum; no HASH, no digests', async () => {
    const ok = files[2]!;
    const upd = files[1]!;
    // --update: the destination of `upd` already has its size and mtime
    const updDst = Buffer.concat([r0.dst, Buffer.from('/'), upd.rel]);
    fs.writeFileSync(updDst, upd.data);
    fs.utimesSync(updDst, new Date(1_700_000_000_000), new Date(1_700_000_000_000));
    const list = [
      { root: 0, rel: Buffer.from('sub/missing'), size: 5 },
      // copied before with mtime [1_600_000_000, 2]: a new mtime makes it out of date
      { root: ok.root, rel: ok.rel, size: ok.data.length, mtime: [1_650_000_000, 3] as [number, number] },
      { root: upd.root, rel: upd.rel, size: upd.data.length, mtime: [1_700_000_000, 0] as [number, number] },
    ];
    const { status, digests, entrySum } = await n.copyFiles(rootPairs(), list.map((f) => f.rel), numsOf(list), HASH | COPY_FLAGS.UPDATE);
    expect(status[0]).toBe(-os.constants.errno.ENOENT);
    expect(status[1]).toBe(1); // open (the source)
    expect(hex(digests, 0)).toBe('0'.repeat(32));
    const content = digestOfBuffer(ok.data);
    expect(hex(digests, 1)).toBe(toHex(content));
    expect([status[6], status[7]]).toEqual([0, OP_UP_TO_DATE]);
    expect(hex(digests, 2)).toBe('0'.repeat(32));
    expect(entrySum.toString('hex')).toBe(toHex(entryDigest({ root: ok.root, path: ok.rel, kind: 'f', size: ok.data.length, content })));

    const plain = await n.copyFiles(rootPairs(), [ok.rel], numsOf([{ root: 0, size: ok.data.length }]), COPY_FLAGS.SPARSE);
    expect(plain.status[0]).toBe(0);
    expect(plain.digests.equals(Buffer.alloc(16))).toBe(true);
    expect(plain.entrySum.equals(Buffer.alloc(16))).toBe(true);
  });

  it('copyChunk partials, summed with the size term, equal the whole-file digest', async () => {
    for (const f of [files.find((x) => x.data.length === 3 * MiB + 5)!, files[files.length - 1]!]) {
      const src = Buffer.concat([r0.src, Buffer.from('/'), f.rel]);
      const part = p(`part-${f.data.length}`);
      fs.writeFileSync(part, Buffer.alloc(0));
      fs.truncateSync(part, f.data.length);
      const partials: bigint[] = [];
      // uneven chunks on leaf boundaries, the last one short
      for (const [off, len] of [[0, MiB], [MiB, 2 * MiB], [3 * MiB, f.data.length - 3 * MiB]] as const) {
        const { status, partial } = await n.copyChunk(src, part, off, len, COPY_FLAGS.SPARSE | COPY_FLAGS.HASH);
        expect(status[0]).toBe(0);
        expect(partial.length).toBe(16);
        partials.push(fromHex(partial.toString('hex')));
      }
      expect(fileDigest(partials, f.data.length)).toBe(digestOfBuffer(f.data));
      expect((sizeTerm(f.data.length) + partials.reduce((a, b) => a + b)) & MASK128).toBe(digestOfBuffer(f.data));
      expect(fs.readFileSync(part).equals(f.data)).toBe(true);
    }
    const src = Buffer.concat([r0.src, Buffer.from('/sparse')]);
    expect(() => n.copyChunk(src, p('part-x'), MiB / 2, 10, COPY_FLAGS.HASH)).toThrow(/multiple of 1 MiB/);
  });

  it('validates its arguments', () => {
    const rel = [Buffer.from('sub/f1')];
    const ok = numsOf([{ root: 0, size: 1 }]);
    /** `ok` with its first numbers replaced */
    const bad = (over: number[]) => {
      const a = Float64Array.from(ok);
      a.set(over);
      return a;
    };
    const call = (...args: unknown[]) => () => (n.copyFiles as (...a: unknown[]) => unknown)(...args);
    expect(call(rootPairs(), rel, ok)).toThrow(TypeError); // flags missing
    expect(call(rootPairs(), rel, Array.from(ok), 0)).toThrow(TypeError);
    expect(call(rootPairs(), rel, new Float32Array(10), 0)).toThrow(/10 numbers/);
    expect(call(rootPairs(), rel, new Float64Array(9), 0)).toThrow(/10 numbers/);
    expect(call([r0.src], rel, ok, 0)).toThrow(/pairs/);
    expect(call([r0.src, 'dst'], rel, ok, 0)).toThrow(/roots must be Buffers/);
    expect(call([r0.src, Buffer.from('a\0b')], rel, ok, 0)).toThrow(/roots must be Buffers/);
    expect(call(rootPairs(), [Buffer.from('a\0b')], ok, 0)).toThrow(/relative paths must be Buffers/);
    expect(call(rootPairs(), ['sub/f1'], ok, 0)).toThrow(/relative paths must be Buffers/);
    expect(call(rootPairs(), [Buffer.from('/etc/passwd')], ok, 0)).toThrow(/must not start with/);
    expect(call(rootPairs(), [Buffer.from('sub/../../x')], ok, 0)).toThrow(/'\.\.'/);
    for (const r of [2, -1, 0.5, NaN, Infinity]) expect(call(rootPairs(), rel, bad([r]), 0), `root ${r}`).toThrow(/root index/);
    expect(call([], rel, ok, 0)).toThrow(/root index/);
    expect(call(rootPairs(), rel, bad([0, -1]), 0)).toThrow(RangeError);
    expect(call(rootPairs(), rel, bad([0, 2 ** 60]), 0)).toThrow(RangeError);
    expect(call(rootPairs(), rel, bad([0, 1, 0o644, 0, 0, 0, 1e9]), 0)).toThrow(RangeError);
    expect(call(rootPairs(), rel, bad([0, 1, 0o644, 2 ** 32]), 0)).toThrow(RangeError);
    expect(call(rootPairs(), rel, bad([0, 1, 0o644, 0, 0, 0, 1, 0, 1, -2]), 0)).toThrow(RangeError); // blocks
    // still fine: '..' inside a name, and an empty batch
    expect(call(rootPairs(), [Buffer.from('a..b/c..')], ok, 0)).not.toThrow();
    return expect(n.copyFiles(rootPairs(), [], new Float64Array(0), COPY_FLAGS.HASH)).resolves.toMatchObject({ entrySum: Buffer.alloc(16) });
  });
});
