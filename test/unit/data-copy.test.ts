import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  copyFileRangeDisabledReason,
  copyRange,
  copyWholeSmallFile,
  resetCopyFileRangeState,
  type RangeCopyOptions,
} from '../../src/copy/data-copy.js';
import { loadNative, type NativeAddon } from '../../src/native/loader.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const native = loadNative({ reload: true });
let dir: string;
let seq = 0;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(base, 'fcp-data-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
beforeEach(() => resetCopyFileRangeState());

function tmp(name = 'f'): string {
  return path.join(dir, `${seq++}-${name}`);
}

function randomFile(size: number): { file: string; data: Buffer } {
  const file = tmp('src');
  const data = crypto.randomBytes(size);
  fs.writeFileSync(file, data);
  return { file, data };
}

/** 1 MiB data, 64 MiB hole, 1 MiB data (+ optional trailing hole). */
function sparseFile(trailingHole = 0): { file: string; size: number; a: Buffer; b: Buffer } {
  const file = tmp('sparse');
  const a = crypto.randomBytes(MiB);
  const b = crypto.randomBytes(MiB);
  const size = 66 * MiB + trailingHole;
  const fd = fs.openSync(file, 'w');
  fs.ftruncateSync(fd, size);
  fs.writeSync(fd, a, 0, a.length, 0);
  fs.writeSync(fd, b, 0, b.length, 65 * MiB);
  fs.closeSync(fd);
  return { file, size, a, b };
}

async function withFds<T>(src: string, dst: string, size: number, fn: (s: number, d: number) => Promise<T>): Promise<T> {
  const s = fs.openSync(src, 'r');
  const d = fs.openSync(dst, 'w+');
  try {
    fs.ftruncateSync(d, size);
    return await fn(s, d);
  } finally {
    fs.closeSync(s);
    fs.closeSync(d);
  }
}

function allocated(file: string): number {
  return fs.statSync(file).blocks * 512;
}

const modes: Array<{ name: string; native: NativeAddon | null }> = [{ name: 'fallback', native: null }];
if (native) modes.unshift({ name: 'native', native });

describe.each(modes)('copyRange ($name)', ({ native: nat }) => {
  const variants: Array<Pick<RangeCopyOptions, 'copyFileRange' | 'sparse'>> = [
    { copyFileRange: false, sparse: false },
    { copyFileRange: false, sparse: true },
    { copyFileRange: true, sparse: false },
    { copyFileRange: true, sparse: true },
  ];

  it.each(variants)('copies random content exactly (cfr=$copyFileRange sparse=$sparse)', async (v) => {
    const size = 3 * MiB + 123;
    const { file, data } = randomFile(size);
    const ranges: Array<[number, number]> = [
      [0, size],
      [0, 1],
      [4095, 8193],
      [MiB + 7, MiB + 1],
      [size - 1, 1],
      [size, 0],
      [12345, 2 * MiB],
    ];
    for (const [off, len] of ranges) {
      const dst = tmp('dst');
      const r = await withFds(file, dst, size, (s, d) =>
        copyRange(s, d, off, len, { native: nat, ...v, bufferSize: 64 * KiB }),
      );
      const got = fs.readFileSync(dst);
      expect(got.length).toBe(size);
      expect(got.subarray(off, off + len).equals(data.subarray(off, off + len))).toBe(true);
      expect(got.subarray(0, off).equals(Buffer.alloc(off))).toBe(true);
      expect(got.subarray(off + len).equals(Buffer.alloc(size - off - len))).toBe(true);
      expect(r.bytesWritten + r.holeBytes).toBe(len);
      expect(r.usedCopyFileRange).toBe(!!nat && v.copyFileRange && len > 0);
    }
  });

  it('stitches a file from ranges copied concurrently', async () => {
    const size = 5 * MiB + 17;
    const { file, data } = randomFile(size);
    const dst = tmp('dst');
    const cuts = [0, 1 * MiB, 1 * MiB + 5, 3 * MiB, size];
    await withFds(file, dst, size, (s, d) =>
      Promise.all(
        cuts.slice(1).map((end, i) =>
          copyRange(s, d, cuts[i], end - cuts[i], {
            native: nat,
            copyFileRange: i % 2 === 0,
            sparse: i % 3 === 0,
            bufferSize: 100_000,
          }),
        ),
      ),
    );
    expect(fs.readFileSync(dst).equals(data)).toBe(true);
  });

  it('keeps holes when sparse (1 MiB data, 64 MiB hole, 1 MiB data, trailing hole)', async () => {
    const { file, size, a, b } = sparseFile(3 * MiB + 5);
    expect(allocated(file)).toBeLessThan(4 * MiB);
    for (const copyFileRange of [false, true]) {
      const dst = tmp('dst');
      const r = await withFds(file, dst, size, (s, d) => copyRange(s, d, 0, size, { native: nat, copyFileRange, sparse: true }));
      expect(allocated(dst)).toBeLessThan(4 * MiB);
      expect(r.holeBytes).toBeGreaterThanOrEqual(64 * MiB);
      expect(r.bytesWritten + r.holeBytes).toBe(size);
      if (!nat) expect(r.bytesRead).toBe(size); // zero detection reads everything
      else expect(r.bytesRead).toBeLessThan(4 * MiB); // SEEK_DATA skips the holes
      const got = fs.readFileSync(dst);
      expect(got.length).toBe(size);
      expect(got.subarray(0, MiB).equals(a)).toBe(true);
      expect(got.subarray(65 * MiB, 66 * MiB).equals(b)).toBe(true);
      expect(got.subarray(MiB, 65 * MiB).equals(Buffer.alloc(64 * MiB))).toBe(true);
      expect(got.subarray(66 * MiB).equals(Buffer.alloc(size - 66 * MiB))).toBe(true);
    }
  });

  it('fills holes when not sparse', async () => {
    const { file, size } = sparseFile();
    const dst = tmp('dst');
    const r = await withFds(file, dst, size, (s, d) => copyRange(s, d, 0, size, { native: nat, copyFileRange: false, sparse: false }));
    expect(r.bytesWritten).toBe(size);
    expect(allocated(dst)).toBeGreaterThanOrEqual(size);
  });

  it('sparse zero detection skips unaligned zero runs but copies content exactly', async () => {
    const size = 300 * KiB + 3;
    const data = crypto.randomBytes(size);
    data.fill(0, 5000, 200 * KiB + 11); // covers many aligned 4 KiB blocks, unaligned ends
    const file = tmp('zeros');
    fs.writeFileSync(file, data);
    const dst = tmp('dst');
    const r = await withFds(file, dst, size, (s, d) =>
      copyRange(s, d, 100, size - 100, { native: nat, copyFileRange: false, sparse: true, bufferSize: 64 * KiB }),
    );
    const got = fs.readFileSync(dst);
    expect(got.subarray(100).equals(data.subarray(100))).toBe(true);
    expect(r.holeBytes).toBeGreaterThanOrEqual(190 * KiB);
    expect(allocated(dst)).toBeLessThan(size - 150 * KiB);
  });

  it.each([false, true])('onData sees every byte in order, holes as zeros (sparse=%s)', async (sparse) => {
    const { file, size } = sparseFile(MiB);
    const off = 512 * KiB + 1;
    const len = size - off - 3;
    const expected = crypto.createHash('sha256').update(fs.readFileSync(file).subarray(off, off + len)).digest('hex');
    const hash = crypto.createHash('sha256');
    let next = off;
    let total = 0;
    const dst = tmp('dst');
    const r = await withFds(file, dst, size, (s, d) =>
      copyRange(s, d, off, len, {
        native: nat,
        copyFileRange: true, // ignored because of onData
        sparse,
        onData: (buf, o) => {
          expect(o).toBe(next);
          next += buf.length;
          total += buf.length;
          hash.update(buf);
        },
      }),
    );
    expect(total).toBe(len);
    expect(hash.digest('hex')).toBe(expected);
    expect(r.usedCopyFileRange).toBe(false);
    const got = fs.readFileSync(dst);
    expect(crypto.createHash('sha256').update(got.subarray(off, off + len)).digest('hex')).toBe(expected);
    if (sparse) expect(allocated(dst)).toBeLessThan(4 * MiB);
  });

  it.each(variants)('throws ESHRUNK for a short source (cfr=$copyFileRange sparse=$sparse)', async (v) => {
    const { file } = randomFile(MiB);
    const dst = tmp('dst');
    await expect(
      withFds(file, dst, 2 * MiB, (s, d) => copyRange(s, d, 0, 2 * MiB, { native: nat, ...v })),
    ).rejects.toMatchObject({ code: 'ESHRUNK', message: expect.stringMatching(/2097152.*1048576/) });
    // range entirely beyond EOF
    await expect(
      withFds(file, dst, 4 * MiB, (s, d) => copyRange(s, d, 3 * MiB, MiB, { native: nat, ...v })),
    ).rejects.toMatchObject({ code: 'ESHRUNK' });
  });

  it('throws ESHRUNK when the source is truncated mid-copy', async () => {
    const { file } = randomFile(4 * MiB);
    const dst = tmp('dst');
    let truncated = false;
    await expect(
      withFds(file, dst, 4 * MiB, (s, d) =>
        copyRange(s, d, 0, 4 * MiB, {
          native: nat,
          copyFileRange: false,
          sparse: false,
          bufferSize: MiB,
          onData: () => {
            if (!truncated) fs.truncateSync(file, MiB + 10);
            truncated = true;
          },
        }),
      ),
    ).rejects.toMatchObject({ code: 'ESHRUNK', message: expect.stringMatching(/4194304.*1048586/) });
  });
});

describe.skipIf(!native)('copy_file_range fallback', () => {
  function fake(code: string): NativeAddon {
    let calls = 0;
    return {
      ...native!,
      copyFileRange: async (...args: [number, number, number, number, number]) => {
        // first call succeeds partially, then fails
        if (calls++ === 0) return native!.copyFileRange(args[0], args[1], args[2], args[3], Math.min(args[4], 1000));
        throw Object.assign(new Error(`${code}: fake, copy_file_range`), { code, syscall: 'copy_file_range', errno: -1 });
      },
    };
  }

  it('falls back to read/write on EXDEV and remembers it', async () => {
    const { file, data } = randomFile(MiB + 3);
    const dst = tmp('dst');
    const r = await withFds(file, dst, data.length, (s, d) =>
      copyRange(s, d, 0, data.length, { native: fake('EXDEV'), copyFileRange: true, sparse: false }),
    );
    expect(fs.readFileSync(dst).equals(data)).toBe(true);
    expect(r.usedCopyFileRange).toBe(true); // the first 1000 bytes
    expect(copyFileRangeDisabledReason()).toBe('EXDEV');
    const dst2 = tmp('dst');
    const r2 = await withFds(file, dst2, data.length, (s, d) =>
      copyRange(s, d, 0, data.length, { native: native!, copyFileRange: true, sparse: false }),
    );
    expect(r2.usedCopyFileRange).toBe(false);
    expect(fs.readFileSync(dst2).equals(data)).toBe(true);
  });

  it('falls back for this call only on EPERM; other errors propagate', async () => {
    const { file, data } = randomFile(100_000);
    const dst = tmp('dst');
    await withFds(file, dst, data.length, (s, d) =>
      copyRange(s, d, 0, data.length, { native: fake('EPERM'), copyFileRange: true, sparse: false }),
    );
    expect(fs.readFileSync(dst).equals(data)).toBe(true);
    expect(copyFileRangeDisabledReason()).toBeNull();
    await expect(
      withFds(file, tmp('dst'), data.length, (s, d) =>
        copyRange(s, d, 0, data.length, { native: fake('EIO'), copyFileRange: true, sparse: false }),
      ),
    ).rejects.toMatchObject({ code: 'EIO' });
  });

  it('cross-filesystem copy (tmpfs -> disk) works whatever copy_file_range says', async () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir() === base ? '/var/tmp' : os.tmpdir(), 'fcp-data-'));
    try {
      const { file, data } = randomFile(2 * MiB + 1);
      const dst = path.join(other, 'dst');
      await withFds(file, dst, data.length, (s, d) =>
        copyRange(s, d, 0, data.length, { native: native!, copyFileRange: true, sparse: false }),
      );
      expect(fs.readFileSync(dst).equals(data)).toBe(true);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});

describe.each(modes)('copyWholeSmallFile ($name)', ({ native: nat }) => {
  const opts = (extra: Partial<RangeCopyOptions> = {}) => ({
    native: nat,
    copyFileRange: true,
    sparse: false,
    mode: 0o444,
    ...extra,
  });

  it.each([0, 1, 100, 4096, 64 * KiB, 64 * KiB + 1, 3 * MiB + 7])('copies %i bytes', async (size) => {
    const { file, data } = randomFile(size);
    const dst = Buffer.from(tmp('dst'));
    const r = await copyWholeSmallFile(Buffer.from(file), dst, size, opts());
    expect(fs.readFileSync(dst).equals(data)).toBe(true);
    expect(r.bytesWritten).toBe(size);
    expect(fs.statSync(dst).mode & 0o777).toBe(0o644 & ~process.umask()); // 0o444 | 0o200
  });

  it('handles non-UTF-8 names, truncates an existing destination, feeds onData', async () => {
    const data = crypto.randomBytes(5000);
    const src = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x66, 0xff, 0xfe])]);
    const dst = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x67, 0xfe, 0xff])]);
    fs.writeFileSync(src, data);
    fs.writeFileSync(dst, crypto.randomBytes(20000));
    const seen: Buffer[] = [];
    await copyWholeSmallFile(src, dst, data.length, opts({ onData: (b) => seen.push(Buffer.from(b)) }));
    expect(fs.readFileSync(dst).equals(data)).toBe(true);
    expect(Buffer.concat(seen).equals(data)).toBe(true);
  });

  it('makes holes of all-zero (allocated) files when sparse via read/write', async () => {
    // (with copy_file_range, allocated zeros are data per SEEK_DATA and get copied as such)
    for (const size of [32 * KiB, 8 * MiB]) {
      const file = tmp('zero');
      fs.writeFileSync(file, Buffer.alloc(size));
      const dst = Buffer.from(tmp('dst'));
      const r = await copyWholeSmallFile(Buffer.from(file), dst, size, opts({ sparse: true, copyFileRange: false }));
      expect(r.holeBytes).toBe(size);
      expect(fs.statSync(dst).size).toBe(size);
      expect(allocated(dst.toString())).toBe(0);
    }
  });

  it('refuses symlinks, throws ESHRUNK, and never leaks fds', async () => {
    const fdCount = () => fs.readdirSync('/proc/self/fd').length;
    const before = fdCount();
    const { file } = randomFile(50);
    const link = tmp('link');
    fs.symlinkSync(file, link);
    await expect(copyWholeSmallFile(Buffer.from(link), Buffer.from(tmp('dst')), 50, opts())).rejects.toMatchObject({
      code: 'ELOOP',
    });
    await expect(copyWholeSmallFile(Buffer.from(file), Buffer.from(tmp('dst')), 100, opts())).rejects.toMatchObject({
      code: 'ESHRUNK',
    });
    const big = randomFile(MiB);
    await expect(copyWholeSmallFile(Buffer.from(big.file), Buffer.from(tmp('dst')), 2 * MiB, opts())).rejects.toMatchObject({
      code: 'ESHRUNK',
    });
    await expect(copyWholeSmallFile(Buffer.from(file), Buffer.from(path.join(dir, 'nope', 'x')), 50, opts())).rejects.toMatchObject({
      code: 'ENOENT',
    });
    expect(fdCount()).toBe(before);
  });
});
